"""The two pages about scale: the limits of a reduced profile, and what re-running at paper scale costs.

* :func:`limits_table`: per experiment, the canvas, patch grid, memory, epochs, training-set sizes and
  object-to-image range of a profile beside the paper profile's.
* :func:`detectable_difference`: the smallest difference of two arm means (points) a profile can detect with
  its test-set size and seeds, at 80 % power and a two-sided 5 % test (seed-level Welch t).
* :func:`paper_cost`: per experiment of the paper profile, the optimiser steps and an estimate of GPU hours
  from the author's logged time per batch (the source of each rate is named).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ipslib.study.experiments import RunSpec, load_experiments
from ipslib.study.statistics import t_ppf

__all__ = ["limits_table", "detectable_difference", "power_table", "paper_cost", "AUTHOR_RATES"]

AUTHOR_RATES = {
    "megapixel_mnist": (375.0, 900, "author's efficiency logs: 375 ms per batch of 16 at N = 900 (1500², spec §7)"),
    "traffic_signs": (322.67, 192, "Table 3: 322.67 ms per batch at patch 100 (N = 192)"),
}
"""Logged GPU time per batch (ms), the patch count it was measured at, and its source."""


def _o2i(spec: RunSpec) -> float:
    data = spec.config.data
    if hasattr(data, "o2i"):
        return 100 * data.o2i
    if hasattr(data, "o2i_range"):
        return 100 * data.o2i_range[0]
    return math.nan


def _side(spec: RunSpec) -> str:
    _, height, width = spec.config.data.image_shape
    return f"{height}x{width}" if height != width else str(height)


def _span(values: list[Any], fmt: str = "{}") -> str:
    unique = sorted(set(values))
    return fmt.format(unique[0]) if len(unique) == 1 else f"{fmt.format(unique[0])}-{fmt.format(unique[-1])}"


def _profile_row(specs: list[RunSpec]) -> dict[str, str]:
    return {
        "image": _span([_side(s) for s in specs]),
        "patch": _span([s.config.ips.patch_size for s in specs]),
        "N": _span([s.config.n_patches for s in specs]),
        "M": _span([s.config.ips.memory_size for s in specs]),
        "epochs": _span([s.config.train.epochs for s in specs]),
        "n_train": _span([getattr(s.config.data, "n_train", None) or 0 for s in specs]),
        "smallest O2I (%)": f"{min(_o2i(s) for s in specs):.3f}",
        "seeds": _span([s.config.train.train_seed for s in specs]),
    }


def limits_table(profile: str = "cpu", root: Path | None = None) -> pd.DataFrame:
    """Per experiment with runs: the profile's grid beside the paper profile's (ranges where they vary)."""
    rows = []
    for name, experiment in load_experiments(root).items():
        ours, paper = experiment.runs(profile), experiment.runs("paper")
        if not ours or not paper:
            continue
        a, b = _profile_row(ours), _profile_row(paper)
        rows.append(
            {
                "experiment": name,
                **{f"{k} ({profile})": v for k, v in a.items()},
                **{f"{k} (paper)": b[k] for k in ("image", "N", "M", "epochs", "smallest O2I (%)")},
            }
        )
    return pd.DataFrame(rows).set_index("experiment") if rows else pd.DataFrame()


def detectable_difference(n_test: int, seeds: int, seed_sd: float = 0.0, p: float = 0.5, power: float = 0.8) -> float:
    """Smallest difference of two arm means (points) detectable with ``seeds`` runs per arm.

    Each run's accuracy varies by the binomial sampling of ``n_test`` test items around ``p`` plus the
    seed-to-seed spread ``seed_sd`` (points); the test is two-sided at 5 % with 2·seeds − 2 degrees of freedom.
    """
    if seeds < 2:
        return math.inf
    sd = math.sqrt(seed_sd**2 + 1e4 * p * (1 - p) / n_test)
    df = 2 * seeds - 2
    return (t_ppf(0.975, df) + t_ppf(power, df)) * sd * math.sqrt(2 / seeds)


def power_table(n_test: int, seed_sds: dict[str, float], seeds: tuple[int, ...] = (2, 3, 5)) -> pd.DataFrame:
    """:func:`detectable_difference` for each named seed-to-seed spread (rows) and seed count (columns)."""
    return pd.DataFrame(
        {f"{k} seeds per arm": [detectable_difference(n_test, k, sd) for sd in seed_sds.values()] for k in seeds},
        index=pd.Index(list(seed_sds), name="seed-to-seed spread"),
    ).round(1)


def _traffic_train(spec: RunSpec) -> int:
    """Training images of a real traffic-sign run: the logged 747 of the full filtered Set1, times the subset."""
    return round(747 * getattr(spec.config.data, "subset_fraction", 1.0))


def paper_cost(root: Path | None = None) -> pd.DataFrame:
    """Per experiment of the paper profile: distinct runs, optimiser steps and estimated GPU hours.

    The time per batch is the author's logged rate for the dataset scaled by the patch count (selection
    scores every patch; the gradient pass over M patches is the same), so the estimate is rough and says so.
    """
    rows, seen = [], set()
    for name, experiment in load_experiments(root).items():
        specs = [s for s in experiment.runs("paper") if s.key not in seen]
        seen |= {s.key for s in specs}
        if not specs:
            continue
        steps, hours = 0, 0.0
        for spec in specs:
            ms, n_ref, _ = AUTHOR_RATES.get(spec.config.dataset, AUTHOR_RATES["traffic_signs"])
            n_train = getattr(spec.config.data, "n_train", None) or _traffic_train(spec)
            run_steps = math.ceil(n_train / spec.config.train.batch_size) * spec.config.train.epochs
            steps += run_steps
            hours += run_steps * ms * spec.config.n_patches / n_ref / 3.6e6
        rows.append(
            {
                "experiment": name,
                "new runs": len(specs),
                "optimiser steps": steps,
                "GPU hours (estimate)": round(hours, 1),
                "command": f"ipslib run {name} --profile paper",
            }
        )
    return pd.DataFrame(rows).set_index("experiment")


def limits_intro(profile: str) -> str:
    """The page's opening paragraph for ``profile``."""
    if profile == "paper":
        return (
            "This is the **paper** profile: its settings are the dissertation's, so it has no scale limits of its own."
        )
    return (
        f"This is the **{profile}** profile. Its runs are sized for a 2-core machine, so each experiment keeps "
        "the dissertation's design but not its scale; the tables below say by how much, and what follows for "
        "the verdicts."
    )


def limits_html(profile: str) -> str:
    """:func:`limits_table` as HTML that wraps within the text column."""
    table = limits_table(profile)
    style = "width:100%;font-size:0.8em;table-layout:auto;white-space:normal"
    return table.to_html(border=0, classes="ipslib-limits").replace("<table", f'<table style="{style}"', 1)


def _family_configs(profile: str, root: Path | None) -> dict[str, Any]:
    import yaml

    from ipslib.config import RunConfig
    from ipslib.study.project import project_root

    defaults = yaml.safe_load(((root or project_root()) / "params" / "_defaults.yaml").read_text())
    return {family: RunConfig.from_flat(**blocks[profile]) for family, blocks in defaults.items() if profile in blocks}


def baseline_fit(profile: str, root: Path | None = None) -> pd.DataFrame:
    """The baseline setting of each dataset family (the family's default config) in ``profile``: train and
    test accuracy per task (mean over its seeds, %) beside the chance level."""
    from ipslib.data.registry import chance_levels
    from ipslib.study.arms import profile_runs, setting_key

    runs, rows = profile_runs(profile, root), []
    for family, config in _family_configs(profile, root).items():
        specs = runs.by_setting.get(setting_key(config.to_flat()))
        if not specs:
            continue
        arm = runs.arm(specs[0], label=family)
        levels = chance_levels(config)
        for task in config.tasks:
            rows.append(
                {
                    "baseline": family,
                    "task": task,
                    "seeds": arm.n_seeds,
                    "train (%)": 100 * arm.mean(task, "train"),
                    "test (%)": 100 * arm.mean(task),
                    "chance (%)": 100 * levels[task],
                }
            )
    return pd.DataFrame(rows).set_index(["baseline", "task"]).round(1) if rows else pd.DataFrame()


def fit_note(fit: pd.DataFrame) -> str:
    """One sentence per baseline: does it fit its training set (≥ 90 % on the first task)?"""
    if fit.empty:
        return "No baseline run of this profile has finished."
    parts = []
    for family, block in fit.groupby(level="baseline", sort=False):
        first = block.iloc[0]
        task = block.index[0][1]
        fits = "fits" if first["train (%)"] >= 90 else "does **not** fit"
        parts.append(
            f"The `{family}` baseline {fits} its training set on {task} (train {first['train (%)']:.1f} %, "
            f"test {first['test (%)']:.1f} %, chance {first['chance (%)']:.1f} %, {int(first['seeds'])} "
            "seed(s))."
        )
    return " ".join(parts) + (
        " The dissertation's baselines reach about 99 % train accuracy (Table 10); a "
        "comparison between models that have not fit speaks to how fast they learn, not to "
        "what they can learn."
    )


def profile_power(profile: str, root: Path | None = None) -> dict[str, Any]:
    """The detectable-difference table for the profile's MNIST test-set size and its observed seed spreads."""
    from ipslib.study.arms import profile_runs

    runs = profile_runs(profile, root)
    spreads: dict[str, float] = {"test sampling only": 0.0}
    n_test = 0
    for specs in runs.by_setting.values():
        arm = runs.arm(specs[0])
        task = next(iter(specs[0].config.tasks))
        if arm.n_seeds >= 2:
            spreads[f"{arm.label} ({task}, {arm.n_seeds} seeds)"] = 100 * arm.sd(task)
        n_test = max(n_test, getattr(specs[0].config.data, "n_test", 0) or 0)
    n_test = n_test or 200
    note = (
        f"Test sets of {n_test} images: one run's accuracy has a binomial standard error of up to "
        f"{100 * math.sqrt(0.25 / n_test):.1f} points. Rows with a named arm use that arm's observed seed-to-seed "
        "standard deviation. A claimed effect smaller than the number in its row cannot be confirmed here."
    )
    return {"note": note, "table": power_table(n_test, spreads), "n_test": n_test}


def paper_note(cost: pd.DataFrame) -> str:
    """The paper page's summary of :func:`paper_cost`."""
    total = cost["GPU hours (estimate)"].sum()
    rates = "; ".join(source for _, _, source in AUTHOR_RATES.values())
    return (
        f"{int(cost['new runs'].sum())} distinct runs, about **{total:.0f} GPU hours** in all at the author's "
        f"logged speed ({rates}; a run's time per batch is scaled by its patch count, so the estimate is rough, "
        "and a modern GPU packing several runs at once finishes sooner). Runs shared by chapters are counted "
        "once, under the first chapter that lists them."
    )


def campaign_note(profile: str, root: Path | None = None) -> str:
    """How far the profile's training has come: distinct runs, finished, the training time they took (from
    their records) and, per dataset at the mean time of its finished runs, what the missing runs need."""
    from ipslib.engine.records import is_finished, load_run

    specs = {s.key: s for e in load_experiments(root).values() for s in e.runs(profile)}
    if not specs:
        return "This profile trains no runs."
    done = {k: s for k, s in specs.items() if is_finished(s.run_dir, s.config)}
    seconds = {k: float(load_run(s.run_dir).history["epoch_seconds"].sum()) for k, s in done.items()}
    text = (
        f"**{len(done)} of {len(specs)} distinct runs** of the {profile} profile have finished, after "
        f"{sum(seconds.values()) / 3600:.1f} h of single-thread training in all."
    )
    for dataset in sorted({s.config.dataset for s in specs.values()}):
        times = [seconds[k] for k, s in done.items() if s.config.dataset == dataset]
        left = sum(1 for k, s in specs.items() if k not in done and s.config.dataset == dataset)
        if left and times:
            mean = sum(times) / len(times)
            text += (
                f" {dataset}: {left} runs missing, about {left * mean / 3600:.1f} h at the {mean / 60:.0f} min "
                f"its {len(times)} finished run(s) took (half that two at a time on 2 cores)."
            )
        elif left:
            text += f" {dataset}: {left} runs missing, none finished yet to time them."
    if len(done) < len(specs):
        text += (
            " The control that encodes every patch costs several times an IPS run. Missing runs are named on "
            "their chapters, whose verdicts stay inconclusive until every arm has its seeds."
        )
    return text
