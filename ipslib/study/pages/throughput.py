"""The performance chapter's data section: can the on-the-fly generator keep up with training?

Reads ``outputs/benchmarks/data_throughput.json`` (``python -m benchmarks.data_throughput``): canvases per
second produced by a ``DataLoader`` with 0, 1 and 2 workers, and consumed by training in each setting.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ipslib.study.pages.performance import themed

__all__ = ["throughput_figure", "headroom_table", "throughput_note"]


def throughput_figure(flow: dict[str, Any]) -> Any:
    """Bars: canvases per second produced per setting and worker count; lines: consumed by training
    (dashed where the dissertation's GPU consumed them); log scale."""
    import seaborn as sns
    from matplotlib.figure import Figure

    produced = pd.DataFrame(flow["production"]).astype({"workers": str})
    with themed():
        fig = Figure(figsize=(8, 3.6), layout="constrained")
        ax = fig.subplots()
        sns.barplot(produced, x="setting", y="canvases_per_s", hue="workers", ax=ax)
        settings = list(dict.fromkeys(produced["setting"]))
        for c in flow["consumption"]:
            if c["canvases_per_s"] and c["setting"] in settings:
                x = settings.index(c["setting"])
                style = "--" if "dissertation" in c["source"] else "-"
                ax.hlines(c["canvases_per_s"], x - 0.4, x + 0.4, colors="black", linestyles=style)
        ax.set(
            yscale="log",
            ylabel="canvases per second",
            xlabel="setting (bars: produced by N workers; lines: consumed by training, dashed = dissertation GPU)",
        )
    return fig


def headroom_table(flow: dict[str, Any]) -> Any:
    """Consumed and best produced canvases per second and their ratio, per setting and source (a Styler)."""
    head = pd.DataFrame(flow["headroom"])
    columns = {
        "canvases_per_s": "consumed / s",
        "best_production_per_s": "produced / s (best)",
        "headroom": "produced / consumed",
    }
    shown = head[["setting", "source", "canvases_per_s", "best_production_per_s", "headroom"]]
    return shown.rename(columns=columns).style.format(precision=1).hide(axis="index")


def throughput_note(flow: dict[str, Any]) -> str:
    """Where training would wait for data (production below consumption), or that it never waits."""
    head = pd.DataFrame(flow["headroom"])
    short = head[head["headroom"] < 1]
    if not len(short):
        return "Production exceeds consumption in every setting measured: training never waits for data."
    waits = "; ".join(
        f"{r.setting} against {r.source} ({r.best_production_per_s:.0f} produced vs "
        f"{r.canvases_per_s:.0f} consumed per second)"
        for r in short.itertuples()
    )
    return (
        "Training would wait for data in: " + waits + ". More worker processes help only on a machine with "
        "idle cores; on this shared 2-core machine they competed with the other processes "
        f"(1-minute load average {flow['machine']['load_average_1min']:.1f})."
    )
