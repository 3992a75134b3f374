"""Run-directory records: config round trip and conflicts, metrics summary shape (atomic writes: test_system)."""

import json
import math

import pytest

from ipslib.config import RunConfig
from ipslib.engine import records
from ipslib.system.files import atomic_write_json


def _cfg(**changes):
    base = dict(canvas_size=200, digit_size=28, n_train=4, n_test=2, digit_source="sample", patch_size=20, epochs=2)
    return RunConfig.from_flat({**base, **changes})


def test_config_round_trip_with_key_in_header(tmp_path):
    cfg = _cfg(lr=3e-4)
    records.write_config(tmp_path, cfg)
    assert records.read_config(tmp_path) == cfg
    assert cfg.key() in (tmp_path / records.CONFIG_FILE).read_text().splitlines()[0]


def test_conflicting_config_names_the_keys(tmp_path):
    records.write_config(tmp_path, _cfg())
    records.check_run_dir(tmp_path, _cfg(num_workers=2, device="cpu"))  # execution-only keys do not conflict
    with pytest.raises(records.RunDirConflict, match=r"threads: 0 -> 2"):  # threads change the numbers
        records.check_run_dir(tmp_path, _cfg(threads=2))
    with pytest.raises(records.RunDirConflict, match=r"memory_size: 100 -> 5; lr: 0\.001 -> 0\.01"):
        records.check_run_dir(tmp_path, _cfg(lr=0.01, memory_size=5))


def test_summarise_shape_best_and_nan():
    rows = [
        {
            "epoch": e,
            "lr": 0.1,
            "epoch_seconds": 1.0,
            "ms_per_batch": ms,
            "peak_memory_mb": mb,
            "train/accuracy": 0.5,
            "test/accuracy": acc,
            "train/a/accuracy": 0.5,
            "train/a/loss": 1.0,
            "test/a/accuracy": acc,
            "test/a/loss": float("nan"),
        }
        for e, acc, ms, mb in [(1, 0.2, 10.0, 100.0), (2, 0.6, 20.0, 300.0), (3, 0.6, 30.0, 200.0)]
    ]
    out = records.summarise(rows, ["a"], device="cpu", finished=True, config_key="k", epochs=3)
    assert out["last"]["epoch"] == 3 and out["best"]["epoch"] == 2
    assert out["best"]["test"] == {"a": {"accuracy": 0.6, "loss": None}}
    assert out["efficiency"] == {"ms_per_batch": 20.0, "peak_memory_mb": 300.0, "device": "cpu"}
    assert (out["finished"], out["config_key"], out["epochs"]) == (True, "k", 3)
    json.dumps(out, allow_nan=False)


def test_history_round_trip_and_finished(tmp_path):
    cfg = _cfg()
    records.write_config(tmp_path, cfg)
    records.write_history(tmp_path, [{"train/x": 1.0, "epoch": 1, "lr": 0.5, "test/diversity": math.nan}])
    run = records.load_run(tmp_path)
    assert list(run.history.columns[:2]) == ["epoch", "lr"] and math.isnan(run.history["test/diversity"][0])
    assert not run.finished and not records.is_finished(tmp_path)
    atomic_write_json(tmp_path / records.METRICS_FILE, {"finished": True, "config_key": cfg.key()})
    assert records.is_finished(tmp_path) and records.is_finished(tmp_path, cfg)
    assert not records.is_finished(tmp_path, _cfg(lr=0.5))


def test_load_run_needs_a_run_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        records.load_run(tmp_path)
