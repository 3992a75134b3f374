"""Write the notebook templates of the attention-map and STKIM chapters (E9-E12, E17, E18, X2).

Run from the repository root: ``.venv/bin/python book/templates/build_templates_extra.py``. It (re)writes
``attention_maps.ipynb``, ``stkim.ipynb`` and ``stkim_density.ipynb`` beside this file. Each template has a
``title`` cell (replaced by the runner with the experiment's header), a ``parameters`` cell, one call into
ipslib to load the experiment, and a verdict composed from the computed values.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def code(source: str, *tags: str):
    cell = new_code_cell(source.strip("\n"))
    cell.metadata["tags"] = list(tags or ["remove-input"])
    return cell


def md(source: str, *tags: str):
    cell = new_markdown_cell(source.strip("\n"))
    cell.metadata["tags"] = list(tags)
    return cell


def head(default_experiment: str, imports: str) -> list:
    """Title, parameters, the one load call, and the Settings / Results / comparison sections."""
    return [
        md(
            "# Experiment\n\nThe book's runner replaces this cell with the experiment's title and question "
            "(from `params/<experiment>.yaml`).",
            "title",
        ),
        code(
            f'experiment: str = "{default_experiment}"   # a params/<experiment>.yaml file\n'
            'profile: str = "cpu"   # smoke | cpu | paper',
            "parameters",
            "remove-cell",
        ),
        code(f"""
%matplotlib inline
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from ipslib.study import report
from ipslib.study.results import load_results
{imports}
pd.set_option("display.max_rows", 200)
results = load_results(experiment, profile)
display(Markdown(report.profile_note(results)))
if results.missing:
    display(Markdown("**Missing runs** (no finished record; see `outputs/" + profile + "/status.json`): "
                     + ", ".join(f"`{{n}}`" for n in results.missing)))
finished = dict(zip(results.runs["key"], results.runs["finished"]))
done = [spec for spec in results.specs if finished.get(spec.key)]
reduced = ("" if profile == "paper" else
           f" These are **{{profile}}-profile** runs, reduced in scale from the dissertation's, so they test the "
           "mechanism, not its numbers.")
"""),
        md(
            "## Settings\n\nThe settings every run of this profile shares, beside the paper profile's "
            "(`differs` marks a deviation from the dissertation's logged settings)."
        ),
        code("report.settings_table(results)"),
        md(
            "## Results\n\nLast-epoch test accuracy (%), mean ± population std over repeats (the dissertation "
            "reports the last epoch and calls the test split *validation*)."
        ),
        code("display(Markdown(report.chance_note(results)))"),
        code(
            "summary = report.summary_table(results, 'last')\n"
            "summary if len(summary) else Markdown('No finished run yet.')"
        ),
        md("Best-epoch test accuracy (%), the epoch with the highest mean test accuracy over tasks:"),
        code("best = report.summary_table(results, 'best')\nbest if len(best) else Markdown('No finished run yet.')"),
        md(
            "## The dissertation beside ours\n\nValues in %; `same_setting` is true only in the paper profile. "
            "The `source` column names where each dissertation value comes from."
        ),
        code(
            "comparison = report.comparison_table(results)\n"
            "comparison if len(comparison) else Markdown('No table of the dissertation reports this experiment, '\n"
            "                                            'or no run has finished.')"
        ),
    ]


def tail() -> list:
    return [
        md(
            "## Verdict\n\nEach claim of the dissertation this chapter tests, with the two arms it compares "
            "(rule: `ipslib.study.verdict`)."
        ),
        code(
            "from ipslib import verdict\n\nevaluated = verdict.evaluate_all(results)\n"
            "display(Markdown(verdict.verdict_markdown(evaluated, profile)))\n"
            "claims = verdict.verdict_table(evaluated)\n"
            "claims if len(claims) else None"
        ),
        md("## Every run"),
        code("report.runs_table(results)"),
        code("for key, value in report.headline(results).items():\n    glue(key, value, display=False)", "remove-cell"),
    ]


ATTENTION = (
    head("mnist_attention_maps", "from ipslib import attention\nfrom ipslib.data.display import format_labels\n")
    + [
        code("""
if any(spec.config.dataset == "synthetic_traffic" for spec in results.specs):
    display(Markdown("**The traffic images on this page are SYNTHETIC**: generated road scenes "
                     "(`ipslib.data.synthetic_traffic`) standing in for the Swedish Traffic Signs data, "
                     "which could not be obtained here. Nothing on this page describes the real dataset."))
"""),
        md("""
## Attention maps

For every finished run: its model at the last epoch on test image 0 (for traffic also the first test image
with a sign, when image 0 has none). Panel (a) shows the **selection scores** of the M kept patches, the
last IPS iteration's scores, which is what the dissertation's figures show; the other panels show the
**aggregation attention** of each task token over those patches (mean over heads), which is what the
classifier weighs. Patches sit at their own grid cells (indices mapped back through the shuffle); object
boxes are outlined in red. The author's script drew a *training* image and, with shuffling on, misplaced the
patches (spec P17, P18); we draw a test image, as the dissertation's text says.
"""),
        code("""
rows, placement = [], None
for k, spec in enumerate(done):
    net, cfg = attention.load_trained(spec.run_dir)
    examples = [attention.load_example(cfg, 0)]
    if cfg.dataset != "megapixel_mnist" and not len(examples[0].boxes):
        try:
            examples.append(attention.load_example(cfg, 0, with_object=True))
        except IndexError:
            display(Markdown(f"No test image of `{spec.name}` contains a sign."))
    for ex in examples:
        maps = attention.compute_maps(net, cfg, ex.tensor, seed=0)
        fig = attention.plot_maps(ex.image, maps, boxes=ex.boxes,
                                  title=f"{spec.name} | test image {ex.index} | truth: {format_labels(ex.labels)}")
        glue(f"attention_map_{k}_{ex.index}", fig, display=False)
        display(fig)
        cut = dict(patch_size=cfg.ips.patch_size, stride=cfg.ips.stride)
        ours = attention.object_overlap(maps.to_grid(), ex.boxes, **cut)
        theirs = attention.object_overlap(attention.author_style_grid(maps), ex.boxes, **cut)
        rows.append({"run": spec.name.split("/", 1)[-1], "image": ex.index, "objects": len(ex.boxes),
                     "kept patches": ours["kept"], "kept on an object (%)": 100 * ours["share"],
                     "all cells on an object (%)": 100 * ours["blind_share"],
                     "p (blind choice does as well)": ours["p_value"],
                     "author's placement on an object (%)": 100 * theirs["share"],
                     "moved by the author's placement": int((maps.entry_positions() != maps.indices).sum()),
                     "prediction": format_labels(maps.predictions)})
        if placement is None and cfg.ips.shuffle:
            placement = (spec, ex, maps)
where = pd.DataFrame(rows)
if not done:
    display(Markdown("No finished run, so there is no map to draw."))
"""),
        md("""
### Where the kept patches fall

Share of kept patches whose cell touches an object box, beside the share of all grid cells that touch one
(what a blind choice of patches would give on average) and the chance *p* that M cells drawn blindly touch
objects at least as often (hypergeometric tail); then the share with the author's placement, and how many
kept patches that placement moves to another cell.
"""),
        code("where.round(1) if len(where) else Markdown('No finished run.')"),
        md("""
## Shuffled indices: our placement and the author's

With shuffling on, IPS sees the patches in a random order. The author's scripts read the kept patches'
positions *in that order* as grid cells; ipslib maps them back to the grid. The right panel draws what the
author's script would have drawn for the same model and image.
"""),
        code("""
if placement is None:
    display(Markdown("Not shown: no finished run with shuffling on."))
else:
    spec, ex, maps = placement
    fig = attention.plot_placement(ex.image, maps, boxes=ex.boxes, title=f"{spec.name} | test image {ex.index}")
    glue("placement_figure", fig, display=False)
    display(fig)
"""),
        md("## Verdict"),
        code("""
criterion = ("Criterion: on an image with objects, IPS *finds the objects* when its kept patches touch an object "
             "box more often than M blindly drawn cells would with p < 0.05.")
scored = where[where["objects"] > 0] if len(where) else where
if not len(scored):
    verdict = ("Not testable here: no finished run has an image with an object box"
               + (f" ({len(results.missing)} run(s) missing)." if results.missing else "."))
else:
    found = scored["p (blind choice does as well)"] < 0.05
    outcome = "confirmed" if found.all() else ("partly confirmed" if found.any() else "not confirmed")
    verdict = (f"On {int(found.sum())} of {len(scored)} image(s) the kept patches touch objects more often than a "
               f"blind choice would (on average {scored['kept on an object (%)'].mean():.0f} % of kept patches "
               f"against {scored['all cells on an object (%)'].mean():.0f} % of all cells), so the dissertation's "
               f"reading that IPS attends to the objects is **{outcome}** for these models.")
    moved = where[where["moved by the author's placement"] > 0]
    if len(moved):
        n_moved, n_kept = int(moved["moved by the author's placement"].sum()), int(moved["kept patches"].sum())
        verdict += (f" The author's placement moves {n_moved} of {n_kept} kept patches to other cells on "
                    f"{len(moved)} image(s), "
                    "so maps drawn that way with shuffling on show cells the model did not keep.")
    else:
        verdict += " The author's placement moves no patch here (shuffling off, or every patch kept)."
synthetic = any(spec.config.dataset == "synthetic_traffic" for spec in results.specs)
note = " The traffic images are synthetic stand-ins, not the real data." if synthetic else ""
glue("attention_verdict", verdict, display=False)
display(Markdown(f"{criterion} {verdict}{reduced}{note}"))
"""),
    ]
    + tail()
)


STKIM = (
    head("mnist_stkim_p", "from ipslib import stkim_analysis\n")
    + [
        code("fig = report.accuracy_figure(results)\nglue('accuracy_figure', fig, display=False)\ndisplay(fig)"),
        md("""
## Survival of a salient patch

The author's STKIM masks each of the top-K **selection** scores with probability P at every IPS iteration,
in training and at test time (spec §5). A salient patch that would stay in the top K survives one
iteration with probability 1 − P and must survive every iteration it takes part in: (1 − P)^r, with r the
number of iterations left when it enters. Averaged over its (shuffled) entry position this is the
*survival* below; ACMIL's arm masks the aggregation logits in training only, so its selection is never
masked at test time (survival 1). The baseline of each run is the same configuration without STKIM, looked
up in this profile's runs (so a baseline trained by another chapter counts).
"""),
        code("""
table = stkim_analysis.survival_table(results)
settings = (table.groupby(["arm", "K", "P"], sort=False)
            .agg(N=("N", "first"), M=("M", "first"), I=("I", "first"), n_iter=("n_iter", "first"),
                 survival=("survival", "first"), accuracy=("accuracy (%)", "mean"),
                 baseline=("baseline accuracy (%)", "mean"), drop=("drop (points)", "mean"),
                 runs=("run", "count"))
            .reset_index())
settings.round(3)
"""),
        code("""
fig = stkim_analysis.survival_figure(results, table)
glue("survival_figure", fig, display=False)
display(fig)
"""),
        md("## Verdict"),
        code("""
author = settings[settings["arm"] == "seed_selection"].dropna(subset=["accuracy"])
base = table.groupby("repeat")["baseline accuracy (%)"].first().mean()
points = pd.concat([author[["survival", "accuracy"]],
                    pd.DataFrame({"survival": [1.0], "accuracy": [base]})]).dropna()
levels = points["survival"].round(6).nunique()
criterion = ("Criterion: the accuracy drop *tracks* the survival probability when, over the author's arm and "
             "the unmasked baseline (survival 1), the Spearman rank correlation between survival and accuracy is "
             "at least 0.8; this needs at least three distinct survival values.")
if levels >= 3:
    rho = stkim_analysis.spearman(points["survival"], points["accuracy"])
    outcome = "tracks" if rho >= 0.8 else "does not track"
    verdict = (f"Over {len(points)} settings (survival {points['survival'].min():.2f} to 1), Spearman's rho is "
               f"{rho:.2f}: the accuracy drop **{outcome}** the survival of a salient patch.")
elif levels == 2 and len(author) and not np.isnan(base):
    below = int((author["accuracy"] < base).sum())
    verdict = (f"Only two survival values are present (1 and {author['survival'].min():.2f}), so a trend cannot be "
               f"tested; the formula predicts the same drop for every setting at that survival, and {below} of "
               f"{len(author)} masked setting(s) score below the baseline ({base:.1f} %)"
               + (", as predicted." if below == len(author) else ", where the formula predicts all of them."))
    rho = float("nan")
else:
    missing = "no finished baseline" if np.isnan(base) else "no finished run of the author's arm"
    verdict = f"Not testable here: {missing} in this profile."
    rho = float("nan")
acmil = settings[settings["arm"] == "acmil_aggregation"].dropna(subset=["drop"])
if len(acmil):
    low, high = round(-acmil["drop"].max(), 1) + 0.0, round(-acmil["drop"].min(), 1) + 0.0
    change = f"{low:+.1f}" if round(low, 1) == round(high, 1) else f"{low:+.1f} to {high:+.1f}"
    verdict += (f" ACMIL's arm, whose selection is never masked at test time, changes accuracy by {change} "
                "points against the baseline.")
glue("spearman_rho", rho, display=False)
glue("stkim_verdict", verdict, display=False)
display(Markdown(f"{criterion} {verdict}{reduced}"))
"""),
    ]
    + tail()
)


DENSITY = (
    head("stkim_density", "from ipslib import attention\n")
    + [
        md("""
## Score densities

For the run with the author's masking and the one without: each model at its last epoch (the dissertation
used epoch 100) on test image 0. *Kept patches*: the last iteration's selection scores of the M patches
selection keeps (with the author's masking still active at test time, as in its code). *All patches*: the
scores of all N patches as one candidate set (one softmax over N, no masking), which shows how the model
spreads its attention without the iteration's renormalisation. Densities are of log10 of the scores.
"""),
        code("""
import seaborn as sns
from matplotlib.figure import Figure

frames, stats = [], []
for spec in done:
    net, cfg = attention.load_trained(spec.run_dir)
    ex = attention.load_example(cfg, 0)
    maps = attention.compute_maps(net, cfg, ex.tensor, seed=0)
    every = attention.score_all_patches(net, cfg, ex.tensor)
    label = f"masked (K={cfg.stkim.stkim_k}, P={cfg.stkim.stkim_p})" if cfg.stkim.active else "no masking"
    frames.append(attention.score_density(maps, every, label=label))
    for name, values in (("kept patches (last iteration)", maps.selection_scores), ("all patches (one softmax)", every)):
        stats.append({"run": label, "set": name, **attention.score_summary(values)})
stats = pd.DataFrame(stats)
if frames:
    fig = Figure(figsize=(9.6, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    scores = pd.concat(frames, ignore_index=True)
    for ax, name in zip(axes, scores["set"].unique()):
        part = scores[(scores["set"] == name) & (scores["score"] > 0)].assign(log_score=lambda d: np.log10(d["score"]))
        sns.kdeplot(data=part, x="log_score", hue="run", common_norm=False, fill=True, warn_singular=False, ax=ax)
        sns.rugplot(data=part, x="log_score", hue="run", ax=ax, legend=False)
        ax.set_xlabel("log10 of the score")
        ax.set_title(name)
    glue("density_figure", fig, display=False)
    display(fig)
else:
    display(Markdown("No finished run, so there is no density to draw."))
"""),
        md("""
Spread of each score set (normalised to sum 1): entropy in nats, entropy over its maximum log(n), and the
share held by the ten largest scores.
"""),
        code("stats.round(3) if len(stats) else Markdown('No finished run.')"),
        md("## Verdict"),
        code("""
criterion = ("Criterion: STKIM *spreads the attention* when, over all N patches of the test image, the masked "
             "model's normalised entropy is higher and its top-10 share lower than the unmasked model's.")
spread = stats[stats["set"] == "all patches (one softmax)"].set_index("run") if len(stats) else pd.DataFrame()
masked = [r for r in spread.index if r != "no masking"]
if "no masking" in spread.index and masked:
    a, b = spread.loc[masked[0]], spread.loc["no masking"]
    spreads = a["normalised entropy"] > b["normalised entropy"] and a["top-10 share"] < b["top-10 share"]
    verdict = (f"Normalised entropy {a['normalised entropy']:.3f} with masking against {b['normalised entropy']:.3f} "
               f"without; top-10 share {a['top-10 share']:.3f} against {b['top-10 share']:.3f}. The dissertation's "
               f"claim that STKIM spreads the attention is **{'confirmed' if spreads else 'not confirmed'}** on this "
               "image, one image of one model per arm, so it is an illustration rather than a test.")
    glue("entropy_masked", float(a["normalised entropy"]), display=False)
    glue("entropy_unmasked", float(b["normalised entropy"]), display=False)
else:
    verdict = "Not testable here: the masked and the unmasked run have not both finished in this profile."
glue("density_verdict", verdict, display=False)
display(Markdown(f"{criterion} {verdict}{reduced}"))
"""),
    ]
    + tail()
)


def main() -> None:
    for name, cells in (("attention_maps", ATTENTION), ("stkim", STKIM), ("stkim_density", DENSITY)):
        notebook = new_notebook(metadata=KERNEL)
        notebook.cells = cells
        for i, cell in enumerate(notebook.cells):
            cell["id"] = f"cell-{i}"  # stable ids: rebuilding an unchanged template changes nothing
        nbformat.write(notebook, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
