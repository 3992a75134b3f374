"""Results of an experiment for the book: run records joined with the manifest and the dissertation's numbers.

``load_results(experiment, profile)`` is the one call a notebook makes. Accuracies are fractions in the
run records and percentages in the comparison tables (as printed in the dissertation). Across repeats we
report mean ± population std (ddof=0), the dissertation's convention (spec §6).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ipslib.config import ConfigError, RunConfig
from ipslib.engine.records import is_finished, load_run
from ipslib.study import cells
from ipslib.study.experiments import Experiment, RunSpec, load_experiments

__all__ = ["ExperimentResults", "load_results", "override_runs", "METRIC_STAGES"]

METRIC_STAGES = ("last", "best")


def _run_row(spec: RunSpec) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": spec.name,
        "repeat": spec.repeat,
        "key": spec.key,
        "run_dir": str(spec.run_dir),
        **spec.varied,
    }
    row["finished"] = is_finished(spec.run_dir, spec.config)
    if not row["finished"]:
        return row
    metrics = load_run(spec.run_dir).metrics
    for stage in METRIC_STAGES:
        row[f"{stage}_epoch"] = metrics[stage]["epoch"]
        for split in ("train", "test"):
            for task, values in metrics[stage][split].items():
                row[f"{stage}_{split}_{task}"] = values["accuracy"]
                row[f"{stage}_{split}_{task}_loss"] = values["loss"]
    efficiency = metrics.get("efficiency", {})
    row["ms_per_batch"] = efficiency.get("ms_per_batch")
    row["peak_memory_mb"] = efficiency.get("peak_memory_mb")
    row["device"] = efficiency.get("device")
    return row


@dataclass
class ExperimentResults:
    """Everything a results page shows for one experiment in one profile."""

    experiment: Experiment
    profile: str
    specs: list[RunSpec]
    runs: pd.DataFrame

    @property
    def tasks(self) -> list[str]:
        return list(self.specs[0].config.tasks) if self.specs else []

    @property
    def varied_keys(self) -> list[str]:
        keys: list[str] = []
        for spec in self.specs:
            keys += [k for k in spec.varied if k not in keys]
        return keys

    @property
    def missing(self) -> list[str]:
        """Names of runs without a finished record (shown, never silently dropped)."""
        return self.runs.loc[~self.runs["finished"], "name"].tolist() if len(self.runs) else []

    def summary(self, stage: str = "last", split: str = "test") -> pd.DataFrame:
        """Accuracy (%) per setting and task: mean and population std over repeats, and the repeat count."""
        done = self.runs[self.runs["finished"]]
        if done.empty:
            return pd.DataFrame()
        by = self.varied_keys or ["name"]
        columns = {task: f"{stage}_{split}_{task}" for task in self.tasks}
        long = done.melt(id_vars=by, value_vars=list(columns.values()), var_name="column", value_name="acc")
        long["task"] = long["column"].map({v: k for k, v in columns.items()})
        grouped = long.groupby([*by, "task"], sort=False, dropna=False)["acc"]
        out = grouped.agg(mean=lambda s: 100 * s.mean(), std=lambda s: 100 * s.std(ddof=0), n="count")
        return out.reset_index()

    def comparison(self) -> pd.DataFrame:
        """Every printed cell of the dissertation that belongs to this page, with its status in this profile.

        Cells are matched to our runs by settings, never by grid position (:mod:`ipslib.study.cells`): a cell
        is ``compared`` beside the mean over every run of the matched setting, else ``not testable here``
        with its reason. One row per cell (:func:`ipslib.study.cells.cells_frame`)."""
        return cells.cells_frame(cells.profile_cells(self.profile, self.experiment.name, root=self.experiment.root))


def load_results(experiment: str, profile: str, *, overrides: dict[str, Any] | None = None) -> ExperimentResults:
    """Load the manifest and every finished run record of ``experiment`` in ``profile``.

    ``overrides``: flat config settings applied to every run (:func:`override_runs`)."""
    experiments = load_experiments()
    if experiment not in experiments:
        raise KeyError(f"experiment {experiment!r} is not in params/; choose one of {', '.join(experiments)}")
    exp = experiments[experiment]
    specs = override_runs(exp.runs(profile), overrides or {})
    varied = list(dict.fromkeys(k for spec in specs for k in spec.varied))
    # every run gets every varied key: a setting a case leaves out shows its profile value
    rows = [{**_run_row(spec), **{k: spec.flat.get(k) for k in varied}} for spec in specs]
    return ExperimentResults(exp, profile, specs, pd.DataFrame(rows))


def override_runs(specs: list[RunSpec], overrides: dict[str, Any]) -> list[RunSpec]:
    """``specs`` with the flat settings ``overrides`` applied to each run (new configs, so new keys and run
    directories); unknown keys and invalid values raise ConfigError, and so does a key the experiment varies
    (the runs it tells apart would merge; ``train_seed`` where the experiment repeats runs over seeds)."""
    if not overrides:
        return specs
    if not isinstance(overrides, dict):
        raise ConfigError(f"overrides={overrides!r} must be a mapping of flat config keys to values")
    varied = {k for spec in specs for k in spec.varied} | ({"train_seed"} if any(s.repeat for s in specs) else set())
    varied = sorted(varied & set(overrides))
    if varied:
        raise ConfigError(f"overrides: {', '.join(varied)} is varied by this experiment; override other settings")
    return [
        dataclasses.replace(
            spec, config=RunConfig.from_flat({**spec.flat, **overrides}, where=f"overrides of run {spec.name}")
        )
        for spec in specs
    ]
