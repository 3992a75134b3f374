"""The dataset registry: one entry per configured dataset, its classes, torch views and chance levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ipslib.config import DATASETS, ConfigError, RunConfig
from ipslib.data import build_dataset
from ipslib.data.registry import REGISTRY, chance_levels, entry

pytestmark = pytest.mark.filterwarnings("ignore:.*differs from the published:UserWarning")

MNIST = {"canvas_size": 140, "n_noise": 5, "n_train": 4, "n_test": 4, "digit_source": "sample", "patch_size": 28}
SYNTHETIC = {
    "dataset": "synthetic_traffic",
    "image_height": 64,
    "image_width": 96,
    "n_train": 3,
    "n_test": 3,
    "sign_min_size": 8,
    "sign_max_size": 24,
    "class_probs": [0.1, 0.2, 0.3, 0.4],
    "patch_size": 32,
}
SIGN_50 = "VISIBLE, 30.4, 20.0, 10.4, 8.0, PROHIBITORY, 50_SIGN;"
SIGN_70 = "VISIBLE, 40.0, 30.0, 20.0, 10.0, PROHIBITORY, 70_SIGN;"


def _write_set(set_dir: Path, bodies: list[str]) -> None:
    set_dir.mkdir(parents=True)
    lines = [f"{set_dir.name}_{k}.jpg:{body}" for k, body in enumerate(bodies)]
    (set_dir / "annotations.txt").write_text("\n".join(lines) + "\n")
    rng = np.random.default_rng(0)
    for line in lines:
        image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(image).save(set_dir / line.split(":")[0], quality=90)


@pytest.fixture
def traffic(tmp_path: Path) -> RunConfig:
    """Real-format traffic files: Set1 trains (2 images), Set2 tests with labels no-sign x3, 50, 70."""
    _write_set(tmp_path / "Set1", ["", SIGN_50])
    _write_set(tmp_path / "Set2", ["", "MISC_SIGNS;", "", SIGN_50, SIGN_70])
    return RunConfig.from_flat(
        dataset="traffic_signs",
        root=str(tmp_path),
        subset_fraction=1.0,
        image_height=48,
        image_width=64,
        augment=False,
        patch_size=16,
    )


def _configs(traffic: RunConfig) -> dict[str, RunConfig]:
    return {
        "megapixel_mnist": RunConfig.from_flat(MNIST),
        "synthetic_traffic": RunConfig.from_flat(SYNTHETIC),
        "traffic_signs": traffic,
    }


def test_registry_names_are_the_configured_datasets():
    assert set(REGISTRY) == set(DATASETS)
    for name, item in REGISTRY.items():
        assert item.name == name and entry(name) is item
        assert item.config_class is DATASETS[name]
        assert item.chance_rule
    assert [n for n, e in REGISTRY.items() if e.synthetic] == ["synthetic_traffic"]
    assert [n for n, e in REGISTRY.items() if e.layout_streaming] == ["megapixel_mnist"]


def test_unknown_name_is_a_config_error_naming_the_valid_ones():
    with pytest.raises(ConfigError, match="dataset='cifar' is not valid; choose one of") as err:
        entry("cifar")
    assert all(repr(name) in str(err.value) for name in DATASETS)


def test_dataset_classes_resolve():
    from ipslib.data.megapixel_mnist import MegapixelMNIST
    from ipslib.data.synthetic_traffic import SyntheticTraffic
    from ipslib.data.traffic_signs import TrafficSigns

    classes = {"megapixel_mnist": MegapixelMNIST, "synthetic_traffic": SyntheticTraffic, "traffic_signs": TrafficSigns}
    assert {name: item.cls() for name, item in REGISTRY.items()} == classes


def test_each_class_accepts_its_config_and_build_dataset_returns_its_torch_view(traffic):
    from ipslib.data.megapixel_mnist import MegapixelMNISTTorch
    from ipslib.data.synthetic_traffic import SyntheticTrafficTorch
    from ipslib.data.traffic_signs import TrafficSigns

    views = {
        "megapixel_mnist": MegapixelMNISTTorch,
        "synthetic_traffic": SyntheticTrafficTorch,
        "traffic_signs": TrafficSigns,  # already a torch Dataset
    }
    for name, cfg in _configs(traffic).items():
        opened = entry(name).open(cfg.data, "test")
        assert isinstance(opened, entry(name).cls())
        assert len(opened.display(0)) == 3  # image, boxes, labels: what `ipslib data show` draws
        view = build_dataset(cfg, "test")
        assert type(view) is views[name] and len(view) == len(opened)
        image, targets = view[0]
        again, _ = entry(name).torch_view(cfg.data, "test")[0]
        assert image.shape == cfg.data.image_shape and torch.equal(image, again)
        assert set(targets) == set(cfg.tasks)


def test_build_dataset_rejects_unknown_split():
    with pytest.raises(ValueError, match="split='val' is not valid; choose one of 'train', 'test'"):
        build_dataset(RunConfig.from_flat(MNIST), "val")


def test_mnist_chance_levels_closed_form():
    """The sample digits are balanced (f_c = 1/10), so the best constant predictions have closed forms:
    majority and top 1/10; max predicts 9: 1/10 + 9/10 * (1 - (8/9)^2); multi predicts one 3-set:
    three targets, then the two others in either order, each 1/9: 3 * 1/10 * 2/81."""
    from ipslib.data.megapixel_mnist import MegapixelMNIST

    cfg = RunConfig.from_flat(MNIST)
    counts = np.bincount(np.asarray(MegapixelMNIST(cfg.data, "test").digits.labels), minlength=10)
    assert (counts == counts[0]).all()
    expected = {"majority": 0.1, "max": 0.1 + 0.9 * (1 - (8 / 9) ** 2), "top": 0.1, "multi": 3 * 0.1 * 2 / 81}
    assert chance_levels(cfg) == pytest.approx(expected, abs=1e-12)


def test_traffic_chance_levels(traffic):
    assert chance_levels(RunConfig.from_flat(SYNTHETIC)) == pytest.approx({"sign": 0.4})
    assert chance_levels(traffic) == pytest.approx({"sign": 3 / 5})  # Set2: three no-sign of five


def test_verdict_still_offers_chance_levels():
    from ipslib.study import verdict

    assert verdict.chance_levels is chance_levels
