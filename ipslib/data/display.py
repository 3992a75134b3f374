"""Figures of single dataset samples: a (large) image with its object boxes and its labels.

Large images are shrunk by an integer factor with max-pooling, so one-pixel strokes stay visible. Figures
are built with :class:`matplotlib.figure.Figure` directly, so no pyplot state is created or leaked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["max_downsample", "format_labels", "draw_sample", "show_canvas"]


def max_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Max over factor × factor blocks (edges padded with zeros): (H, W[, C]) → (⌈H/f⌉, ⌈W/f⌉[, C])."""
    if factor <= 1:
        return image
    height, width = image.shape[:2]
    pad_h, pad_w = -height % factor, -width % factor
    if pad_h or pad_w:
        pad = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (image.ndim - 2)
        image = np.pad(image, pad)
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    blocks = image.reshape(rows, factor, cols, factor, *image.shape[2:])
    return blocks.max(axis=(1, 3))


def _format_value(value: Any) -> str:
    array = np.asarray(value)
    if array.ndim == 0:
        return str(array.item())
    if array.ndim == 1 and np.isin(array, (0, 1)).all():  # a 0/1 presence vector: list what is present
        present = np.flatnonzero(array)
        return "{" + ",".join(map(str, present)) + "}" if len(present) else "none"
    return str(array.tolist())


def format_labels(labels: Mapping[str, Any]) -> str:
    """One line such as ``majority=3  max=7  top=3  multi={1,3,7}`` (``multi=none``: no class present)."""
    return "  ".join(f"{name}={_format_value(value)}" for name, value in labels.items())


def draw_sample(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: Mapping[str, Any],
    *,
    title: str | None = None,
    max_side: int = 1000,
    box_labels: Sequence[Any] | None = None,
) -> Figure:
    """Draw an image with its boxes and labels.

    Args:
        image: uint8 (H, W) grayscale or (H, W, 3) RGB.
        boxes: int (n, 4) as (row, col, height, width) in image pixels.
        labels: task name → label, written under the image.
        title: optional figure title.
        max_side: images larger than this are max-pooled by ⌈max(H, W) / max_side⌉ for display.
        box_labels: optional text written beside each box.
    Returns:
        A matplotlib Figure (not registered with pyplot; save it with ``fig.savefig``).
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, 3); got shape {image.shape}")
    factor = max(1, math.ceil(max(image.shape[:2]) / max_side))
    shown = max_downsample(image, factor)
    height, width = shown.shape[:2]
    fig = Figure(figsize=(7, 7 * height / width + 0.8), layout="constrained")
    ax = fig.add_subplot()
    if shown.ndim == 2:
        ax.imshow(shown, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(shown, interpolation="nearest")
    for k, (row, col, h, w) in enumerate(np.asarray(boxes, dtype=float).reshape(-1, 4) / factor):
        ax.add_patch(Rectangle((col - 0.5, row - 0.5), w, h, fill=False, edgecolor="tab:red", linewidth=1.2))
        if box_labels is not None:
            ax.text(col, row - 1, str(box_labels[k]), color="tab:red", fontsize=8, va="bottom")
    ax.set_xticks([])
    ax.set_yticks([])
    scale = f" (shown at 1/{factor}, max-pooled)" if factor > 1 else ""
    ax.set_xlabel(format_labels(labels) + f"\n{image.shape[0]}×{image.shape[1]} px{scale}", fontsize=9)
    if title:
        ax.set_title(title)
    return fig


def show_canvas(dataset: Any, index: int, *, max_side: int = 1000) -> Figure:
    """Figure of sample ``index`` of any dataset with ``display(i) -> (image, boxes, labels)``."""
    image, boxes, labels = dataset.display(index)
    title = " ".join(filter(None, [type(dataset).__name__, getattr(dataset, "split", ""), f"#{index}"]))
    return draw_sample(image, boxes, labels, title=title, max_side=max_side)
