"""The performance chapter's compute section: per-patch cost against this CPU's matmul peak, and bf16's status.

Reads ``outputs/benchmarks/train_step.json`` (its ``roofline`` rows and ``matmul_peak_gflops``, from
``python -m benchmarks.train_step``), ``bf16_agreement.json`` and, once run, ``bf16_training.json``
(``python -m benchmarks.bf16``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ipslib.study.pages.performance import themed
from ipslib.study.project import project_root

__all__ = ["roofline_table", "roofline_figure", "roofline_note", "bf16_status", "cpu_default_amp"]

MODE_LABELS = {"ours_fp32": "ours, float32", "ours_bf16": "ours, bf16", "dense": "dense (original), float32"}


def _rows(steps: dict[str, Any]) -> pd.DataFrame:
    rows = pd.DataFrame(steps["roofline"])
    return rows.assign(mode=rows["mode"].map(MODE_LABELS).fillna(rows["mode"]))


def roofline_table(steps: dict[str, Any]) -> Any:
    """Per setting, mode and phase: patches encoded, ms and GFLOP per patch, achieved GFLOP/s and its share of
    the matmul peak of its precision (a Styler)."""
    rows = _rows(steps)
    shown = rows.assign(share=rows["share_of_peak"].map("{:.0%}".format))[
        [
            "setting",
            "mode",
            "phase",
            "patches",
            "ms_per_patch",
            "gflop_per_patch",
            "achieved_gflops",
            "peak_gflops",
            "share",
        ]
    ]
    columns = {
        "ms_per_patch": "ms per patch",
        "gflop_per_patch": "GFLOP per patch",
        "achieved_gflops": "achieved GFLOP/s",
        "peak_gflops": "matmul peak GFLOP/s",
        "share": "of peak",
    }
    formats = {"ms per patch": "{:.2f}", "GFLOP per patch": "{:.3f}", "achieved GFLOP/s": "{:.0f}"}
    return shown.rename(columns=columns).style.format(formats | {"matmul peak GFLOP/s": "{:.0f}"}).hide(axis="index")


def roofline_figure(steps: dict[str, Any], setting: str = "1500") -> Any:
    """Achieved GFLOP/s of scoring and of the gradient pass per mode (bars), with the float32 and bf16 matmul
    peaks of this CPU (dashed lines), for one setting; log scale."""
    import seaborn as sns
    from matplotlib.figure import Figure

    rows = _rows(steps)
    rows = rows[rows["setting"] == setting]
    peak = steps["matmul_peak_gflops"]
    with themed():
        fig = Figure(figsize=(8, 3.8), layout="constrained")
        ax = fig.subplots()
        sns.barplot(rows, x="phase", y="achieved_gflops", hue="mode", ax=ax)
        for name, value in peak.items():
            ax.axhline(value, color="black", linestyle="--" if name == "bf16" else ":", linewidth=1)
            ax.annotate(
                f"matmul peak, {name}: {value:.0f}",
                (0.01, value * 1.06),
                xycoords=("axes fraction", "data"),
                fontsize="small",
            )
        ax.set(yscale="log", ylabel="achieved GFLOP/s", xlabel=f"phase of one training step ({setting})")
        ax.set_ylim(min(10.0, float(rows["achieved_gflops"].min()) / 2), 2 * max(peak.values()))
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1), title="mode")
    return fig


def roofline_note(steps: dict[str, Any], setting: str = "1500") -> str:
    """The sentence under the figure: per-patch cost of ours in float32 and bf16 against the peaks."""
    rows = pd.DataFrame(steps["roofline"])
    rows = rows[rows["setting"] == setting].set_index(["mode", "phase"])
    peak = steps["matmul_peak_gflops"]
    parts = []
    for mode in ("ours_fp32", "ours_bf16"):
        if (mode, "scoring") not in rows.index:
            continue
        score, grad = rows.loc[(mode, "scoring")], rows.loc[(mode, "gradient pass")]
        parts.append(
            f"{MODE_LABELS[mode]}: scoring {score['ms_per_patch']:.2f} ms per encoded patch "
            f"({score['achieved_gflops']:.0f} GFLOP/s, {score['share_of_peak']:.0%} of the {score['dtype']} peak), "
            f"gradient pass {grad['ms_per_patch']:.2f} ms per kept patch ({grad['achieved_gflops']:.0f} GFLOP/s, "
            f"{grad['share_of_peak']:.0%})"
        )
    above = (
        " A share above 100 % means the trunk's convolutions ran faster than the 2048² product did in that "
        "run (the peak is measured, not the vendor's)."
        if bool((rows["share_of_peak"] > 1).any())
        else ""
    )
    return (
        f"This CPU multiplied 2048² matrices at {peak['float32']:.0f} GFLOP/s in float32 and {peak['bf16']:.0f} "
        f"GFLOP/s in bfloat16 (same threads, same run). " + "; ".join(parts) + ". FLOPs are those of the patch "
        "trunk's convolutions (torch's FLOP counter: forward for scoring, forward and backward for the gradient "
        "pass), whose time also covers the aggregator, losses and the optimiser step." + above
    )


def _agreement_text(agreement: dict[str, Any] | None) -> str:
    if agreement is None:
        return "Kept-set agreement: not measured yet (`python -m benchmarks.bf16 agreement`). "
    parts = [
        f"{r['setting']} ({r['canvas']}², N = {r['n_patches']}, M = {r['memory_size']}), {r['model']}: mean Jaccard "
        f"**{r['mean_jaccard']:.4f}** over {r['items']} test canvases (min {r['min_jaccard']:.2f}, "
        f"{r['identical_share']:.1%} identical)"
        for r in agreement["rows"]
    ]
    return "Kept sets of bf16 against float32 from the same seed: " + "; ".join(parts) + ". "


def _training_text(training: dict[str, Any] | None) -> tuple[str, bool]:
    if training is None:
        return (
            "Training equivalence (3 seeds each, final test accuracy within the float32 seeds' spread) has "
            "**not been run yet** (`python -m benchmarks.bf16 training`, hours of CPU). ",
            False,
        )
    verdicts = {name: s["equivalent"] for name, s in training["settings"].items()}
    shown = ", ".join(f"{name}: {'equivalent' if ok else 'NOT equivalent'}" for name, ok in verdicts.items())
    return f"Training equivalence over seeds {training['seeds']}: {shown}. ", bool(verdicts) and all(verdicts.values())


def bf16_status(agreement: dict[str, Any] | None, training: dict[str, Any] | None, default_amp: str) -> str:
    """Whether bf16 is the cpu profile's default and why: agreement, training equivalence, the actual default."""
    training_text, equivalent = _training_text(training)
    if default_amp == "bf16":
        verdict = "The cpu profile **uses bf16** (`amp: bf16`)."
    elif equivalent:
        verdict = "Both checks hold, but the cpu profile still trains in **float32** (`amp: none`)."
    else:
        verdict = "So the cpu profile trains in **float32** (`amp: none`); bf16 stays an option (`--set amp=bf16`)."
    return _agreement_text(agreement) + training_text + verdict


def cpu_default_amp() -> str:
    """``amp`` of the cpu profile's megapixel-MNIST defaults (``params/_defaults.yaml``; absent = ``none``)."""
    import yaml

    defaults = yaml.safe_load((project_root() / "params" / "_defaults.yaml").read_text())
    return str(defaults["megapixel_mnist"]["cpu"].get("amp", "none"))
