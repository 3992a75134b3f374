"""Tables and figures for the book's experiment pages (pandas + seaborn), built from :mod:`ipslib.study.results`.

Every number shown comes from a run record or from ``book/reference/`` with its source named; nothing is
typed in. Functions return DataFrames or matplotlib Figures and never touch pyplot's global state.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ipslib.study.results import ExperimentResults

__all__ = [
    "settings_table",
    "runs_table",
    "summary_table",
    "comparison_table",
    "comparison_html",
    "accuracy_figure",
    "history_figure",
    "profile_note",
    "headline",
    "chance_note",
]

_PROFILE_NOTES = {
    "paper": "This page shows the **paper** profile: the dissertation's settings as its logs record them.",
    "cpu": (
        "This page shows the **cpu** profile: a reduced-scale study for a 2-core machine. It does not "
        "reproduce the dissertation's numbers; the settings table lists every change from the paper "
        "profile, and each printed cell of the dissertation stands beside our runs of its settings at this "
        "profile's declared scale, or says why it cannot be tested here."
    ),
    "smoke": (
        "This page shows the **smoke** profile: tiny runs that only prove the pipeline executes. Its "
        "numbers mean nothing about IPS."
    ),
    "gpu": (
        "This page shows the **gpu** profile: a short campaign for one GPU at the 1500² setting of the "
        "author's efficiency logs with a few epochs. It checks the GPU path, not the dissertation's numbers."
    ),
}


def profile_note(results: ExperimentResults) -> str:
    note = _PROFILE_NOTES[results.profile]
    extra = results.experiment.profiles[results.profile].note
    return f"{note} {extra}".strip()


def chance_note(results: ExperimentResults) -> str:
    """One line: the accuracy of the best constant prediction per task, to read the results against."""
    from ipslib.data.registry import chance_levels, entry

    if not results.specs:
        return ""
    try:
        levels = chance_levels(results.specs[0].config)
    except (FileNotFoundError, OSError) as err:  # the real traffic data is absent: say so, do not guess
        return f"Chance levels need the test data, which is not here ({err})."
    how = entry(results.specs[0].config.dataset).chance_rule
    shown = ", ".join(f"{task} {100 * value:.1f} %" for task, value in levels.items())
    return f"**Chance level** (best constant prediction; {how}): {shown}."


def settings_table(results: ExperimentResults) -> pd.DataFrame:
    """Fixed settings of this profile beside the paper profile's (varied keys excluded)."""
    varied = set(results.varied_keys) | {"train_seed"}
    ours = results.specs[0].config.to_flat() if results.specs else {}
    paper_specs = results.experiment.runs("paper")
    paper = paper_specs[0].config.to_flat() if paper_specs else {}
    rows = [{"setting": k, "this profile": ours[k], "paper profile": paper.get(k)} for k in ours if k not in varied]
    table = pd.DataFrame(rows)
    table["differs"] = [str(a) != str(b) for a, b in zip(table["this profile"], table["paper profile"])]
    return table.set_index("setting")


def runs_table(results: ExperimentResults) -> pd.DataFrame:
    """One row per run: the varied settings, whether it finished, last/best test accuracy per task (%)."""
    columns = ["name", "finished"]
    runs = results.runs.copy()
    for stage in ("last", "best"):
        for task in results.tasks:
            source = f"{stage}_test_{task}"
            if source in runs:
                runs[f"{stage} {task} (%)"] = 100 * runs[source]
                columns.append(f"{stage} {task} (%)")
    if "best_epoch" in runs:
        columns.append("best_epoch")
    for source, label in (
        ("ms_per_batch", "ms per batch"),
        ("peak_memory_mb", "peak memory (MB)"),
        ("device", "device"),
    ):
        if source in runs and runs[source].notna().any():
            runs[label] = runs[source].round(1) if source != "device" else runs[source]
            columns.append(label)
    return runs[[c for c in columns if c in runs]].set_index("name")


def summary_table(results: ExperimentResults, stage: str = "last", split: str = "test") -> pd.DataFrame:
    """Mean ± population std (%) over repeats, one row per setting, one column per task."""
    summary = results.summary(stage, split)
    if summary.empty:
        return summary
    summary["value"] = [
        f"{m:.1f} ± {s:.1f}" if n > 1 else f"{m:.1f}" for m, s, n in zip(summary["mean"], summary["std"], summary["n"])
    ]
    index = results.varied_keys or ["name"]
    for key in index:  # a key some settings leave unset (e.g. proj_dim of a ResNet-18) shows as "–"
        summary[key] = summary[key].astype(object).where(summary[key].notna(), "–")
    return summary.pivot_table(index=index, columns="task", values="value", aggfunc="first", sort=False)


def comparison_table(results: ExperimentResults) -> pd.DataFrame:
    """Every printed cell of this page: its status, settings text, the printed value and ours beside it."""
    table = results.comparison()
    if table.empty:
        return table
    table["cell"] = [_cell_label(row) for _, row in table.iterrows()]
    columns = ["cell", "setting", "status", "value", "ours", "n_seeds", "reason", "run_keys"]
    return table[columns].rename(columns={"value": "dissertation", "n_seeds": "seeds"})


_DECIMALS = {"mean": 2, "std": 2, "loss": 3, "diversity_loss": 3, "peak_memory": 2}
_STYLE = (
    "<style>table.ipslib-cells{width:100%;table-layout:fixed}table.ipslib-cells th,table.ipslib-cells td"
    "{white-space:normal;overflow-wrap:anywhere;vertical-align:top;text-align:left;padding:0.15em 0.5em 0.15em 0}"
    "table.ipslib-cells th{overflow-wrap:normal}</style>"
)
"""The comparison tables fit the text column: fixed column widths, long text wrapped."""


def _cell_label(row: pd.Series) -> str:
    panel = f" ({row['panel']})" if isinstance(row["panel"], str) else ""
    return f"{row['table']}{panel} · {row['row_labels']} · {row['column']}"


def _html_table(head: list[str], widths: list[int], rows: list[list[str]]) -> str:
    cols = "".join(f'<col style="width:{w}%">' for w in widths)
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    style = "width:100%;table-layout:fixed"
    head_row = f"<colgroup>{cols}</colgroup><tr>{header}</tr>"
    return f'<table class="ipslib-cells" style="{style}">{head_row}{body}</table>'


def _ours_text(row: pd.Series) -> str:
    if row["ours"] is None or pd.isna(row["ours"]):
        return "one seed: no spread" if row["stat"] == "std" and row["n_seeds"] == 1 else "no finished run"
    return f"{row['ours']:.{_DECIMALS.get(row['stat'], 1)}f}"


def _not_testable_html(table: pd.DataFrame) -> str:
    """The cells that cannot be tested, one table per reason, one line per printed row."""
    parts = []
    for reason, group in table.groupby("reason", sort=False):
        rows = []
        for (name, label), cells in group.groupby(["table", "row_labels"], sort=False):
            printed = "; ".join(f"{c} {v}" for c, v in zip(cells["column"], cells["value"]))
            rows.append([f"{name} · {label}", cells["setting"].iloc[0], printed])
        parts.append(f"<p><strong>Not testable here</strong>: {html.escape(reason)} ({len(group)} cells)</p>")
        parts.append(_html_table(["printed row", "settings", "printed cells"], [30, 35, 35], rows))
    return "".join(parts)


def _compared_html(compared: pd.DataFrame) -> str:
    """One line per compared cell; the printed row and its settings only where they change."""
    rows, last = [], None
    for _, r in compared.iterrows():
        panel = f" ({r['panel']})" if isinstance(r["panel"], str) else ""
        printed_row = (f"{r['table']}{panel} · {r['row_labels']}", r["setting"])
        shown = ["", ""] if printed_row == last else list(printed_row)
        rows.append([*shown, r["column"], str(r["value"]), _ours_text(r), str(r["n_seeds"])])
        last = printed_row
    head = ["printed row", "settings (paper→ours)", "column", "dissertation", "ours", "seeds"]
    return _html_table(head, [26, 29, 11, 13, 13, 8], rows)


def comparison_html(results: ExperimentResults) -> str:
    """The page's printed cells: compared cells beside our value (mean over every seed of the setting, with
    the seed count and the full setting text), then the others grouped by why they are not testable here."""
    table = results.comparison()
    if table.empty:
        return "<p>No printed table cell of the dissertation belongs to this page.</p>"
    compared = table[table["status"] == "compared"]
    tables = ", ".join(dict.fromkeys(table["table"]))
    out = [
        _STYLE,
        f"<p>{len(table)} printed cells of {tables} belong to this page: {len(compared)} compared with our runs of "
        f"the same settings (at this profile's scale: <code>paper→ours</code>), {len(table) - len(compared)} not "
        "testable here.</p>",
    ]
    if len(compared):
        out.append(_compared_html(compared))
    out.append(_not_testable_html(table[table["status"] != "compared"]))
    return "".join(out)


def _plot_axis(results: ExperimentResults) -> tuple[str, str | None]:
    keys = results.varied_keys
    runs = results.runs
    moving = [k for k in keys if runs[k].astype(str).nunique() > 1] or keys
    numeric = [k for k in moving if pd.api.types.is_numeric_dtype(runs[k])]
    x = numeric[0] if numeric else (moving[0] if moving else "name")
    # a hue only for a key that varies at a fixed x (memory_size scaled with patch_size is no second axis)
    hue = next((k for k in keys if k != x and (runs.astype({x: str, k: str}).groupby(x)[k].nunique() > 1).any()), None)
    return x, hue


def accuracy_figure(results: ExperimentResults, stage: str = "last") -> Figure:
    """Test accuracy (%) per task against the first varied setting (mean ± std over repeats)."""
    import seaborn as sns

    summary = results.summary(stage, "test")
    tasks = results.tasks
    fig = Figure(figsize=(3.2 * max(1, len(tasks)), 3.0), layout="constrained")
    axes = fig.subplots(1, max(1, len(tasks)), squeeze=False)[0]
    if summary.empty:
        axes[0].text(0.5, 0.5, "no finished runs", ha="center", va="center")
        return fig
    x, hue = _plot_axis(results)
    runs = results.runs[results.runs["finished"]] if len(results.runs) else results.runs
    for ax, task in zip(axes, tasks):
        data = summary[summary["task"] == task].copy()
        data[x] = data[x].astype(str) if not pd.api.types.is_numeric_dtype(data[x]) else data[x]
        sns.lineplot(data=data, x=x, y="mean", hue=hue, marker="o", ax=ax, legend=ax is axes[0])
        _seed_points(ax, runs, x, f"{stage}_test_{task}", pd.api.types.is_numeric_dtype(data[x]))
        ax.set(title=task, ylabel=f"{stage}-epoch test accuracy (%)", ylim=(0, 100))
    fig.text(0.01, 0.01, "lines: mean over seeds; grey dots: every run", fontsize=7, color="0.4")
    return fig


def _seed_points(ax, runs: pd.DataFrame, x: str, column: str, numeric: bool) -> None:
    """Every finished run as a grey dot, so the seed-to-seed spread shows beside the mean."""
    if x not in runs or column not in runs or runs.empty:
        return
    xs = runs[x] if numeric else runs[x].astype(str)
    ax.scatter(xs, 100 * runs[column].astype(float), s=12, color="0.45", alpha=0.7, zorder=3)


def history_figure(results: ExperimentResults, task: str | None = None) -> Figure:
    """Per-epoch test accuracy of every finished run for one task (default: the first)."""
    import seaborn as sns

    from ipslib.engine.records import load_run

    task = task or (results.tasks[0] if results.tasks else "")
    frames = []
    for spec in results.specs:
        done = results.runs.loc[results.runs["key"] == spec.key, "finished"]
        if len(done) and bool(done.iloc[0]):
            history = load_run(spec.run_dir).history
            column = f"test/{task}/accuracy"
            if column in history:
                frames.append(
                    pd.DataFrame(
                        {
                            "epoch": history["epoch"],
                            "accuracy (%)": 100 * history[column],
                            "run": spec.name.split("/", 1)[-1],
                        }
                    )
                )
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    if frames:
        sns.lineplot(data=pd.concat(frames), x="epoch", y="accuracy (%)", hue="run", ax=ax)
        if ax.get_legend() is not None:
            ax.legend(fontsize=7, loc="best")
    ax.set(title=f"test accuracy per epoch: {task}", ylim=(0, 100))
    return fig


def headline(results: ExperimentResults, stage: str = "last") -> dict[str, Any]:
    """Numbers worth gluing: per task, the best setting's mean test accuracy (%) and run counts."""
    summary = results.summary(stage, "test")
    out: dict[str, Any] = {"n_runs": len(results.runs), "n_missing": len(results.missing)}
    for task in results.tasks:
        rows = summary[summary["task"] == task] if not summary.empty else summary
        out[f"best_{task}"] = float(rows["mean"].max()) if len(rows) else float("nan")
    return out
