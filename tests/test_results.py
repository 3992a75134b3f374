"""Results tables from run records: cases that leave a varied key unset, plot axes, efficiency columns,
and the status page's training time (a run shared by two experiments counts once)."""

from __future__ import annotations

import pytest

from ipslib.engine.records import summarise, write_config, write_history
from ipslib.system.files import atomic_write_json

DEFAULTS = """
traffic:
  smoke: &d {dataset: synthetic_traffic, image_height: 64, image_width: 64, n_train: 40, n_test: 200,
             sign_min_size: 16, sign_max_size: 24, patch_size: 32, memory_size: 4, iter_size: 4,
             class_probs: [0.4, 0.2, 0.2, 0.2]}
  cpu: *d
  paper: *d
"""
PATCHES = """
title: patches
family: traffic
profiles:
  smoke:
    cases:
      - {patch_size: 16, memory_size: 8, iter_size: 8}
      - {patch_size: 32}
  cpu: {runs: false}
  paper: {runs: false}
"""
SIZES = """
title: sizes
family: traffic
profiles:
  smoke: {grid: {n_train: [20, 40]}}
  cpu: {runs: false}
  paper: {runs: false}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "params").mkdir()
    (tmp_path / "book" / "templates").mkdir(parents=True)
    (tmp_path / "book" / "templates" / "experiment.md").write_text("")
    (tmp_path / "params" / "_defaults.yaml").write_text(DEFAULTS)
    (tmp_path / "params" / "patches.yaml").write_text(PATCHES)
    (tmp_path / "params" / "sizes.yaml").write_text(SIZES)
    monkeypatch.setenv("IPSLIB_ROOT", str(tmp_path))
    return tmp_path


def _record(spec, accuracy: float, epoch_seconds: float = 10.0) -> None:
    rows = [
        {
            "epoch": e,
            "lr": 1e-3,
            "epoch_seconds": epoch_seconds,
            "ms_per_batch": 50.0 * e,
            "peak_memory_mb": 100.0,
            "test/sign/accuracy": accuracy * e / 2,
            "test/sign/loss": 1.0,
            "train/sign/accuracy": 0.9,
            "train/sign/loss": 0.5,
            "test/accuracy": accuracy * e / 2,
        }
        for e in (1, 2)
    ]
    spec.run_dir.mkdir(parents=True)
    write_config(spec.run_dir, spec.config)
    write_history(spec.run_dir, rows)
    atomic_write_json(
        spec.run_dir / "metrics.json",
        summarise(rows, ["sign"], finished=True, config_key=spec.key, epochs=2, device="cpu"),
    )


def test_a_case_leaving_a_key_unset_keeps_its_row(project):
    from ipslib.study import report
    from ipslib.study.experiments import load_experiments
    from ipslib.study.results import load_results

    small, large = load_experiments()["patches"].runs("smoke")
    _record(small, 0.8)
    _record(large, 0.6)
    results = load_results("patches", "smoke")
    table = report.summary_table(results, "last")
    # the 32-px case takes memory_size 4 from the profile instead of vanishing as NaN
    assert table.loc[(16, 8, 8), "sign"] == "80.0" and table.loc[(32, 4, 4), "sign"] == "60.0"
    assert report._plot_axis(results) == ("patch_size", None)  # memory_size follows patch_size: no hue
    runs = report.runs_table(results)
    assert list(runs["ms per batch"]) == [75.0, 75.0] and list(runs["peak memory (MB)"]) == [100.0, 100.0]


def test_training_time_counts_a_shared_run_once(project):
    from ipslib.study import book
    from ipslib.study.experiments import load_experiments

    experiments = load_experiments()
    patches = experiments["patches"].runs("smoke")
    sizes = experiments["sizes"].runs("smoke")
    assert patches[1].key == sizes[1].key  # the 32-px, 40-scene run belongs to both experiments
    for spec in {s.key: s for s in patches + sizes}.values():
        _record(spec, 0.5, epoch_seconds=30.0)
    seconds, runs = book.training_seconds("smoke")
    assert runs == 3 and seconds == pytest.approx(3 * 2 * 30.0)
