"""The attention-map chapters (E12, E17): maps of every finished run, where the kept patches fall, the verdict.

The verdict's rule: on an image with object boxes, IPS *finds the objects* when its kept patches touch a box
more often than M blindly drawn cells would, with p < 0.05 (hypergeometric tail, ``object_overlap``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ipslib.analysis import attention
from ipslib.analysis.attention_plots import plot_maps, plot_placement
from ipslib.data.display import format_labels
from ipslib.data.registry import entry
from ipslib.study.experiments import RunSpec
from ipslib.study.results import ExperimentResults

__all__ = [
    "CRITERION",
    "ALPHA",
    "ExampleMaps",
    "is_synthetic",
    "synthetic_warning",
    "synthetic_note",
    "examples_of",
    "overlap_row",
    "example_maps",
    "placement_figure",
    "overlap_verdict",
]

ALPHA = 0.05
"""Significance level of the kept-patch overlap: p below it means the patches find the objects."""
CRITERION = (
    "Criterion: on an image with objects, IPS *finds the objects* when its kept patches touch an object "
    "box more often than M blindly drawn cells would with p < 0.05."
)
P_COLUMN = "p (blind choice does as well)"
MOVED_COLUMN = "moved by the author's placement"


@dataclass
class ExampleMaps:
    """What the maps section of the page shows.

    Attributes:
        shown: in display order, ``(glue key, Figure)`` for a map or ``(None, Markdown text)`` for a note.
        where: one row per (run, image): the "where the kept patches fall" table (empty without a run).
        placement: ``(spec, example, maps)`` of the first run with shuffling on, for the placement figure.
    """

    shown: list[tuple[str | None, Any]] = field(default_factory=list)
    where: pd.DataFrame = field(default_factory=pd.DataFrame)
    placement: tuple[RunSpec, attention.Example, attention.AttentionMaps] | None = None


def is_synthetic(results: ExperimentResults) -> bool:
    """Whether any run of the page uses a synthetic stand-in dataset (``ipslib.data.registry``)."""
    return any(entry(spec.config.dataset).synthetic for spec in results.specs)


def synthetic_warning(results: ExperimentResults) -> str:
    """The warning shown above the maps when the images are synthetic; ``""`` otherwise."""
    if not is_synthetic(results):
        return ""
    return (
        "**The traffic images on this page are SYNTHETIC**: generated road scenes "
        "(`ipslib.data.synthetic_traffic`) standing in for the Swedish Traffic Signs data, "
        "which could not be obtained here. Nothing on this page describes the real dataset."
    )


def synthetic_note(results: ExperimentResults) -> str:
    """The sentence (with its leading space) the verdict ends with when the images are synthetic."""
    return " The traffic images are synthetic stand-ins, not the real data." if is_synthetic(results) else ""


def examples_of(spec: RunSpec, cfg: Any) -> tuple[list[attention.Example], str]:
    """Test image 0 and, when it has no object box, the first test image that has one.

    Returns:
        The examples, and a note (``""`` if none) saying that no test image has an object box.
    """
    examples = [attention.load_example(cfg, 0)]
    if len(examples[0].boxes):
        return examples, ""
    try:
        examples.append(attention.load_example(cfg, 0, with_object=True))
    except IndexError:
        return examples, f"No test image of `{spec.name}` contains a sign."
    return examples, ""


def overlap_row(spec: RunSpec, cfg: Any, ex: attention.Example, maps: attention.AttentionMaps) -> dict[str, Any]:
    """One row of "where the kept patches fall": kept patches on an object with ipslib's placement and the
    author's, against the share of all cells, with the chance p that a blind choice does as well."""
    cut = dict(patch_size=cfg.ips.patch_size, stride=cfg.ips.stride)
    ours = attention.object_overlap(maps.to_grid(), ex.boxes, **cut)
    theirs = attention.object_overlap(attention.author_style_grid(maps), ex.boxes, **cut)
    return {
        "run": spec.name.split("/", 1)[-1],
        "image": ex.index,
        "objects": len(ex.boxes),
        "kept patches": ours["kept"],
        "kept on an object (%)": 100 * ours["share"],
        "all cells on an object (%)": 100 * ours["blind_share"],
        P_COLUMN: ours["p_value"],
        "author's placement on an object (%)": 100 * theirs["share"],
        MOVED_COLUMN: int((maps.entry_positions() != maps.indices).sum()),
        "prediction": format_labels(maps.predictions),
    }


def example_maps(specs: list[RunSpec]) -> ExampleMaps:
    """Every finished run's model at its last epoch on its examples (:func:`examples_of`): a map figure per
    image (glue key ``attention_map_<run number>_<image>``), its overlap row, and the placement example."""
    out, rows = ExampleMaps(), []
    for k, spec in enumerate(specs):
        net, cfg = attention.load_trained(spec.run_dir)
        examples, note = examples_of(spec, cfg)
        if note:
            out.shown.append((None, note))
        for ex in examples:
            maps = attention.compute_maps(net, cfg, ex.tensor, seed=0)
            title = f"{spec.name} | test image {ex.index} | truth: {format_labels(ex.labels)}"
            out.shown.append((f"attention_map_{k}_{ex.index}", plot_maps(ex.image, maps, boxes=ex.boxes, title=title)))
            rows.append(overlap_row(spec, cfg, ex, maps))
            if out.placement is None and cfg.ips.shuffle:
                out.placement = (spec, ex, maps)
    out.where = pd.DataFrame(rows)
    if not specs:
        out.shown.append((None, "No finished run, so there is no map to draw."))
    return out


def placement_figure(examples: ExampleMaps) -> Any:
    """Our placement beside the author's for the first run with shuffling on; None when there is none."""
    if examples.placement is None:
        return None
    spec, ex, maps = examples.placement
    return plot_placement(ex.image, maps, boxes=ex.boxes, title=f"{spec.name} | test image {ex.index}")


def overlap_verdict(where: pd.DataFrame, n_missing: int = 0) -> str:
    """The verdict on "IPS attends to the objects" from the overlap table (:data:`CRITERION`), and how many
    kept patches the author's placement moves.

    Args:
        where: rows as :func:`overlap_row` makes them (may be empty).
        n_missing: runs without a finished record, named when nothing can be tested.
    """
    scored = where[where["objects"] > 0] if len(where) else where
    if not len(scored):
        return "Not testable here: no finished run has an image with an object box" + (
            f" ({n_missing} run(s) missing)." if n_missing else "."
        )
    found = scored[P_COLUMN] < ALPHA
    outcome = "confirmed" if found.all() else ("partly confirmed" if found.any() else "not confirmed")
    verdict = (
        f"On {int(found.sum())} of {len(scored)} image(s) the kept patches touch objects more often than a "
        f"blind choice would (on average {scored['kept on an object (%)'].mean():.0f} % of kept patches "
        f"against {scored['all cells on an object (%)'].mean():.0f} % of all cells), so the dissertation's "
        f"reading that IPS attends to the objects is **{outcome}** for these models."
    )
    moved = where[where[MOVED_COLUMN] > 0]
    if not len(moved):
        return verdict + " The author's placement moves no patch here (shuffling off, or every patch kept)."
    n_moved, n_kept = int(moved[MOVED_COLUMN].sum()), int(moved["kept patches"].sum())
    return verdict + (
        f" The author's placement moves {n_moved} of {n_kept} kept patches to other cells on "
        f"{len(moved)} image(s), so maps drawn that way with shuffling on show cells the model did not keep."
    )
