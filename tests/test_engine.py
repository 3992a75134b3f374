"""Training engine on tiny shapes: run-directory files, resume, skip, refusal, sub-batching."""

import json

import pandas as pd
import pytest
import torch
from tiny import tiny_mnist

from ipslib.config import RunConfig
from ipslib.engine import records
from ipslib.engine import training as engine

TINY = tiny_mnist(
    canvas_size=200,
    n_noise=5,
    n_train=6,
    n_test=3,
    patch_size=20,
    iter_size=8,
    n_heads=4,
    head_dim=16,
    mlp_dim=32,
    epochs=2,
    warmup_epochs=1,
)
TIMING_KEYS = {"efficiency", "wall_seconds"}


def tiny(**changes) -> RunConfig:
    return RunConfig.from_flat({**TINY, **changes})


def _untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


def _untimed_history(run_dir) -> pd.DataFrame:
    return records.read_history(run_dir).drop(columns=["epoch_seconds", "ms_per_batch", "peak_memory_mb"])


def test_two_epoch_run_writes_every_file(tmp_path):
    cfg = tiny()
    lines = []
    metrics = engine.train(cfg, tmp_path, progress=False, log=lines.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [records.CONFIG_FILE, records.HISTORY_FILE, records.METRICS_FILE, records.CHECKPOINT_FILE]
    )
    assert metrics == json.loads((tmp_path / records.METRICS_FILE).read_text())
    assert metrics["finished"] is True and metrics["epochs"] == 2 and metrics["config_key"] == cfg.key()
    for stage in ("last", "best"):
        block = metrics[stage]
        assert set(block) == {"epoch", "train", "test"}
        for split in ("train", "test"):
            assert set(block[split]) == set(cfg.tasks)
            for values in block[split].values():
                assert set(values) == {"accuracy", "loss"} and 0 <= values["accuracy"] <= 1 and values["loss"] > 0
    assert metrics["last"]["epoch"] == 2
    import numpy
    import torch
    import torchvision

    assert metrics["versions"] == {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "python": metrics["versions"]["python"],
    }
    assert set(metrics["code"]) == {"commit", "dirty"}
    assert metrics["code"]["commit"] is None or len(metrics["code"]["commit"]) == 40
    eff = metrics["efficiency"]
    assert eff["device"] == "cpu" and eff["ms_per_batch"] > 0 and eff["peak_memory_mb"] > 0
    history = records.read_history(tmp_path)
    assert history["epoch"].tolist() == [1, 2]
    for column in [
        "lr",
        "epoch_seconds",
        "ms_per_batch",
        "peak_memory_mb",
        "train/loss",
        "test/loss",
        "train/majority/accuracy",
        "test/multi/accuracy",
        "test/majority/loss",
        "train/diversity",
        "train/semantic",
    ]:
        assert column in history, column
    # lr at the end of epoch 2 = the last step of the cosine: lr * min_lr_ratio
    assert history["lr"].iloc[-1] == pytest.approx(cfg.train.lr * cfg.train.min_lr_ratio)
    ckpt = torch.load(tmp_path / records.CHECKPOINT_FILE, weights_only=True)
    assert {"model", "optimizer", "epoch", "global_step", "history", "rng", "config", "content_sha256"} <= set(ckpt)
    assert not (tmp_path / "checkpoint.prev.pt").exists()  # a finished run keeps only its final checkpoint
    assert (ckpt["epoch"], ckpt["global_step"]) == (2, 4)
    assert records.load_run(tmp_path).config == cfg
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2")


def test_resume_gives_the_uninterrupted_result(tmp_path):
    cfg = tiny(epochs=3)
    full = engine.train(cfg, tmp_path / "full", progress=False)
    part = engine.train(cfg, tmp_path / "part", progress=False, stop_after_epoch=1)
    assert part["finished"] is False and part["last"]["epoch"] == 1
    assert not records.is_finished(tmp_path / "part")
    lines = []
    resumed = engine.train(cfg, tmp_path / "part", progress=False, log=lines.append)
    assert "resuming after epoch 1" in lines[0]
    assert _untimed(resumed) == _untimed(full)
    pd.testing.assert_frame_equal(_untimed_history(tmp_path / "part"), _untimed_history(tmp_path / "full"))


def test_finished_run_is_skipped_and_force_retrains(tmp_path):
    cfg = tiny(epochs=1)
    first = engine.train(cfg, tmp_path, progress=False)
    stamp = (tmp_path / records.CHECKPOINT_FILE).stat().st_mtime_ns
    lines = []
    assert engine.train(cfg, tmp_path, progress=False, log=lines.append) == first
    assert "complete" in lines[0]
    assert (tmp_path / records.CHECKPOINT_FILE).stat().st_mtime_ns == stamp
    again = engine.train(cfg, tmp_path, progress=False, force=True)
    assert (tmp_path / records.CHECKPOINT_FILE).stat().st_mtime_ns != stamp
    assert _untimed(again) == _untimed(first)


def test_other_config_in_the_same_run_dir_is_refused(tmp_path):
    engine.train(tiny(epochs=1), tmp_path, progress=False, stop_after_epoch=0)
    with pytest.raises(records.RunDirConflict, match=r"memory_size: 4 -> 6"):
        engine.train(tiny(epochs=1, memory_size=6), tmp_path, progress=False)
    engine.train(tiny(epochs=1, num_workers=0, device="cpu"), tmp_path, progress=False, stop_after_epoch=0)
    with pytest.raises(records.RunDirConflict, match=r"threads: 1 -> 2"):  # threads change the numbers
        engine.train(tiny(epochs=1, threads=2), tmp_path, progress=False, stop_after_epoch=0)


def _one_step(cfg: RunConfig, images, targets):
    from ipslib.model.ips import IPSNet

    torch.manual_seed(0)
    net = IPSNet.from_config(cfg)
    optimizer = engine.build_optimizer(net, cfg)
    net.train()
    engine.train_step(net, optimizer, images, targets, engine.Context(cfg, torch.device("cpu")), lr=1e-3)
    return net


def test_sub_batches_give_the_full_batch_update():
    from ipslib.data import build_dataset

    cfg = tiny(dropout=0.0, attn_dropout=0.0, shuffle=False, n_train=4)
    images, targets = torch.utils.data.default_collate([build_dataset(cfg, "train")[i] for i in range(4)])
    full = _one_step(cfg, images, targets)
    sub = _one_step(cfg.replace(sub_batch_size=1), images, targets)
    for (name, a), b in zip(full.state_dict().items(), sub.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_bf16_autocast_runs_on_the_cpu(tmp_path):
    metrics = engine.train(tiny(epochs=1, amp="bf16", n_train=4, n_test=2), tmp_path, progress=False)
    assert metrics["finished"]


def test_regulariser_values_are_recorded(tmp_path):
    engine.train(
        tiny(epochs=1, diversity_weight=1.0, semantic_weight=1.0, n_train=4, n_test=2), tmp_path, progress=False
    )
    history = records.read_history(tmp_path)
    assert -1 / 3 - 1e-6 <= history["train/diversity"][0] <= 1  # H = 4 heads: L_d >= -1/(H-1)
    assert history["train/semantic"][0] > 0 and history["test/semantic"][0] > 0
