"""The committed cpu-profile outputs are consistent and current, so `make book` on a fresh clone only renders.

The cpu profile is trained over several sessions (issue 18), so a run of the manifest may still be missing;
then its chapter must say so. Every finished record was made with its run's current config; every notebook was
executed successfully with the current code, params and results (its fingerprint in status.json matches) and
names each of its runs that has no finished record; the runs whose models a page reads (attention maps,
attention density) keep their checkpoints; no record of a run outside the manifest is left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipslib.engine.records import is_finished
from ipslib.study.experiments import load_experiments
from ipslib.study.runner import fingerprint, notebook_path, read_status

ROOT = Path(__file__).resolve().parents[1]
READS_MODELS = {"attention_maps", "stkim_density"}
EXPERIMENTS = load_experiments(ROOT)


def _page_text(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "".join(str(o.get("data", {}).get("text/markdown", "")) for c in cells for o in c.get("outputs", []))


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_cpu_experiment_is_executed_and_current(name):
    experiment = EXPERIMENTS[name]
    entry = read_status("cpu").get(name)
    assert entry is not None, f"{name} has no entry in outputs/cpu/status.json"
    assert entry["status"] == "ok", entry
    assert notebook_path("cpu", name).is_file()
    assert entry["fingerprint"] == fingerprint(experiment, "cpu"), (
        f"the committed cpu notebook of {name} is stale: re-run `ipslib run {name} --profile cpu`"
    )
    unfinished = [s.name for s in experiment.runs("cpu") if not is_finished(s.run_dir, s.config)]
    page = _page_text(notebook_path("cpu", name))
    silent = [run for run in unfinished if run not in page]
    assert not silent, f"{name}: runs without a finished record that its page does not name: {silent}"
    if experiment.notebook in READS_MODELS:
        for spec in experiment.runs("cpu"):
            if is_finished(spec.run_dir, spec.config):
                assert (spec.run_dir / "checkpoint.pt").is_file(), f"{spec.name} needs its checkpoint committed"


def test_no_stale_cpu_records():
    keys = {s.key for e in EXPERIMENTS.values() for s in e.runs("cpu")}
    folders = {p.name for p in (ROOT / "outputs" / "cpu" / "runs").iterdir() if p.is_dir()}
    assert folders <= keys, f"records of runs outside the cpu manifest: {sorted(folders - keys)}"
