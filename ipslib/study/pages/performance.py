"""The performance chapter: memory and time against image size, one training step, data throughput, GPU.

Every number comes from a benchmark's JSON under ``outputs/benchmarks/`` (``python -m benchmarks.<name>``)
or from the dissertation's run logs (``book/reference/runs_final.csv``). A benchmark not run yet is named
with the command that runs it. Figures use seaborn's whitegrid theme without touching the global style.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from ipslib.study.project import project_root
from ipslib.study.reference import run_logs

__all__ = [
    "COMMANDS",
    "benchmark_dir",
    "load_benchmark",
    "mb",
    "dissertation_cost",
    "dissertation_note",
    "scale_rows",
    "scale_table",
    "scale_figure",
    "scale_values",
    "scale_summary",
    "step_table",
    "step_note",
    "gpu_section",
]

COMMANDS = {
    "inference_scale": "python -m benchmarks.inference_scale",
    "train_step": "python -m benchmarks.train_step",
    "data_throughput": "python -m benchmarks.data_throughput",
    "gpu_check": "bash benchmarks/gpu_check.sh   # on a machine with a CUDA GPU",
    "bf16_agreement": "python -m benchmarks.bf16 agreement",
    "bf16_training": "python -m benchmarks.bf16 training   # hours of CPU: 3 seeds x 2 precisions x 2 settings",
}
"""The command that writes each benchmark's JSON."""
DISSERTATION_BATCH = 16


def benchmark_dir() -> Path:
    return project_root() / "outputs" / "benchmarks"


def load_benchmark(name: str) -> tuple[dict[str, Any] | None, str]:
    """A benchmark's JSON, or None and a note naming the missing file and the command that writes it.

    Raises:
        KeyError: ``name`` is not one of :data:`COMMANDS` (the message lists them).
    """
    if name not in COMMANDS:
        raise KeyError(f"benchmark {name!r} is not known; choose one of {', '.join(COMMANDS)}")
    path = benchmark_dir() / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text()), ""
    shown = path.relative_to(project_root())
    return None, f"**`{name}` has not been run yet** (no `{shown}`). Run it with `{COMMANDS[name]}`."


def mb(x: float) -> str:
    """Megabytes with thousands separators: ``1,605 MB``."""
    return f"{x:,.0f} MB"


@contextmanager
def themed():
    """seaborn's whitegrid theme (notebook context, deep palette) for the figures built inside."""
    import seaborn as sns

    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"), sns.color_palette("deep"):
        yield


def dissertation_cost() -> pd.Series:
    """The dissertation's logged efficiency run at 28-px digits (first such run, duplicates left out)."""
    logs = run_logs()
    eff = logs[logs["eff_time_ms_mean"].notna() & logs["duplicate_of"].isna()]
    return eff[eff["digit_size"] == 28].iloc[0]


def dissertation_note(diss: pd.Series) -> str:
    return (
        f"Dissertation (GPU, B = {DISSERTATION_BATCH}, 1500²): **{diss['eff_time_ms_mean']:.0f} ms per batch**, "
        f"**{diss['eff_peak_memory_gb']:.2f} GB** peak allocated CUDA memory "
        f"({int(diss['eff_n_timed_batches'])} timed batches)."
    )


def scale_rows(scale: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every measured row of ``inference_scale`` and those that ran (not skipped)."""
    rows = pd.DataFrame(scale["results"])
    ran = rows[rows.get("skipped").isna()] if "skipped" in rows else rows
    return rows, ran


def scale_table(scale: dict[str, Any]) -> Any:
    """Canvas, patches, noise, mode, time and both memory peaks per measurement (a Styler, no index)."""
    rows, _ = scale_rows(scale)
    show = rows.assign(
        canvas=rows["canvas"].map(lambda c: f"{c:,}²"),
        patches=rows["n_patches"].map("{:,}".format),
        seconds=rows.get("total_s").map(lambda s: "" if pd.isna(s) else f"{s:.1f}"),
        peak_rss=rows.get("peak_rss_mb").map(lambda m: "" if pd.isna(m) else mb(m)),
        lifetime=rows.get("process_peak_mb").map(lambda m: "" if pd.isna(m) else mb(m)),
        note=rows.get("skipped", pd.Series("", index=rows.index)).fillna(""),
    )
    columns = {
        "n_noise": "noise curves",
        "seconds": "time (s)",
        "peak_rss": "peak memory during inference",
        "lifetime": "process peak",
    }
    shown = show[["canvas", "patches", "n_noise", "mode", "seconds", "peak_rss", "lifetime", "note"]]
    return shown.rename(columns=columns).style.hide(axis="index")


def scale_figure(scale: dict[str, Any]) -> Any:
    """Peak memory during inference and time against canvas side, dense beside streaming (log axes)."""
    import seaborn as sns
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    _, ran = scale_rows(scale)
    with themed():
        fig = Figure(figsize=(10, 3.8), layout="constrained")
        axes = fig.subplots(1, 2)
        for ax, column, label in (
            (axes[0], "peak_rss_mb", "peak memory during inference (MB)"),
            (axes[1], "total_s", "time of inference (s)"),
        ):
            sns.lineplot(ran, x="canvas", y=column, hue="mode", style="mode", markers=True, dashes=False, ax=ax)
            ax.set(xscale="log", xlabel="canvas side (pixels)", ylabel=label)
            sizes = sorted(ran["canvas"].unique())
            ax.set_xticks(sizes, [f"{c / 1000:g}k" for c in sizes])
            ax.xaxis.set_minor_locator(NullLocator())
        axes[1].set_yscale("log")
    return fig


def _streaming(scale: dict[str, Any]) -> pd.DataFrame:
    ran = scale_rows(scale)[1]
    return ran[ran["mode"] == "streaming"].set_index("canvas")


def scale_values(scale: dict[str, Any]) -> dict[str, Any]:
    """The numbers the chapter's text cites: the largest streamed canvas, its memory and time, and how much
    the streaming memory peak varied across sizes."""
    stream = _streaming(scale)
    biggest = int(stream.index.max())
    return {
        "stream_biggest_canvas": biggest,
        "stream_biggest_rss_mb": float(stream.loc[biggest, "peak_rss_mb"]),
        "stream_biggest_s": float(stream.loc[biggest, "total_s"]),
        "stream_rss_range_mb": float(stream["peak_rss_mb"].max() - stream["peak_rss_mb"].min()),
    }


def _goal_verdict(scale: dict[str, Any], stream: pd.DataFrame) -> str:
    goal = scale["goal"]
    if goal["canvas"] not in stream.index:
        return "not measured yet (the benchmark ran smaller canvases only)"
    row = stream.loc[goal["canvas"]]
    return (
        f"{'met' if goal['met'] else 'NOT met'}: the process peaked at "
        f"{mb(max(row['peak_rss_mb'], row['process_peak_mb']))}, most of the excess over the "
        f"inference peak coming from drawing the {int(row['n_noise']):,} noise patterns of the "
        "generator at once before inference"
    )


def _dense_text(rows: pd.DataFrame, ran: pd.DataFrame) -> str:
    dense = ran[ran["mode"] == "dense"]
    skipped = rows[rows["mode"].eq("dense") & rows.get("skipped", pd.Series(index=rows.index)).notna()]
    text = f"Dense inference reached {mb(dense['peak_rss_mb'].max())} at {int(dense['canvas'].max()):,}²"
    if len(skipped):
        reason = skipped["skipped"].iloc[0].removeprefix("skipped: ")
        text += f"; beyond that it was skipped ({reason} at {int(skipped['canvas'].iloc[0]):,}²)"
    return text + ". "


def scale_summary(scale: dict[str, Any]) -> str:
    """The paragraph under the scale figure: streaming's largest canvas, the memory goal, dense inference,
    whether both selected the same patches, and the machine the times were measured on."""
    rows, ran = scale_rows(scale)
    stream = _streaming(scale)
    biggest = int(stream.index.max())
    goal, threads = scale["goal"], scale["setting"]["threads"]
    same = all(c["same_selection"] for c in scale["comparison"])
    return (
        "Resident memory is measured in two ways: sampled during inference, and over the whole process "
        "(including building the generator's pool of noise patterns). "
        f"Streaming classified a {biggest:,}² canvas ({int(stream.loc[biggest, 'n_patches']):,} patches) in "
        f"{stream.loc[biggest, 'total_s']:.0f} s with a peak resident memory during inference of "
        f"{mb(stream.loc[biggest, 'peak_rss_mb'])}; across all sizes its peak varied by only "
        f"{mb(stream['peak_rss_mb'].max() - stream['peak_rss_mb'].min())}, most of the total being PyTorch "
        f"itself (about {mb(stream['baseline_rss_mb'].min())} before inference starts). "
        f"The goal, {goal['canvas']:,}² under {goal['peak_rss_mb']:,} MB of resident memory, is "
        f"{_goal_verdict(scale, stream)}. "
        + _dense_text(rows, ran)
        + f"Where both ran, they selected {'the same' if same else 'DIFFERENT'} patches. "
        "Time grows with the number of non-blank patches (the noise count grows with the area here); "
        f"measured with {threads} CPU thread{'s' if threads > 1 else ''} on a shared machine "
        f"(1-minute load average {scale['machine']['load_average_1min']:.1f}), so times are upper bounds."
    )


def _step_mode(row: pd.Series) -> str:
    if not row["dedup_blank"]:
        return "dense (every patch encoded)"
    return "ours, bf16 (dedup_blank)" if row.get("amp") == "bf16" else "ours (dedup_blank)"


def step_table(steps: dict[str, Any]) -> tuple[Any, float | None]:
    """Milliseconds per step and per canvas and peak memory for each measured step (a Styler), and ours per
    canvas at 1500² with ``dedup_blank`` in float32 on generated canvases (None when not measured)."""
    frame = pd.DataFrame(steps["results"])
    for column, default in (("amp", "none"), ("random_pixels", False)):
        frame[column] = frame[column].fillna(default) if column in frame else default
    frame["mode"] = frame.apply(_step_mode, axis=1)
    frame["input"] = frame["random_pixels"].map({True: "random pixels", False: "canvases"})
    table = frame.assign(ms_per_step=1000 * frame["step_s"], ms_per_canvas=1000 * frame["step_s"] / frame["batch_size"])
    columns = {
        "n_patches": "N",
        "batch_size": "B",
        "ms_per_step": "ms per step",
        "ms_per_canvas": "ms per canvas",
        "peak_rss_mb": "peak RSS (MB)",
    }
    shown = table[["canvas", "input", "n_patches", "batch_size", "mode", "ms_per_step", "ms_per_canvas", "peak_rss_mb"]]
    ours = table[(table["canvas"] == 1500) & table["dedup_blank"] & (table["amp"] == "none") & ~table["random_pixels"]]
    per_canvas = float(ours["ms_per_canvas"].iloc[0]) if len(ours) else None
    return shown.rename(columns=columns).style.format(precision=0).hide(axis="index"), per_canvas


def step_note(per_canvas: float, diss: pd.Series) -> str:
    return (
        f"Per canvas at 1500²: ours {per_canvas:.0f} ms on this CPU, the dissertation "
        f"{diss['eff_time_ms_mean'] / DISSERTATION_BATCH:.0f} ms on its GPU."
    )


def gpu_section() -> list[Any]:
    """What the GPU section shows, in order: a note, or the GPU's name and the table of ``gpu_check.json``."""
    path = benchmark_dir() / "gpu_check.json"
    if not path.is_file():
        return [
            "**No GPU measurement exists yet**: this project has so far run on CPUs only. Run "
            "`bash benchmarks/gpu_check.sh` on a machine with a CUDA GPU (about 8 minutes) to fill this "
            "section; the dissertation's logged GPU numbers are shown above."
        ]
    check = json.loads(path.read_text())
    table = pd.DataFrame(check["results"]).drop(columns=["ms_per_step_all"], errors="ignore")
    return [
        f"Measured on **{check['gpu']}** with PyTorch {check['torch']}.",
        table.style.format(precision=1).hide(axis="index"),
    ]
