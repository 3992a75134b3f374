"""Every printed cell of the dissertation's tables (``book/reference/paper_tables.csv``, 407 cells) with its status
in a profile: ``compared`` with our runs of the same settings, or ``not testable here`` with a reason.

**Page.** A cell belongs to the experiment whose params file lists its table (or its table's panel) under
``reference: tables:``; every cell has exactly one page (an error names a table claimed twice or by nobody).

**Settings.** A cell's settings are its ``match_key`` in our flat keys (:data:`reference.REFERENCE_KEYS`) plus
what the page's ``reference: implied:`` gives for the cell's experiment, at the profile's ``scaling:`` (the
format: :mod:`ipslib.study.experiments`; the ``paper`` profile has none). Runs of the page's experiment match
when their flat config equals every scaled setting; when runs of several settings match, those whose other
varied keys hold the profile's base values (family defaults and ``fixed``) are kept: a setting a cell does not
state takes the default, as in the dissertation. The cell is *compared* when exactly one setting remains.

**Reasons**, checked in the order of :data:`REASONS`; the first that applies is the cell's. Time, memory and
loss cells are compared only in :data:`FULL_SCALE_PROFILES` (the dissertation's settings on a GPU): elsewhere
our runs are reduced in scale and run on CPUs.

**Our value** is over every finished run of the profile with the matched setting (whichever experiment trained
it, all seeds: the *arm*): the mean of the per-run values (last epoch, as the dissertation reports), or for a
``std`` cell the population standard deviation over the arm's runs (the dissertation's convention).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ipslib.config import ConfigError, RunConfig
from ipslib.engine.records import is_finished, load_run, read_metrics
from ipslib.study import reference
from ipslib.study.arms import setting_key
from ipslib.study.experiments import Experiment, RunSpec, load_experiments
from ipslib.study.scaling import setting_text

__all__ = ["COMPARED", "NOT_TESTABLE", "REASONS", "FULL_SCALE_PROFILES", "Cell", "cell_pages", "profile_cells"]

COMPARED = "compared"
NOT_TESTABLE = "not testable here"
FULL_SCALE_PROFILES = ("paper",)
"""Profiles at the dissertation's scale, on a GPU (README): the only ones whose time, memory and loss compare."""
REASONS = {
    "not_run": "the experiment is not run in this profile",
    "sample_counts": "sample counts of the real traffic data (a property of the data set, not of a run)",
    "unclear_quantity": (
        "the printed quantity is unclear: Table 2's time grows with the subset size, so it is per epoch rather "
        "than per batch (spec §7)"
    ),
    "gpu_scale": "GPU-scale measurement (time per batch, peak memory); this profile runs reduced on CPUs",
    "loss_scale": "loss values not comparable across scales",
    "synthetic": "synthetic traffic stand-in, so never a difference against the real dataset",
    "other_dataset": "this profile runs the experiment on another dataset",
    "no_weights": "no ImageNet weights here",
    "outside_scaling": "no counterpart under this profile's scaling",
    "no_run": "no run of this profile at the scaled setting",
    "ambiguous": "runs of several settings of this profile match (state the missing setting under implied)",
}
"""The fixed vocabulary of reasons a cell is not testable, in the order they are checked."""
_GPU_STATS = ("time_per_batch", "peak_memory")
_LOSS_STATS = ("loss", "diversity_loss")


@dataclass(frozen=True)
class Cell:
    """One printed cell, its page, settings (the dissertation's and at this profile's scale) and status."""

    table: str
    panel: str | None
    row_labels: str
    column: str
    value: str
    value_numeric: float
    unit: str | None
    split: str | None
    task: str | None
    stat: str
    match_key: str
    page: str
    settings: dict[str, Any]
    reason_id: str | None = None
    scaled: dict[str, Any] = field(default_factory=dict)
    run_keys: tuple[str, ...] = ()
    ours: float | None = None
    n_seeds: int = 0

    @property
    def status(self) -> str:
        return NOT_TESTABLE if self.reason_id else COMPARED

    @property
    def reason(self) -> str:
        return REASONS[self.reason_id] if self.reason_id else ""

    @property
    def setting_text(self) -> str:
        """``key=value`` per setting, ``key=paper→ours`` where this profile's scale changes it."""
        return setting_text(self.settings, self.scaled if self.status == COMPARED else self.settings)

    def to_dict(self) -> dict[str, Any]:
        keys = ("table", "panel", "row_labels", "column", "value", "match_key", "page", "stat", "split", "task")
        out = {k: getattr(self, k) for k in keys}
        out.update(
            status=self.status, run_keys=list(self.run_keys), reason=self.reason or None, reason_id=self.reason_id
        )
        out.update(settings=self.settings, scaled_settings=self.scaled, ours=self.ours, n_seeds=self.n_seeds)
        return out


def cell_pages(experiments: dict[str, Experiment], tables: pd.DataFrame, strict: bool = True) -> list[str | None]:
    """The page (experiment name) of each row of ``tables``, from the params files' ``reference: tables:``;
    a cell no params file claims is an error, or ``None`` when not ``strict`` (a project with some pages)."""
    owners: dict[tuple[str, str | None], str] = {}
    for exp in experiments.values():
        for entry in (exp.reference or {}).get("tables", []):
            claim = (entry["table"], entry["panel"])
            if claim in owners:
                raise ConfigError(f"{exp.path}: reference.tables claims {claim}, claimed by {owners[claim]} too")
            rows = (tables["table"] == claim[0]) & (claim[1] is None or tables["panel"] == claim[1])
            if not rows.any():
                raise ConfigError(f"{exp.path}: reference.tables names {claim}, which has no printed cell")
            owners[claim] = exp.name
    pages = []
    for table, panel in zip(tables["table"], tables["panel"]):
        panel = None if pd.isna(panel) else panel
        found = [owners[c] for c in dict.fromkeys([(table, None), (table, panel)]) if c in owners]
        if len(found) != 1 and (strict or found):
            raise ConfigError(
                f"{table} ({panel or 'whole table'}) is claimed by {found or 'no params file'}: list it under "
                "reference.tables of exactly one params/<experiment>.yaml"
            )
        pages.append(found[0] if found else None)
    return pages


@dataclass
class _Profile:
    """One profile's manifest: every experiment's runs, and every run of the profile grouped by setting."""

    profile: str
    experiments: dict[str, Experiment]
    runs: dict[str, list[RunSpec]] = field(default_factory=dict)
    by_setting: dict[str, dict[str, RunSpec]] = field(default_factory=lambda: defaultdict(dict))

    def __post_init__(self) -> None:
        for name, exp in self.experiments.items():
            self.runs[name] = exp.runs(self.profile)
            for spec in self.runs[name]:
                self.by_setting[setting_key(spec.flat)].setdefault(spec.key, spec)


def _settings(row: pd.Series, exp: Experiment) -> dict[str, Any]:
    settings = reference.cell_settings(row["match"], f"paper_tables.csv ({row['table']}, {row['row_labels']})")
    implied = (exp.reference or {}).get("implied", {}).get(row["match"].get("experiment"), {})
    return {**settings, **{k: v for k, v in implied.items() if k not in settings}}


def _first_reason(row: pd.Series, settings: dict[str, Any], specs: list[RunSpec], profile: str) -> str | None:
    """The reasons that do not depend on matching runs, in :data:`REASONS` order."""
    if not specs:
        return "not_run"
    if row["stat"] == "n":
        return "sample_counts"
    if row["stat"] == "time_per_batch" and row["unit"] != "ms":
        return "unclear_quantity"
    full = profile in FULL_SCALE_PROFILES
    if row["stat"] in _GPU_STATS and not full:
        return "gpu_scale"
    if row["stat"] in _LOSS_STATS and not full:
        return "loss_scale"
    datasets = {s.config.dataset for s in specs}
    if row["dataset"] not in datasets:
        return "synthetic" if "synthetic_traffic" in datasets else "other_dataset"
    weights = str(settings.get("weights", "none"))
    if weights != "none" and not any(str(s.flat.get("weights", "none")) != "none" for s in specs):
        return "no_weights"
    return None


def _base(exp: Experiment, profile: str) -> dict[str, Any]:
    base = exp.base_settings(profile)
    try:
        return RunConfig.from_flat(base).to_flat()
    except ConfigError:
        return base


def _match(scaled: dict[str, Any], specs: list[RunSpec], exp: Experiment, profile: str) -> list[RunSpec]:
    """The runs of the one setting that carries ``scaled``; ``[]`` for none; several settings raise LookupError."""
    groups: dict[str, list[RunSpec]] = defaultdict(list)
    for spec in specs:
        if all(k in spec.flat and reference.same_value(spec.flat[k], v) for k, v in scaled.items()):
            groups[setting_key(spec.flat)].append(spec)
    if len(groups) > 1:
        base = _base(exp, profile)
        unstated = {k for s in specs for k in s.varied} - set(scaled)
        groups = {
            key: group
            for key, group in groups.items()
            if all(reference.same_value(group[0].flat.get(k), base.get(k)) for k in unstated)
        } or groups
    if len(groups) > 1:
        raise LookupError(sorted(groups))
    return next(iter(groups.values()), [])


def _run_value(row: pd.Series, spec: RunSpec, metrics: dict[str, Any]) -> float | None:
    split = "test" if row["split"] == "val" else "train"
    stat = row["stat"]
    if stat == "time_per_batch":
        return metrics.get("efficiency", {}).get("ms_per_batch")
    if stat == "peak_memory":
        peak = metrics.get("efficiency", {}).get("peak_memory_mb")
        return None if peak is None else peak / 1024  # the author's "GB" are GiB (spec §7)
    if stat == "diversity_loss":
        weight = spec.config.regulariser.diversity_weight
        history = load_run(spec.run_dir).history
        last = history["test/diversity"].iloc[-1] if weight and "test/diversity" in history else 0.0
        return weight * abs(float(last))
    tasks = metrics["last"][split]
    if stat == "loss":
        return sum(t["loss"] for t in tasks.values()) / len(tasks)
    return 100 * tasks[row["task"]]["accuracy"]


def _ours(row: pd.Series, arm: list[RunSpec]) -> tuple[float | None, int]:
    values = []
    for spec in arm:
        if is_finished(spec.run_dir, spec.config):
            value = _run_value(row, spec, read_metrics(spec.run_dir))
            if value is not None and not math.isnan(value):
                values.append(float(value))
    if not values or (row["stat"] == "std" and len(values) < 2):
        return None, len(values)
    mean = sum(values) / len(values)
    if row["stat"] == "std":
        return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)), len(values)
    return mean, len(values)


def _cell(row: pd.Series, page: str, ctx: _Profile) -> Cell:
    exp = ctx.experiments[page]
    settings = _settings(row, exp)
    keys = ("table", "panel", "row_labels", "column", "unit", "split", "task", "stat", "match_key")
    base: dict[str, Any] = {k: None if pd.isna(row[k]) else row[k] for k in keys}
    base.update(value=str(row["value"]), value_numeric=float(row["value_numeric"]), page=page, settings=settings)
    specs = ctx.runs[page]
    reason = _first_reason(row, settings, specs, ctx.profile)
    if reason:
        return Cell(**base, reason_id=reason)
    scaled, outside = exp.profiles[ctx.profile].scale(settings)
    if outside:
        return Cell(**base, reason_id="outside_scaling", scaled=scaled)
    try:
        matched = _match(scaled, specs, exp, ctx.profile)
    except LookupError:
        return Cell(**base, reason_id="ambiguous", scaled=scaled)
    if not matched:
        return Cell(**base, reason_id="no_run", scaled=scaled)
    arm = sorted(
        ctx.by_setting[setting_key(matched[0].flat)].values(), key=lambda s: (s.config.train.train_seed, s.key)
    )
    ours, n_seeds = _ours(row, arm)
    return Cell(**base, scaled=scaled, run_keys=tuple(s.key for s in arm), ours=ours, n_seeds=n_seeds)


def profile_cells(profile: str, experiment: str | None = None, *, root: Path | None = None) -> list[Cell]:
    """Every printed cell with its status in ``profile``, or only the cells of ``experiment``'s page (then
    cells of tables no params file claims are left out instead of raising)."""
    experiments = load_experiments(root)
    if experiment is not None and experiment not in experiments:
        raise ConfigError(f"experiment={experiment!r} is not in params/; choose one of {', '.join(experiments)}")
    tables = reference.paper_tables(root)
    pages = cell_pages(experiments, tables, strict=experiment is None)
    ctx = _Profile(profile, experiments)
    return [
        _cell(row, page, ctx)
        for (_, row), page in zip(tables.iterrows(), pages)
        if page is not None and (experiment is None or page == experiment)
    ]


def cells_frame(cells: list[Cell]) -> pd.DataFrame:
    """One row per cell: its printed value, settings text, status, reason, our value and seed count."""
    rows = [
        {**cell.to_dict(), "setting": cell.setting_text, "value_numeric": cell.value_numeric, "unit": cell.unit}
        for cell in cells
    ]
    return pd.DataFrame(rows)
