"""The attention-density chapter (E18): score densities with and without STKIM, their spread, the verdict.

The verdict's rule: STKIM *spreads the attention* when, over all N patches of the test image, the masked
model's normalised entropy is higher and its top-10 share lower than the unmasked model's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ipslib.analysis import attention
from ipslib.study.experiments import RunSpec

__all__ = ["CRITERION", "KEPT", "ALL", "UNMASKED", "arm_label", "score_sets", "density_figure", "spread_verdict"]

CRITERION = (
    "Criterion: STKIM *spreads the attention* when, over all N patches of the test image, the masked "
    "model's normalised entropy is higher and its top-10 share lower than the unmasked model's."
)
KEPT = "kept patches (last iteration)"
ALL = "all patches (one softmax)"
UNMASKED = "no masking"


def arm_label(cfg: Any) -> str:
    """``masked (K=.., P=..)`` for a run with STKIM, :data:`UNMASKED` otherwise."""
    return f"masked (K={cfg.stkim.stkim_k}, P={cfg.stkim.stkim_p})" if cfg.stkim.active else UNMASKED


def score_sets(specs: list[RunSpec]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each finished run's model on test image 0: the kept patches' last-iteration selection scores and
    the one-softmax scores of all N patches.

    Returns:
        The scores in long form (``score``, ``set``, ``run``; empty without a run) and their spread, one row
        per (run, set) with the columns of :func:`ipslib.analysis.attention.score_summary`.
    """
    frames, stats = [], []
    for spec in specs:
        net, cfg = attention.load_trained(spec.run_dir)
        ex = attention.load_example(cfg, 0)
        maps = attention.compute_maps(net, cfg, ex.tensor, seed=0)
        every = attention.score_all_patches(net, cfg, ex.tensor)
        label = arm_label(cfg)
        frames.append(attention.score_density(maps, every, label=label))
        for name, values in ((KEPT, maps.selection_scores), (ALL, every)):
            stats.append({"run": label, "set": name, **attention.score_summary(values)})
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return scores, pd.DataFrame(stats)


def density_figure(scores: pd.DataFrame) -> Any:
    """One panel per score set: density (and rug) of log10 of the positive scores, one colour per run."""
    import seaborn as sns
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, name in zip(axes, scores["set"].unique()):
        part = scores[(scores["set"] == name) & (scores["score"] > 0)].assign(log_score=lambda d: np.log10(d["score"]))
        sns.kdeplot(data=part, x="log_score", hue="run", common_norm=False, fill=True, warn_singular=False, ax=ax)
        sns.rugplot(data=part, x="log_score", hue="run", ax=ax, legend=False)
        ax.set_xlabel("log10 of the score")
        ax.set_title(name)
    return fig


def spread_verdict(stats: pd.DataFrame) -> tuple[str, dict[str, float]]:
    """Whether the masked run spreads its attention over all N patches more than the unmasked one.

    Args:
        stats: the spread table of :func:`score_sets`.
    Returns:
        The verdict text and, when both arms are there, ``entropy_masked`` and ``entropy_unmasked`` (the
        normalised entropies, to glue); the first masked run is compared when there are several.
    """
    spread = stats[stats["set"] == ALL].set_index("run") if len(stats) else pd.DataFrame()
    masked = [run for run in spread.index if run != UNMASKED]
    if UNMASKED not in spread.index or not masked:
        return "Not testable here: the masked and the unmasked run have not both finished in this profile.", {}
    a, b = spread.loc[masked[0]], spread.loc[UNMASKED]
    spreads = a["normalised entropy"] > b["normalised entropy"] and a["top-10 share"] < b["top-10 share"]
    verdict = (
        f"Normalised entropy {a['normalised entropy']:.3f} with masking against {b['normalised entropy']:.3f} "
        f"without; top-10 share {a['top-10 share']:.3f} against {b['top-10 share']:.3f}. The dissertation's "
        f"claim that STKIM spreads the attention is **{'confirmed' if spreads else 'not confirmed'}** on this "
        "image, one image of one model per arm, so it is an illustration rather than a test."
    )
    entropies = {"entropy_masked": float(a["normalised entropy"]), "entropy_unmasked": float(b["normalised entropy"])}
    return verdict, entropies
