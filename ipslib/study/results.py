"""Results of an experiment for the book: run records joined with the manifest and the dissertation's numbers.

``load_results(experiment, profile)`` is the one call a notebook makes. Accuracies are fractions in the
run records and percentages in the comparison tables (as printed in the dissertation). Across repeats we
report mean ± population std (ddof=0), the dissertation's convention (spec §6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ipslib.engine.records import is_finished, load_run
from ipslib.study import reference
from ipslib.study.experiments import Experiment, RunSpec, load_experiments

__all__ = ["ExperimentResults", "load_results", "METRIC_STAGES"]

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

    def comparison(self, stage: str = "last") -> pd.DataFrame:
        """The dissertation's values beside ours for every matched setting, task and split.

        Our setting is matched to the dissertation's through the run at the same position of the
        experiment's grid in the ``paper`` profile (the corresponding setting), whose configuration is
        compared with each table row's settings (``REFERENCE_KEYS``); settings a row leaves out take the
        values the params file's ``reference.implied`` gives for that row's experiment."""
        ref_spec = self.experiment.reference
        if not ref_spec or not self.specs:
            return pd.DataFrame()
        tables = reference.paper_tables()
        tables = tables[tables["table"].isin(ref_spec["tables"])]
        paper = {spec.position: spec for spec in self.experiment.runs("paper")}
        rows = []
        for split, ref_split in (("test", "val"), ("train", "train")):
            for _, ours in self.summary(stage, split).iterrows():
                spec = self._spec_for(ours)
                counterpart = paper.get(spec.position) if spec else None
                if counterpart is None:
                    continue
                matched = tables[(tables["split"] == ref_split) & (tables["task"] == ours["task"])]
                matched = matched[[self._matches(m, counterpart.config.to_flat()) for m in matched["match"]]]
                for _, ref in matched.iterrows():
                    rows.append(self._comparison_row(ours, ref, split, counterpart))
        return pd.DataFrame(rows)

    def _spec_for(self, ours: pd.Series) -> RunSpec | None:
        keys = self.varied_keys
        for spec in self.specs:
            same = all(reference.same_value(spec.flat.get(k), ours.get(k)) for k in keys)
            if same or (not keys and spec.name == ours.get("name")):
                return spec
        return None

    def _matches(self, match: dict[str, str], config: dict[str, Any]) -> bool:
        implied = (self.experiment.reference.get("implied") or {}).get(match.get("experiment"), {})
        for ref_key, (ours_key, convert) in REFERENCE_KEYS.items():
            if ref_key in match:
                expected = convert(match[ref_key])
            elif ours_key in implied:
                expected = implied[ours_key]
            else:
                continue
            if not reference.same_value(config.get(ours_key), expected):
                return False
        return True

    def _comparison_row(self, ours: pd.Series, ref: pd.Series, split: str, counterpart: RunSpec) -> dict[str, Any]:
        value = ours["std"] if ref["stat"] == "std" else ours["mean"]
        setting = {k: ours[k] for k in self.varied_keys}
        paper_setting = ", ".join(f"{k}={v}" for k, v in counterpart.varied.items()) or "default"
        return {
            **setting,
            "dissertation setting": paper_setting,
            "task": ours["task"],
            "split": split,
            "stat": ref["stat"],
            "dissertation": ref["value_numeric"],
            "ours": value,
            "difference": value - ref["value_numeric"],
            "repeats": int(ours["n"]),
            "same_setting": self.profile == "paper",
            "source": reference.SOURCE_TABLES.format(table=ref["table"]),
        }


_WEIGHTS = {"V1": "imagenet_v1", "V2": "imagenet_v2"}
REFERENCE_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "train_size": ("n_train", int),
    "digit_size": ("digit_size", int),
    "noise_count": ("n_noise", int),
    "canvas_size": ("canvas_size", int),
    "patch_size": ("patch_size", int),
    "stkim_K": ("stkim_k", int),
    "stkim_P": ("stkim_p", float),
    "diversity_weight": ("diversity_weight", float),
    "subset_pct": ("subset_fraction", lambda v: float(v) / 100),
    "backbone": ("arch", str),
    "backbone_weights": ("weights", lambda v: _WEIGHTS.get(v, v)),
}
"""Settings named in the tables' match keys → (our config key, conversion of the printed value)."""


def load_results(experiment: str, profile: str) -> ExperimentResults:
    """Load the manifest and every finished run record of ``experiment`` in ``profile``."""
    experiments = load_experiments()
    if experiment not in experiments:
        raise KeyError(f"experiment {experiment!r} is not in params/; choose one of {', '.join(experiments)}")
    exp = experiments[experiment]
    specs = exp.runs(profile)
    varied = list(dict.fromkeys(k for spec in specs for k in spec.varied))
    # every run gets every varied key: a setting a case leaves out shows its profile value
    rows = [{**_run_row(spec), **{k: spec.flat.get(k) for k in varied}} for spec in specs]
    return ExperimentResults(exp, profile, specs, pd.DataFrame(rows))
