"""The STKIM chapters (E9-E11, X2): accuracy against the analytic survival of a salient patch.

The verdict's rule: the accuracy drop *tracks* the survival when, over the author's arm and the unmasked
baseline (survival 1), Spearman's rank correlation of survival and accuracy is at least 0.8 (three or more
distinct survival values); with two values only the direction is checked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ipslib.analysis.stkim_survival import (
    baseline_config,
    config_survival,
    n_iterations,
    spearman,
    survival_probability,
)
from ipslib.config import RunConfig
from ipslib.engine.records import is_finished, read_metrics
from ipslib.study.results import ExperimentResults

__all__ = ["CRITERION", "MIN_RHO", "survival_table", "settings_table", "survival_figure", "trend_verdict"]

MIN_RHO = 0.8
"""Spearman's rho from which the accuracy counts as tracking the survival."""
CRITERION = (
    "Criterion: the accuracy drop *tracks* the survival probability when, over the author's arm and "
    "the unmasked baseline (survival 1), the Spearman rank correlation between survival and accuracy is "
    "at least 0.8; this needs at least three distinct survival values."
)


def _mean_accuracy(run_dir, cfg: RunConfig, tasks: list[str]) -> float:
    if not is_finished(run_dir, cfg):
        return float("nan")
    last = read_metrics(run_dir)["last"]["test"]
    return 100 * float(np.mean([last[t]["accuracy"] for t in tasks]))


def survival_table(results: ExperimentResults) -> pd.DataFrame:
    """One row per run: STKIM arm, N, M, I, K, P, n_iter, analytic survival, and the last-epoch test
    accuracy (mean over tasks, %) beside that of the same run without STKIM (looked up by config in this
    profile's run folder, so a baseline trained by another experiment counts) and the drop."""
    rows = []
    for spec in results.specs:
        cfg, tasks = spec.config, list(spec.config.tasks)
        base = baseline_config(cfg)
        accuracy = _mean_accuracy(spec.run_dir, cfg, tasks)
        base_acc = _mean_accuracy(spec.run_dir.parent / base.key(), base, tasks)
        rows.append(
            {
                "run": spec.name.split("/", 1)[-1],
                "arm": cfg.stkim.stkim_mode if cfg.stkim.active else "none",
                "K": cfg.stkim.stkim_k,
                "P": cfg.stkim.stkim_p,
                "N": cfg.n_patches,
                "M": cfg.ips.memory_size,
                "I": cfg.ips.iter_size,
                "n_iter": n_iterations(cfg.n_patches, cfg.ips.memory_size, cfg.ips.iter_size),
                "survival": config_survival(cfg),
                "accuracy (%)": accuracy,
                "baseline accuracy (%)": base_acc,
                "drop (points)": base_acc - accuracy,
                "repeat": spec.repeat,
            }
        )
    return pd.DataFrame(rows)


def survival_figure(results: ExperimentResults, table: pd.DataFrame):
    """Left: analytic survival against P for each (N, M, I) of this profile and of the paper profile, the
    runs' P marked. Right: last-epoch test accuracy (mean over tasks) against survival, per arm."""
    import seaborn as sns
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    grid = np.linspace(0, 1, 101)
    settings = {
        (s.profile, s.config.n_patches, s.config.ips.memory_size, s.config.ips.iter_size)
        for s in [*results.specs, *results.experiment.runs("paper")]
    }
    for profile, n, m, i in sorted(settings):
        curve = [survival_probability(n, m, i, p) for p in grid]
        left.plot(grid, curve, label=f"{profile}: N={n}, M={m}, I={i} ({n_iterations(n, m, i)} it.)")
    author = table[table["arm"] == "seed_selection"]
    left.scatter(author["P"], author["survival"], color="black", zorder=3, s=18, label="runs (author's arm)")
    left.set(
        xlabel="masking probability P",
        ylabel="survival of a salient patch",
        ylim=(0, 1.02),
        title="analytic survival (author's STKIM)",
    )
    left.legend(fontsize=7)
    masked = table[table["arm"] != "none"]
    means = masked.groupby(["arm", "K", "P"], sort=False, as_index=False)[["survival", "accuracy (%)"]].mean()
    base = _baseline(table)
    points = pd.concat([means, pd.DataFrame({"arm": ["none (baseline)"], "survival": [1.0], "accuracy (%)": [base]})])
    points = points.dropna(subset=["accuracy (%)"])
    if len(points):
        sns.scatterplot(data=points, x="survival", y="accuracy (%)", hue="arm", style="arm", s=50, ax=right)
    else:
        right.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=right.transAxes)
    right.set(
        xlabel="survival of a salient patch",
        ylabel="last-epoch test accuracy, mean of tasks (%)",
        xlim=(-0.02, 1.05),
        ylim=(0, 100),
        title="measured accuracy",
    )
    return fig


def settings_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, K, P) of :func:`survival_table`: the setting's N, M, I, iterations and survival,
    its mean accuracy, baseline accuracy and drop over repeats, and how many runs it has."""
    return (
        table.groupby(["arm", "K", "P"], sort=False)
        .agg(
            N=("N", "first"),
            M=("M", "first"),
            I=("I", "first"),
            n_iter=("n_iter", "first"),
            survival=("survival", "first"),
            accuracy=("accuracy (%)", "mean"),
            baseline=("baseline accuracy (%)", "mean"),
            drop=("drop (points)", "mean"),
            runs=("run", "count"),
        )
        .reset_index()
    )


def _baseline(table: pd.DataFrame) -> float:
    return table.groupby("repeat")["baseline accuracy (%)"].first().mean()  # one baseline per training seed


def trend_verdict(settings: pd.DataFrame, table: pd.DataFrame) -> tuple[float, str]:
    """Whether accuracy tracks survival (:data:`CRITERION`) over the author's arm and the baseline.

    Args:
        settings: :func:`settings_table` of ``table``.
        table: :func:`survival_table`.
    Returns:
        Spearman's rho (NaN unless three survival values are present) and the verdict text, which ends with
        the change ACMIL's arm makes when it has finished runs.
    """
    author = settings[settings["arm"] == "seed_selection"].dropna(subset=["accuracy"])
    base = _baseline(table)
    points = pd.concat([author[["survival", "accuracy"]], pd.DataFrame({"survival": [1.0], "accuracy": [base]})])
    points = points.dropna()
    levels = points["survival"].round(6).nunique()
    rho = float("nan")
    if levels >= 3:
        rho = spearman(points["survival"], points["accuracy"])
        outcome = "tracks" if rho >= MIN_RHO else "does not track"
        verdict = (
            f"Over {len(points)} settings (survival {points['survival'].min():.2f} to 1), Spearman's rho is "
            f"{rho:.2f}: the accuracy drop **{outcome}** the survival of a salient patch."
        )
    elif levels == 2 and len(author) and not np.isnan(base):
        below = int((author["accuracy"] < base).sum())
        verdict = (
            f"Only two survival values are present (1 and {author['survival'].min():.2f}), so a trend cannot be "
            f"tested; the formula predicts the same drop for every setting at that survival, and {below} of "
            f"{len(author)} masked setting(s) score below the baseline ({base:.1f} %)"
            + (", as predicted." if below == len(author) else ", where the formula predicts all of them.")
        )
    else:
        missing = "no finished baseline" if np.isnan(base) else "no finished run of the author's arm"
        verdict = f"Not testable here: {missing} in this profile."
    return rho, verdict + _acmil_change(settings)


def _acmil_change(settings: pd.DataFrame) -> str:
    acmil = settings[settings["arm"] == "acmil_aggregation"].dropna(subset=["drop"])
    if not len(acmil):
        return ""
    low, high = round(-acmil["drop"].max(), 1) + 0.0, round(-acmil["drop"].min(), 1) + 0.0
    change = f"{low:+.1f}" if round(low, 1) == round(high, 1) else f"{low:+.1f} to {high:+.1f}"
    return (
        f" ACMIL's arm, whose selection is never masked at test time, changes accuracy by {change} "
        "points against the baseline."
    )
