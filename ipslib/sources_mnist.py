"""Megapixel-MNIST patches rendered straight from a canvas's sparse description, never the whole canvas.

A canvas is a list of *stamps* in painting order (noise placements in order, then the five digits), each a
small square of pixels assigned over the canvas (a later stamp erases what is under its whole square,
zeros included), exactly as :class:`~ipslib.data.megapixel_mnist.MegapixelMNIST` paints. A patch is the
canvas window under it, so painting only the stamps that intersect the window, in the same order, gives
the same bytes as cutting the painted canvas. A sparse uniform grid of cells (only occupied cells stored,
looked up with ``searchsorted``) finds those stamps; its size grows with the number of stamps, not with the
canvas area, so a 48,000² canvas (2.3 gigapixels) costs a few megabytes.

:func:`describe_canvas` derives the description from the dataset's random stream without painting: it
makes the same draws, in the same order, as ``MegapixelMNIST.__getitem__`` (target, digits, digit
positions, noise placements), so ``describe_canvas(ds, i)`` matches ``ds[i]`` box for box.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from ipslib.data.megapixel_mnist import MegapixelMNIST, canvas_labels, place_digits
from ipslib.data.resize import area_resize
from ipslib.streaming import WindowSource

__all__ = ["CanvasLayout", "StampIndex", "describe_canvas", "MegapixelPatchSource"]


@dataclass(frozen=True, eq=False)
class CanvasLayout:
    """The sparse description of one canvas: stamps in painting order.

    Attributes:
        size: canvas side in pixels.
        origins: int64 (K, 2) top-left (row, col) of each stamp.
        sides: int64 (K,) side of each stamp.
        sprites: (noise patterns uint8 (P, s, s), digit images uint8 (5, d, d)).
        bank: int64 (K,) 0 for a noise stamp, 1 for a digit; ref: int64 (K,) index into that bank.
        digit_indices, digit_labels: int64 (5,); noise_patterns: int64 (n,); labels: the canvas's tasks.
    """

    size: int
    origins: np.ndarray
    sides: np.ndarray
    sprites: tuple[np.ndarray, np.ndarray]
    bank: np.ndarray
    ref: np.ndarray
    digit_indices: np.ndarray
    digit_labels: np.ndarray
    noise_patterns: np.ndarray
    labels: dict

    @property
    def digit_boxes(self) -> np.ndarray:
        """int64 (5, 4) row, col, height, width, as :class:`~ipslib.data.megapixel_mnist.Canvas`."""
        digits = self.bank == 1
        return np.column_stack([self.origins[digits], self.sides[digits], self.sides[digits]])

    @property
    def noise_boxes(self) -> np.ndarray:
        noise = self.bank == 0
        return np.column_stack([self.origins[noise], self.sides[noise], self.sides[noise]])

    def sprite(self, k: int) -> np.ndarray:
        return self.sprites[self.bank[k]][self.ref[k]]

    def render(self) -> np.ndarray:
        """The whole canvas, uint8 (size, size) (for tests and small canvases only)."""
        image = np.zeros((self.size, self.size), dtype=np.uint8)
        for k, ((row, col), side) in enumerate(zip(self.origins.tolist(), self.sides.tolist())):
            image[row:row + side, col:col + side] = self.sprite(k)
        return image


def describe_canvas(dataset: MegapixelMNIST, index: int) -> CanvasLayout:
    """The layout of ``dataset[index]`` from the same random draws, without painting the canvas."""
    index = operator.index(index)
    if not 0 <= index < len(dataset):
        raise IndexError(f"index {index} is out of range for {len(dataset)} {dataset.split} canvases")
    c, bank, pool = dataset.config, dataset.digits, dataset.noise_pool
    rng = dataset._stream(index)
    target = int(rng.integers(10))
    digit_indices = bank.draw(rng, target)
    positions = place_digits(rng, c.canvas_size, c.digit_size)
    noise_origins, noise_ids = dataset._place_noise(rng, len(pool))
    n_noise, n_digits = len(noise_ids), len(positions)
    digit_labels = bank.labels[digit_indices].astype(np.int64)
    return CanvasLayout(
        size=c.canvas_size,
        origins=np.concatenate([noise_origins, positions]).astype(np.int64).reshape(-1, 2),
        sides=np.concatenate([np.full(n_noise, c.noise_px), np.full(n_digits, c.digit_size)]).astype(np.int64),
        sprites=(pool.patterns, area_resize(bank.images[digit_indices], c.digit_size)),
        bank=np.concatenate([np.zeros(n_noise), np.ones(n_digits)]).astype(np.int64),
        ref=np.concatenate([noise_ids, np.arange(n_digits)]).astype(np.int64),
        digit_indices=digit_indices.astype(np.int64), digit_labels=digit_labels,
        noise_patterns=np.asarray(noise_ids, dtype=np.int64), labels=canvas_labels(digit_labels, positions[:, 0]))


class StampIndex:
    """Which stamps intersect a window: a uniform grid of ``cell`` × ``cell`` cells, stored sparsely.

    Each stamp is listed under every cell its square touches; pairs are sorted by cell key (row-major) and
    then by stamp number, so the stamps of a window come out in painting order.
    """

    def __init__(self, origins: np.ndarray, sides: np.ndarray, size: int, cell: int) -> None:
        self.cell, self.n_cols = int(cell), -(-int(size) // int(cell))
        first = origins // cell  # (K, 2) first cell row/col
        last = (origins + sides[:, None] - 1) // cell  # (K, 2)
        span = int((last - first).max(initial=0)) + 1
        keys, stamps = [], []
        for dr in range(span):
            for dc in range(span):
                ok = (first[:, 0] + dr <= last[:, 0]) & (first[:, 1] + dc <= last[:, 1])
                keys.append((first[ok, 0] + dr) * self.n_cols + first[ok, 1] + dc)
                stamps.append(np.flatnonzero(ok))
        keys, stamps = np.concatenate(keys), np.concatenate(stamps)
        order = np.lexsort((stamps, keys))
        self.keys, self.stamps = keys[order], stamps[order]  # (pairs,)
        self.occupied = np.unique(self.keys)

    def query(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Candidate stamp numbers (sorted, unique) of cells touching the window."""
        c0, c1 = left // self.cell, (left + width - 1) // self.cell
        found = []
        for row in range(top // self.cell, (top + height - 1) // self.cell + 1):
            lo, hi = np.searchsorted(self.keys, [row * self.n_cols + c0, row * self.n_cols + c1 + 1])
            found.append(self.stamps[lo:hi])
        return np.unique(np.concatenate(found))

    def any_occupied(self, tops: np.ndarray, lefts: np.ndarray, side: int) -> np.ndarray:
        """bool (k,): whether any cell touched by each side × side window holds a stamp."""
        r0, c0 = tops // self.cell, lefts // self.cell
        r1, c1 = (tops + side - 1) // self.cell, (lefts + side - 1) // self.cell
        hit = np.zeros(len(tops), dtype=bool)
        if not len(self.occupied):
            return hit
        for dr in range(int((r1 - r0).max(initial=0)) + 1):
            for dc in range(int((c1 - c0).max(initial=0)) + 1):
                key = (r0 + dr) * self.n_cols + c0 + dc
                pos = np.minimum(np.searchsorted(self.occupied, key), len(self.occupied) - 1)
                hit |= (r0 + dr <= r1) & (c0 + dc <= c1) & (self.occupied[pos] == key)
        return hit


class MegapixelPatchSource(WindowSource):
    """A :class:`~ipslib.sources.PatchSource` over megapixel-MNIST canvases rendered patch by patch.

    ``take`` returns float32 patches bit-identical to ``to_float(patchify(ds[i].image))`` at the same
    indices. Patches that no stamp touches are reported blank (:meth:`blank_mask`) and filled with zeros
    without rendering.

    Args:
        dataset: the split the canvases come from.
        indices: the B canvas indices of the batch.
        patch_size: p; stride: s (default p).
    """

    def __init__(self, dataset: MegapixelMNIST, indices: list[int], patch_size: int,
                 stride: int | None = None) -> None:
        layouts = [describe_canvas(dataset, i) for i in indices]
        self._init(layouts, patch_size, stride)

    @classmethod
    def from_layouts(cls, layouts: list[CanvasLayout], patch_size: int,
                     stride: int | None = None) -> "MegapixelPatchSource":
        source = cls.__new__(cls)
        source._init(layouts, patch_size, stride)
        return source

    def _init(self, layouts: list[CanvasLayout], patch_size: int, stride: int | None) -> None:
        if not layouts or len({layout.size for layout in layouts}) != 1:
            raise ValueError("need at least one canvas, all of the same size")
        size = layouts[0].size
        super().__init__(height=size, width=size, channels=1, dtype=np.uint8, batch_size=len(layouts),
                         patch_size=patch_size, stride=stride)
        self.layouts = layouts
        cell = max(patch_size, max(int(layout.sides.max(initial=1)) for layout in layouts))
        self.indexes = [StampIndex(layout.origins, layout.sides, size, cell) for layout in layouts]

    def blank_mask(self, image: int, indices: np.ndarray) -> np.ndarray:
        tops, lefts = self.origins(indices)
        return ~self.indexes[image].any_occupied(tops, lefts, self.patch_size)

    def read_window(self, image: int, top: int, left: int, height: int, width: int) -> np.ndarray:
        layout = self.layouts[image]
        out = np.zeros((1, height, width), dtype=np.uint8)
        for k in self.indexes[image].query(top, left, height, width).tolist():
            (row, col), side = layout.origins[k], int(layout.sides[k])
            r0, r1 = max(row, top), min(row + side, top + height)
            c0, c1 = max(col, left), min(col + side, left + width)
            if r0 < r1 and c0 < c1:
                out[0, r0 - top:r1 - top, c0 - left:c1 - left] = layout.sprite(k)[r0 - row:r1 - row, c0 - col:c1 - col]
        return out
