"""Swedish traffic signs loader: grammar, filter, subset counts of spec §9, image loading, fetch (no network)."""

from __future__ import annotations

import random
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ipslib.data import traffic_fetch as tf
from ipslib.data import traffic_signs as ts
from ipslib.data.traffic_annotations import (
    KNOWN_MD5,
    class_counts,
    filter_entries,
    label_signs,
    parse_annotations,
    select_subset,
)
from ipslib.data.traffic_signs import TrafficSigns, fetch_traffic

pytestmark = pytest.mark.filterwarnings("ignore:.*differs from the published:UserWarning")

# line -> expected class (None = dropped); the awkward cases of the real files
CASES = [
    ("a.jpg:VISIBLE, 30.4, 20.0, 10.4, 8.0, PROHIBITORY, 50_SIGN;", 1),
    ("b.jpg:", 0),
    ("c.jpg:MISC_SIGNS;", 0),
    ("d.jpg:VISIBLE, 30.1l, 20.2, 10.0x, 5.5, PROHIBITORY, 70_SIGN;MISC_SIGNS;", 2),
    ("e.jpg:OCCLUDED, 50, 40, 10, 10, PROHIBITORY, 80_SIGN;BLURRED, 50, 40, 40, 30, PROHIBITORY, 50_SIGN;", None),
    ("f.jpg:VISIBLE, 50, 40, 10, 10, MANDATORY, PASS_RIGHT_SIDE;VISIBLE, 60, 60, 50, 50, OTHER, GIVE_WAY;", None),
    (
        "g.jpg:VISIBLE, 20, 20, 10, 10, PROHIBITORY, 50_SIGN;VISIBLE, 60, 60, 20, 20, PROHIBITORY, 80_SIGN;"
        "BLURRED, 500, 500, 0, 0, PROHIBITORY, 70_SIGN;",
        3,
    ),
    ("h.jpg:SIDE_ROAD, 900, 900, 0, 0, PROHIBITORY, 70_SIGN;VISIBLE, 60, 48, 40, 30, PROHIBITORY, 70_SIGN", 2),
    ("i.jpg: VISIBLE, 50, 40, 10, 10, WARNING, PEDESTRIAN_CROSSING ;", None),
]


def _annotations(lines: list[str]) -> str:
    return "\n".join(lines[:3] + ["", "   "] + lines[3:]) + "\n"


def _jpeg(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path, quality=90)


def _write_set(set_dir: Path, lines: list[str], *, subfolder: str | None) -> None:
    image_dir = set_dir / subfolder if subfolder else set_dir
    image_dir.mkdir(parents=True, exist_ok=True)
    (set_dir / "annotations.txt").write_text(_annotations(lines))
    for k, line in enumerate(lines):
        _jpeg(image_dir / line.split(":")[0].strip(), k)


@pytest.fixture
def small_root(tmp_path: Path) -> Path:
    _write_set(tmp_path / "Set1", [line for line, _ in CASES], subfolder="Set1Part0")
    _write_set(tmp_path / "Set2", [line.replace(".jpg", "2.jpg") for line, _ in CASES], subfolder=None)
    return tmp_path


def test_grammar_and_filter_cases():
    entries = parse_annotations(_annotations([line for line, _ in CASES]))
    assert [e.file for e in entries] == [line.split(":")[0] for line, _ in CASES]
    assert entries[3].signs[0].x_max == pytest.approx(30.1) and entries[3].signs[0].x_min == 10.0
    assert len(entries[2].signs) == 0 and len(entries[3].signs) == 1  # MISC_SIGNS skipped
    assert entries[3].line == 6  # blank lines still count
    assert [label_signs(e.signs) and label_signs(e.signs)[0] for e in entries] == [c for _, c in CASES]
    deciding = label_signs(entries[6].signs)[1]
    assert deciding.name == "80_SIGN" and deciding.area == 1600  # the larger VISIBLE sign wins


@pytest.mark.parametrize(
    "line, message",
    [
        ("no_colon_here.jpg VISIBLE, 1, 2, 3, 4, P, 50_SIGN", "line 2: expected"),
        ("x.jpg:VISIBLE, 1, 2, 3, PROHIBITORY, 50_SIGN", "line 2: sign"),
        ("x.jpg:VISIBLE, abc, 2, 3, 4, PROHIBITORY, 50_SIGN", "line 2: 'abc' is not a number"),
        ("x.jpg:HIDDEN, 1, 2, 3, 4, PROHIBITORY, 50_SIGN", "line 2: unknown visibility"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    (tmp_path / "Set1").mkdir()
    (tmp_path / "Set1" / "annotations.txt").write_text("b.jpg:\n" + line + "\n")
    with pytest.raises(ValueError, match=f"annotations.txt {message}"):
        TrafficSigns({"root": str(tmp_path)}, "train", check_images=False)


def _composition_lines(counts: list[int], n_dropped: int, seed: int) -> list[str]:
    signs = {1: "50_SIGN", 2: "70_SIGN", 3: "80_SIGN"}
    labels = [c for c, n in enumerate(counts) for _ in range(n)] + [-1] * n_dropped
    random.Random(seed).shuffle(labels)
    lines = []
    for k, label in enumerate(labels):
        if label == 0:
            body = "MISC_SIGNS;" if k % 3 else ""
        elif label > 0:
            body = f"VISIBLE, {400 + k % 7}.5, 300, 380, 280, PROHIBITORY, {signs[label]};"
        else:
            body = "OCCLUDED, 400, 300, 380, 280, PROHIBITORY, 70_SIGN;" if k % 2 else "VISIBLE, 1, 1, 0, 0, X, STOP;"
        lines.append(f"{k:06d}.jpg:{body}")
    return lines


@pytest.fixture(scope="module")
def counts_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("counts")
    for name, counts, dropped in (("Set1", [486, 79, 123, 59], 1223), ("Set2", [451, 86, 83, 64], 1123)):
        (root / name).mkdir()
        (root / name / "annotations.txt").write_text("\n".join(_composition_lines(counts, dropped, 7)) + "\n")
    return root


@pytest.mark.parametrize(
    "fraction, train, test",
    [
        (1.0, [486, 79, 123, 59], [451, 86, 83, 64]),
        (0.5, [243, 39, 61, 29], [225, 43, 41, 32]),
        (0.25, [121, 19, 30, 14], [112, 21, 20, 16]),
    ],
)
def test_first_k_reproduces_logged_counts(counts_root, fraction, train, test):
    cfg = {"root": str(counts_root), "subset_fraction": fraction, "subset_mode": "first_k"}
    ds_train = TrafficSigns(cfg, "train", check_images=False)
    ds_test = TrafficSigns(cfg, "test", check_images=False)
    assert (ds_train.set_name, ds_test.set_name) == ("Set1", "Set2")
    assert ds_train.class_counts() == train and ds_test.class_counts() == test
    assert len(ds_train) == sum(train) and ds_train.labels == [item.label for item in ds_train.items]


def test_first_k_keeps_the_first_of_each_class_in_file_order(counts_root):
    items = filter_entries(parse_annotations((counts_root / "Set1" / "annotations.txt").read_text()))
    kept = select_subset(items, 0.25, "first_k")
    assert [i.line for i in kept] == sorted(i.line for i in kept)
    for label in range(4):
        of_class = [i for i in items if i.label == label]
        assert [i for i in kept if i.label == label] == of_class[: len(of_class) // 4]


def test_stratified_random_train_only_and_seeded(counts_root):
    cfg = {"root": str(counts_root), "subset_fraction": 0.25, "subset_mode": "stratified_random", "train_set": "Set2"}
    a = TrafficSigns({**cfg, "data_seed": 1}, "train", check_images=False)
    b = TrafficSigns({**cfg, "data_seed": 1}, "train", check_images=False)
    c = TrafficSigns({**cfg, "data_seed": 2}, "train", check_images=False)
    test = TrafficSigns(cfg, "test", check_images=False)
    assert a.set_name == "Set2" and test.set_name == "Set1"
    assert a.class_counts() == [112, 21, 20, 16] and test.class_counts() == [486, 79, 123, 59]
    assert [i.line for i in a.items] == [i.line for i in b.items] != [i.line for i in c.items]
    assert class_counts(a.items) == class_counts(c.items)


def test_loads_images_and_display(small_root):
    cfg = {"root": str(small_root), "subset_fraction": 1.0, "image_height": 60, "image_width": 80}
    with pytest.warns(UserWarning, match="differs from the published Set1"):
        ds = TrafficSigns(cfg, "train")
    assert ds.labels == [c for _, c in CASES if c is not None]
    assert all(p.parent.name == "Set1Part0" for p in ds.files)
    image, target = ds[0]
    assert image.shape == (3, 60, 80) and image.dtype == torch.float32
    assert target["sign"].dtype == torch.long and target["sign"].shape == () and int(target["sign"]) == 1
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch[0].shape == (2, 3, 60, 80) and batch[1]["sign"].tolist() == [1, 0]
    picture, boxes, labels = ds.display(0)  # sign x 10.4-30.4, y 8-20 on 64x48, scaled by 1.25
    assert picture.shape == (60, 80, 3) and picture.dtype == np.uint8
    assert boxes.tolist() == [[10, 13, 15, 25]] and labels == {"sign": 1, "sign_name": "50"}
    assert ds.display(1)[1].shape == (0, 4) and ds.display(1)[2]["sign_name"] == "no-sign"


def test_test_split_has_no_augmentation_and_imagenet_normalisation(small_root):
    cfg = {"root": str(small_root), "subset_fraction": 1.0, "image_height": 48, "image_width": 64}
    ds = TrafficSigns(cfg, "test")
    assert all(p.parent.name == "Set2" for p in ds.files)
    x, _ = ds[0]
    raw = torch.from_numpy(np.array(Image.open(ds.files[0]).convert("RGB"))).permute(2, 0, 1) / 255
    mean, std = torch.tensor(ts.IMAGENET_MEAN)[:, None, None], torch.tensor(ts.IMAGENET_STD)[:, None, None]
    assert torch.allclose(x, (raw - mean) / std, atol=1e-5)
    assert torch.equal(ds[0][0], x)
    train = TrafficSigns({**cfg, "augment": True}, "train")
    torch.manual_seed(0)
    assert not torch.equal(train[0][0], train[0][0])  # jitter + shift differ between reads


def test_missing_image_names_path(small_root):
    (small_root / "Set1" / "Set1Part0" / "c.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"c\.jpg: image not found .*line 3"):
        TrafficSigns({"root": str(small_root)}, "train")
    with pytest.raises(FileNotFoundError, match=r"c\.jpg"):
        fetch_traffic(small_root)


def test_default_root_and_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("IPSLIB_DATA", str(tmp_path))
    assert ts.default_root() == tmp_path / "traffic_signs"
    with pytest.raises(FileNotFoundError, match="fetch traffic"):
        TrafficSigns({}, "train")


def test_fetch_verifies_existing_folder_without_network(small_root, monkeypatch):
    monkeypatch.setattr(tf, "_download", lambda url, dest: pytest.fail("network used"))
    assert fetch_traffic(str(small_root)) == small_root


def _fake_server(tmp_path: Path) -> dict[str, Path]:
    served = {}
    for name in ("Set1", "Set2"):
        source = tmp_path / "server" / name
        _write_set(source, [line.replace(".jpg", f"_{name}.jpg") for line, _ in CASES[:4]], subfolder=None)
        archive = tmp_path / "server" / f"{name}Part0.zip"
        with zipfile.ZipFile(archive, "w") as zipped:
            for image in source.glob("*.jpg"):
                zipped.write(image, f"{name}Part0/{image.name}")
        served[f"{ts.BASE_URL}{name}/annotations.txt"] = source / "annotations.txt"
        served[f"{ts.BASE_URL}{name}/{name}Part0.zip"] = archive
    return served


def test_fetch_downloads_checks_md5_and_installs(tmp_path, monkeypatch):
    served = _fake_server(tmp_path)
    monkeypatch.setattr(tf, "_download", lambda url, dest: shutil.copy(served[url], dest))
    monkeypatch.setitem(KNOWN_MD5, "Set1", "0" * 32)
    root = tmp_path / "data"
    with pytest.raises(ValueError, match="Set1/annotations.txt: md5 .* expected 0{32}"):
        fetch_traffic(root)
    assert not (root / "Set1").exists() and [p.name for p in root.iterdir()] == []  # nothing half-installed
    for name in ("Set1", "Set2"):
        monkeypatch.setitem(KNOWN_MD5, name, tf.file_md5(served[f"{ts.BASE_URL}{name}/annotations.txt"]))
        monkeypatch.setitem(KNOWN_MD5, f"{name}Part0.zip", tf.file_md5(served[f"{ts.BASE_URL}{name}/{name}Part0.zip"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fetch_traffic(root) == root
    assert sorted(p.name for p in root.iterdir()) == ["Set1", "Set2"]
    ds = TrafficSigns({"root": str(root), "subset_fraction": 1.0, "image_height": 48, "image_width": 64}, "test")
    assert ds.labels == [1, 0, 0, 2] and ds.files[0].parent == root / "Set2" / "Set2Part0"


def test_fetch_offline_explains_manual_placement(tmp_path, monkeypatch):
    def offline(url, dest):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(tf, "_download", offline)
    with pytest.raises(ConnectionError, match="To install by hand.*Set1Part0.zip"):
        fetch_traffic(tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []
