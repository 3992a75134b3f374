"""Figures of attention maps: the kept patches' scores and the aggregation attention drawn on the image.

Each panel is a max-pooled thumbnail of the image with the kept patches as coloured squares at their grid
cells and the object boxes outlined in red. Figures are built on :class:`matplotlib.figure.Figure` (no
pyplot state). The maps come from :func:`ipslib.analysis.attention.compute_maps`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ipslib.analysis.attention import AttentionMaps, author_style_grid
from ipslib.data.display import max_downsample

__all__ = ["plot_maps", "plot_placement"]


def _thumbnail(image: np.ndarray, max_side: int) -> tuple[np.ndarray, tuple]:
    """The image max-pooled to at most ``max_side`` pixels a side, and its extent in full-size pixels."""
    height, width = image.shape[:2]
    thumb = max_downsample(np.asarray(image), max(1, math.ceil(max(height, width) / max_side)))
    return thumb, (0, width, height, 0)


def _draw_panel(
    ax: Any,
    thumb: np.ndarray,
    extent: tuple,
    cells: np.ndarray,
    values: np.ndarray,
    maps: AttentionMaps,
    boxes: np.ndarray | None,
    norm: Any,
    cmap: str,
    title: str,
) -> None:
    """One panel: the thumbnail, a square per grid cell in ``cells`` coloured by ``values``, the boxes."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    ax.imshow(thumb, cmap="gray" if thumb.ndim == 2 else None, extent=extent, interpolation="nearest")
    rows, cols = np.divmod(np.asarray(cells), maps.grid_shape[1])
    squares = [
        Rectangle((c * maps.stride, r * maps.stride), maps.patch_size, maps.patch_size) for r, c in zip(rows, cols)
    ]
    collection = PatchCollection(squares, cmap=cmap, norm=norm, alpha=0.6, linewidths=0)
    collection.set_array(np.asarray(values, dtype=float))
    ax.add_collection(collection)
    for r, c, h, w in np.asarray(boxes).reshape(-1, 4) if boxes is not None else []:
        ax.add_patch(Rectangle((c, r), w, h, fill=False, edgecolor="red", linewidth=1.0))
    ax.set(xlim=extent[:2], ylim=extent[2:], xticks=[], yticks=[])
    ax.set_title(title, fontsize=9)


def _score_norm(values: np.ndarray, low: float | None = None) -> Any:
    """Colour scale from ``low`` (default: the smallest value) to the largest value; when every value is the
    same (one kept patch, or ties) the scale runs from 0 to that value, so the colour bar stays readable."""
    from matplotlib.colors import Normalize

    high = float(values.max()) if values.size else 1.0
    low = float(values.min()) if low is None and values.size else (low or 0.0)
    if high - low <= 1e-9 * max(abs(high), 1e-12):
        low, high = min(0.0, high), (high if high > 0 else 1.0)
    return Normalize(low, high)


def plot_maps(
    image_uint8: np.ndarray,
    maps: AttentionMaps,
    *,
    boxes: np.ndarray | None = None,
    max_side: int = 800,
    title: str = "",
) -> Figure:
    """The image (max-pooled thumbnail) with (a) the kept patches' selection scores and (b) the
    aggregation attention of each task token as coloured squares, one colour bar each; boxes in red."""
    thumb, extent = _thumbnail(image_uint8, max_side)
    n_panels = 1 + len(maps.task_names)
    ncols = min(n_panels, 3)
    nrows = math.ceil(n_panels / ncols)
    aspect = extent[2] / extent[1]
    fig = Figure(figsize=(3.4 * ncols + 0.8, 3.4 * nrows * aspect + 0.7), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    selection = f"(a) selection scores of the {len(maps.indices)} kept patches"
    panels = [(maps.selection_scores, _score_norm(maps.selection_scores), "viridis", selection)]
    agg_norm = _score_norm(maps.aggregation, low=0.0)
    for t, task in enumerate(maps.task_names):
        name = f"(b) aggregation attention: {task} (pred. {maps.predictions[task]})"
        panels.append((maps.aggregation[t], agg_norm, "magma", name))
    for i, (ax, (values, norm, cmap, name)) in enumerate(zip(axes, panels)):
        _draw_panel(ax, thumb, extent, maps.indices, values, maps, boxes, norm, cmap, name)
        if i == 0:  # panel (a) has its own colour bar, the aggregation panels share one
            fig.colorbar(ax.collections[0], ax=ax, shrink=0.8)
    fig.colorbar(axes[1].collections[0], ax=list(axes[1:n_panels]), shrink=0.8, label="attention (mean of heads)")
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_placement(
    image_uint8: np.ndarray,
    maps: AttentionMaps,
    *,
    boxes: np.ndarray | None = None,
    max_side: int = 600,
    title: str = "",
) -> Figure:
    """Two panels: selection scores at their true cells, and where the author's script would put them."""
    thumb, extent = _thumbnail(image_uint8, max_side)
    aspect = extent[2] / extent[1]
    fig = Figure(figsize=(7.6, 3.6 * aspect + 0.7), layout="constrained")
    axes = fig.subplots(1, 2)
    norm = _score_norm(maps.selection_scores)
    author = author_style_grid(maps)
    cells = np.flatnonzero(~np.isnan(author.ravel()))
    panels = [
        (maps.indices, maps.selection_scores, "grid indices (ipslib)"),
        (cells, author.ravel()[cells], "shuffled positions as cells (author's script)"),
    ]
    for ax, (where, values, name) in zip(axes, panels):
        _draw_panel(ax, thumb, extent, where, values, maps, boxes, norm, "viridis", name)
    fig.colorbar(axes[0].collections[0], ax=list(axes), shrink=0.8, label="selection score")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
