"""``ipslib predict`` end to end on a model trained here in seconds, and its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from tiny import tiny_mnist

from ipslib.cli import main
from ipslib.config import RunConfig
from ipslib.data.megapixel_mnist import MegapixelMNIST
from ipslib.data.mnist_patches import MegapixelPatchSource
from ipslib.engine import training as engine
from ipslib.engine.predict import load_model, predict, score_grid

TINY = tiny_mnist(batch_size=8, device="auto")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_model")
    engine.train(RunConfig.from_flat(TINY), out, progress=False)
    return out


def test_predict_mnist_canvas_writes_json_and_png(run_dir, tmp_path, capsys):
    out = tmp_path / "pred"
    assert main(["predict", str(run_dir), "--mnist-index", "2", "--canvas", "400", "--out", str(out)]) == 0
    report = json.loads((out / "prediction.json").read_text())
    assert set(report["tasks"]) == {"majority", "max", "top", "multi"}
    assert len(report["tasks"]["majority"]["probabilities"]) == 10
    assert report["n_patches"] == 100 and len(report["kept_patches"]["indices"]) == 4
    assert report["background_encodings_skipped"] > 0
    assert (
        report["true_labels"]["majority"]
        == MegapixelMNIST({**_data(), "canvas_size": 400}, "test")[2].labels["majority"]
    )
    assert (out / "attention.png").stat().st_size > 1000
    assert "prediction.json" in capsys.readouterr().out


def test_predict_reads_the_checkpoint_once(run_dir, tmp_path, monkeypatch):
    loads = []
    real_load = torch.load

    def counting_load(*args, **kwargs):
        loads.append(args[0])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    assert main(["predict", str(run_dir), "--mnist-index", "1", "--out", str(tmp_path / "once")]) == 0
    assert [Path(p).name for p in loads] == ["checkpoint.pt"]


def _data() -> dict:
    keys = ("canvas_size", "digit_size", "n_noise", "n_train", "n_test", "digit_source")
    return {k: TINY[k] for k in keys}


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".png"])
def test_predict_image_files(run_dir, tmp_path, suffix):
    image = MegapixelMNIST(_data(), "test")[1].image
    path = tmp_path / f"canvas{suffix}"
    if suffix == ".npy":
        np.save(path, image)
    elif suffix == ".tif":
        tifffile.imwrite(path, image, tile=(64, 64))
    else:
        Image.fromarray(image).save(path)
    out = tmp_path / "out"
    assert main(["predict", str(run_dir / "checkpoint.pt"), "--image", str(path), "--out", str(out)]) == 0
    report = json.loads((out / "prediction.json").read_text())
    assert report["image_size"] == [160, 160] and (out / "attention.png").is_file()


def test_prediction_is_the_same_for_stream_and_file(run_dir, tmp_path):
    net, cfg = load_model(run_dir)
    ds = MegapixelMNIST(_data(), "test")
    streamed = predict(net, cfg, MegapixelPatchSource(ds, [0], 40))
    np.save(tmp_path / "x.npy", ds[0].image)
    from ipslib.engine.predict import image_source

    from_file = predict(net, cfg, image_source(cfg, tmp_path / "x.npy"))
    assert np.array_equal(streamed.indices, from_file.indices)
    assert streamed.tasks == from_file.tasks
    grid = score_grid(streamed.indices, streamed.scores, streamed.grid)
    assert grid.shape == (4, 4) and np.isfinite(grid).sum() == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "{missing}", "--mnist-index", "0"], "no such file or run directory"),
        (["predict", "{run}", "--image", "{tmp}/x.bmp"], "x.bmp: unknown image type '.bmp'"),
        (["predict", "{run}", "--image", "{tmp}/absent.npy"], "absent.npy: no such file"),
        (["predict", "{run}", "--mnist-index", "4"], "--mnist-index 4 is out of range"),
        (["predict", "{run}", "--image", "{tmp}/x.bmp", "--canvas", "500"], "go with --mnist-index"),
    ],
)
def test_bad_inputs_fail_clearly(run_dir, tmp_path, capsys, args, message):
    (tmp_path / "x.bmp").write_bytes(b"BM")
    values = {"missing": str(tmp_path / "nothing"), "run": str(run_dir), "tmp": str(tmp_path)}
    assert main([a.format(**values) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("ipslib predict: error:")


def test_non_checkpoint_file_is_refused(tmp_path, capsys):
    bogus = tmp_path / "checkpoint.pt"
    torch.save({"weights": 1}, bogus)
    assert main(["predict", str(bogus), "--mnist-index", "0"]) == 2
    assert "not an ipslib checkpoint" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_gpu_check_fails_clearly_without_cuda(tmp_path):
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        ["bash", str(root / "benchmarks" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "OUT": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 2
    assert "no CUDA device" in done.stderr
    assert not (tmp_path / "gpu_check.json").exists()
