"""Megapixel-MNIST patches rendered straight from a canvas's sparse description, never the whole canvas.

A canvas is a list of *stamps* in painting order (noise placements in order, then the five digits), each a
small square of pixels assigned over the canvas (a later stamp erases what is under its whole square,
zeros included), exactly as :class:`~ipslib.data.megapixel_mnist.MegapixelMNIST` paints. A patch is the
canvas window under it, so painting only the stamps that intersect the window, in the same order, gives
the same bytes as cutting the painted canvas. A sparse uniform grid of cells (only occupied cells stored,
looked up with ``searchsorted``) finds those stamps; its size grows with the number of stamps, not with the
canvas area, so a 48,000² canvas (2.3 gigapixels) costs a few megabytes.

The description is :meth:`MegapixelMNIST.layout` (a :class:`~ipslib.data.megapixel_mnist.CanvasLayout`),
the same random draws ``ds[i]`` paints, so a streamed patch matches ``ds[i]`` byte for byte.
"""

from __future__ import annotations

import numpy as np
import torch

from ipslib.data.megapixel_mnist import CanvasLayout, MegapixelMNIST
from ipslib.streaming.windows import WindowSource

__all__ = ["StampIndex", "MegapixelPatchSource"]


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
    """A :class:`~ipslib.model.sources.PatchSource` over megapixel-MNIST canvases rendered patch by patch.

    ``take`` returns float32 patches bit-identical to ``to_float(patchify(ds[i].image))`` at the same
    indices. Patches that no stamp touches are reported blank (:meth:`blank_mask`, :meth:`known_blank`) and
    filled with zeros without rendering.

    Args:
        dataset: the split the canvases come from.
        indices: the B canvas indices of the batch.
        patch_size: p; stride: s (default p).
    """

    def __init__(self, dataset: MegapixelMNIST, indices: list[int], patch_size: int, stride: int | None = None) -> None:
        layouts = [dataset.layout(i) for i in indices]
        self._init(layouts, patch_size, stride)

    @classmethod
    def from_layouts(
        cls, layouts: list[CanvasLayout], patch_size: int, stride: int | None = None
    ) -> MegapixelPatchSource:
        source = cls.__new__(cls)
        source._init(layouts, patch_size, stride)
        return source

    def _init(self, layouts: list[CanvasLayout], patch_size: int, stride: int | None) -> None:
        if not layouts or len({layout.size for layout in layouts}) != 1:
            raise ValueError("need at least one canvas, all of the same size")
        size = layouts[0].size
        super().__init__(
            height=size,
            width=size,
            channels=1,
            dtype=np.uint8,
            batch_size=len(layouts),
            patch_size=patch_size,
            stride=stride,
        )
        self.layouts = layouts
        cell = max(patch_size, max(int(layout.sides.max(initial=1)) for layout in layouts))
        self.indexes = [StampIndex(layout.origins, layout.sides, size, cell) for layout in layouts]

    def blank_mask(self, image: int, indices: np.ndarray) -> np.ndarray:
        tops, lefts = self.origins(indices)
        return ~self.indexes[image].any_occupied(tops, lefts, self.patch_size)

    def known_blank(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, k) bool: :meth:`blank_mask` per image, which makes this a
        :class:`~ipslib.model.sources.BlankAwareSource` (selection skips those patches)."""
        idx = indices.detach().cpu().numpy()
        return torch.from_numpy(np.stack([self.blank_mask(b, idx[b]) for b in range(self.batch_size)]))

    def read_window(self, image: int, top: int, left: int, height: int, width: int) -> np.ndarray:
        layout = self.layouts[image]
        out = np.zeros((1, height, width), dtype=np.uint8)
        for k in self.indexes[image].query(top, left, height, width).tolist():
            (row, col), side = layout.origins[k], int(layout.sides[k])
            r0, r1 = max(row, top), min(row + side, top + height)
            c0, c1 = max(col, left), min(col + side, left + width)
            if r0 < r1 and c0 < c1:
                out[0, r0 - top : r1 - top, c0 - left : c1 - left] = layout.sprite(k)[
                    r0 - row : r1 - row, c0 - col : c1 - col
                ]
        return out
