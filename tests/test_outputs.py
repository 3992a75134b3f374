"""The committed cpu-profile outputs are complete and current, so `make book` on a fresh clone only renders.

Every run of every cpu experiment has a finished record made with its current config; every notebook was
executed successfully with the current code, params and results (its fingerprint in status.json matches);
the runs whose models a page reads (attention maps, attention density) keep their checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ipslib.engine.records import is_finished
from ipslib.study.experiments import load_experiments
from ipslib.study.runner import fingerprint, notebook_path, read_status

ROOT = Path(__file__).resolve().parents[1]
READS_MODELS = {"attention_maps", "stkim_density"}
EXPERIMENTS = load_experiments(ROOT)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_cpu_experiment_is_executed_and_current(name):
    experiment = EXPERIMENTS[name]
    unfinished = [s.name for s in experiment.runs("cpu") if not is_finished(s.run_dir, s.config)]
    assert not unfinished, f"cpu runs without a finished record: {unfinished} (ipslib run {name} --profile cpu)"
    entry = read_status("cpu").get(name)
    assert entry is not None, f"{name} has no entry in outputs/cpu/status.json"
    assert entry["status"] == "ok" and not entry["failed"], entry
    assert notebook_path("cpu", name).is_file()
    assert entry["fingerprint"] == fingerprint(experiment, "cpu"), (
        f"the committed cpu notebook of {name} is stale: re-run `ipslib run {name} --profile cpu`"
    )
    if experiment.notebook in READS_MODELS:
        for spec in experiment.runs("cpu"):
            assert (spec.run_dir / "checkpoint.pt").is_file(), f"{spec.name} needs its checkpoint committed"
