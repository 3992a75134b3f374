"""The picture ``ipslib predict`` writes: where the model looked, what it saw there, and what it concluded.

Three panels: the image (a max-pooled thumbnail) with every kept patch outlined in the colour of its selection
score and the best ``k`` numbered; a gallery of those ``k`` patches at full resolution, each with its number,
score and pixel coordinates; and the class probabilities of every task, the predicted class (or the present
classes of a multilabel task) in colour and the true class marked where it is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Crop", "draw_attention_map", "score_order"]


@dataclass(frozen=True)
class Crop:
    """One kept patch for the gallery: its pixels (p, p) float in [0, 1], top-left corner and score."""

    pixels: np.ndarray
    top: int
    left: int
    score: float


def score_order(scores: np.ndarray) -> np.ndarray:
    """Positions of ``scores`` from the highest score down (ties in their given order)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def _score_colours(scores: np.ndarray):
    """A ScalarMappable over the scores' range (widened when the scores are nearly equal)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    low, high = float(scores.min()), float(scores.max())
    if high - low <= 1e-6 * max(abs(high), 1e-12):
        low, high = low - 0.05 * abs(low) - 1e-9, high + 0.05 * abs(high) + 1e-9
    return ScalarMappable(norm=Normalize(low, high), cmap="autumn")  # red to yellow: visible on black


def _image_panel(ax, thumbnail: np.ndarray, prediction: Any, colours, *, shape, stride: int, side: float, k: int):
    """The thumbnail with each kept patch outlined by its score, the best ``k`` numbered in score order."""
    from matplotlib.patches import Rectangle

    height, width = shape
    ax.imshow(thumbnail, cmap="gray", vmin=0, vmax=max(float(thumbnail.max()), 1e-6), extent=(0, width, height, 0))
    ax.set(xlim=(0, width), ylim=(height, 0), xticks=[], yticks=[])
    rows, cols = np.divmod(np.asarray(prediction.indices), prediction.grid[1])
    rank = {int(p): r for r, p in enumerate(score_order(prediction.scores)[:k])}
    for i, (r, c, s) in enumerate(zip(rows, cols, prediction.scores)):
        edge = colours.to_rgba(s)
        ax.add_patch(Rectangle((c * stride, r * stride), side, side, fill=False, edgecolor=edge, linewidth=1.4))
        if i in rank:
            ax.text(c * stride, r * stride, str(rank[i] + 1), color=edge, fontsize=7, va="bottom", ha="left")


def _probability_panels(fig, cells, tasks: dict[str, dict[str, Any]], truth: dict[str, Any] | None) -> None:
    """One bar chart per task: the probabilities, the predicted classes in colour, the true ones marked."""
    for cell, (task, out) in zip(cells, tasks.items()):
        ax = fig.add_subplot(cell)
        probs = np.asarray(out["probabilities"], dtype=float)
        chosen = set(out["present"]) if "present" in out else {out["class"]}
        colours = ["tab:orange" if i in chosen else "lightgray" for i in range(len(probs))]
        ax.bar(range(len(probs)), probs, color=colours)
        true = (truth or {}).get(task)
        marks = [] if true is None else (np.flatnonzero(np.asarray(true)) if "present" in out else [int(true)])
        for i in marks:
            ax.plot(i, 1.04, marker="v", color="black", markersize=4, clip_on=False)
        kind = "present" if "present" in out else "class"
        ax.set_title(f"{task}: {kind} {sorted(chosen) if kind == 'present' else out['class']}", fontsize=8)
        ax.set(ylim=(0, 1), xticks=range(len(probs)))
        ax.tick_params(labelsize=6)


def _gallery(fig, cells, crops: list[Crop]) -> None:
    """The best patches at full resolution, numbered as on the image, with score and (y, x) of the corner."""
    for n, (cell, crop) in enumerate(zip(cells, crops), start=1):
        ax = fig.add_subplot(cell)
        ax.imshow(crop.pixels, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"#{n}  {crop.score:.3g}\ny {crop.top}, x {crop.left}", fontsize=6.5)
        ax.set(xticks=[], yticks=[])


def draw_attention_map(
    thumbnail: np.ndarray,
    prediction: Any,
    *,
    image_shape: tuple[int, int],
    patch_size: int,
    stride: int,
    title: str = "",
    crops: list[Crop] | None = None,
    truth: dict[str, Any] | None = None,
):
    """A Figure: the image with the kept patches outlined and scored, the gallery, the class probabilities.

    Args:
        thumbnail: (h, w) max-pooled image, drawn stretched over the full ``image_shape``.
        prediction: an :class:`~ipslib.engine.predict.Prediction` (``indices``, ``scores``, ``grid``, ``tasks``).
        image_shape: (height, width) of the original image in pixels.
        patch_size, stride: how the patch grid was cut, to place each kept patch.
        title: the figure title.
        crops: the gallery, best score first (:func:`ipslib.engine.predict.top_crops`); none: no gallery.
        truth: task -> true class (or multi-hot labels), marked on the probability panels.
    """
    from matplotlib.figure import Figure

    crops = crops or []
    height, width = image_shape
    n_tasks, n_gallery = len(prediction.tasks), max(1, min(len(crops), 8))
    gallery_rows = -(-len(crops) // n_gallery)
    image_h = 6.0 * min(max(height / width, 0.4), 2.0)
    fig = Figure(figsize=(11, image_h + 1.4 * gallery_rows + 0.6), layout="constrained")
    outer = fig.add_gridspec(2, 2, width_ratios=(2.2, 1), height_ratios=(image_h, 1.4 * gallery_rows + 1e-3))
    ax = fig.add_subplot(outer[0, 0])
    if len(prediction.scores):  # a whole-image model keeps no patches: the thumbnail alone
        colours = _score_colours(np.asarray(prediction.scores))
        side = max(patch_size, 0.008 * max(height, width))  # outlines stay visible on huge images
        _image_panel(ax, thumbnail, prediction, colours, shape=image_shape, stride=stride, side=side, k=len(crops))
        bar = fig.colorbar(colours, ax=ax, shrink=0.6, label="selection score of kept patch")
        bar.formatter.set_useOffset(False)
    else:
        ax.imshow(thumbnail, cmap="gray", extent=(0, width, height, 0))
        ax.set(xticks=[], yticks=[])
    _probability_panels(fig, list(outer[0, 1].subgridspec(max(n_tasks, 1), 1)), prediction.tasks, truth)
    if crops:
        cells = outer[1, :].subgridspec(gallery_rows, n_gallery)
        _gallery(fig, [cells[i // n_gallery, i % n_gallery] for i in range(len(crops))], crops)
    fig.suptitle(title, fontsize=9)
    return fig
