"""``ipslib data show`` / ``ipslib data fetch`` and the figure helpers in :mod:`ipslib.data.display`."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from ipslib import cli
from ipslib.data import mnist
from ipslib.data.display import draw_sample, format_labels, max_downsample

PARAMS = """\
dataset: megapixel_mnist
canvas_size: 1200
digit_size: 28
n_noise: 40
digit_source: sample
n_test: 5
patch_size: 50
"""


@pytest.fixture
def params(tmp_path):
    path = tmp_path / "params.yml"
    path.write_text(PARAMS)
    return path


def test_show_writes_a_png(params, tmp_path, capsys):
    import matplotlib.pyplot as plt

    out = tmp_path / "figs" / "canvas.png"
    assert (
        cli.main(
            ["data", "show", str(params), "--split", "test", "--index", "0", "--out", str(out), "--max-side", "600"]
        )
        == 0
    )
    with Image.open(out) as png:
        assert png.format == "PNG" and min(png.size) > 200
    assert "canvas.png" in capsys.readouterr().out
    assert plt.get_fignums() == []  # no pyplot state leaked


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--index", "5"], "out of range"),
        (["--index", "0"], "unknown key"),
    ],
)
def test_show_errors_name_the_file(params, tmp_path, capsys, args, expected):
    if expected == "unknown key":
        params.write_text(PARAMS + "colour: red\n")
    assert cli.main(["data", "show", str(params), *args, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert str(params) in err and expected in err
    assert not (tmp_path / "x.png").exists()


def test_show_missing_params_file(tmp_path, capsys):
    missing = tmp_path / "nope.yml"
    assert cli.main(["data", "show", str(missing), "--out", str(tmp_path / "x.png")]) == 2
    assert str(missing) in capsys.readouterr().err


def test_fetch_mnist_reports_the_source(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "mnist"
    md5 = {}
    for split, names in mnist.MNIST_FILES.items():
        for name, array in zip(names, mnist.load_sample(split)[:2]):
            mnist.write_idx(cache / name, array)
            md5[name] = hashlib.md5((cache / name).read_bytes()).hexdigest()
    monkeypatch.setattr(mnist, "MNIST_MD5", md5)
    monkeypatch.setattr(mnist, "SOURCES", {"local folder": mnist._from_local})
    assert cli.main(["data", "fetch", "mnist", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "local folder" in out and str(cache) in out and "600 train + 300 test" in out
    (cache / "t10k-labels-idx1-ubyte").write_bytes(b"broken")
    assert cli.main(["data", "fetch", "--root", str(tmp_path)]) == 2
    assert "md5" in capsys.readouterr().err


def test_fetch_traffic_delegates(tmp_path, monkeypatch, capsys):
    import ipslib.data.traffic_signs as traffic

    calls = []
    monkeypatch.setattr(traffic, "fetch_traffic", lambda root: calls.append(root) or tmp_path / "traffic")
    assert cli.main(["data", "fetch", "traffic", "--root", str(tmp_path)]) == 0
    assert calls == [tmp_path] and str(tmp_path / "traffic") in capsys.readouterr().out


def test_max_downsample_keeps_thin_strokes():
    image = np.zeros((100, 90), np.uint8)
    image[37, :] = 255  # a 1-px line
    small = max_downsample(image, 4)
    assert small.shape == (25, 23) and (small[9] == 255).all() and small.sum() == 255 * 23
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[3, 3] = (1, 2, 3)
    assert max_downsample(rgb, 3).shape == (4, 4, 3) and tuple(max_downsample(rgb, 3)[1, 1]) == (1, 2, 3)


def test_draw_sample_grayscale_and_rgb(tmp_path):
    labels = {"majority": 3, "multi": np.array([0, 1, 0, 1, 0, 0, 0, 0, 0, 0])}
    assert format_labels(labels) == "majority=3  multi={1,3}"
    assert format_labels({"multi": np.zeros(10, int)}) == "multi=none"  # no class predicted present
    for image in (np.zeros((2500, 1800), np.uint8), np.zeros((120, 160, 3), np.uint8)):
        fig = draw_sample(image, np.array([[10, 20, 28, 28]]), labels, title="t", box_labels=["3"])
        fig.savefig(tmp_path / "f.png")
        assert (tmp_path / "f.png").stat().st_size > 1000
    with pytest.raises(ValueError):
        draw_sample(np.zeros(5), np.zeros((0, 4)), {})
