"""Training items of megapixel MNIST as the canvas's non-blank patches, cut with the layout's help.

The layout of a canvas (:class:`~ipslib.data.mnist_canvas.CanvasLayout`) says which patches no stamp
touches: those are blank (all zeros) and need not be cut, converted, hashed or encoded. An item
(:class:`LayoutPatches`) therefore carries only the touched patches, as uint8, and a batch of items
(:class:`LayoutPatchBatch`) is a :class:`~ipslib.model.sources.BlankAwareSource`: ``take`` returns float32
patches bit-identical to ``to_float(patchify(ds[i].image))`` at the same indices (zeros where blank) and
``known_blank`` tells selection which ones it need not look at. Memory per item is that of its touched
patches (a few MB at 3000²) instead of a float32 canvas (36 MB at 3000²).

:meth:`MegapixelMNIST.patch_view <ipslib.data.megapixel_mnist.MegapixelMNIST.patch_view>` is the torch
``Dataset`` of such items; its ``collate`` builds the batch (pass it as the ``DataLoader``'s ``collate_fn``).

Legend: B items, N patches per canvas, k touched patches, C channels, p patch side, s stride.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from ipslib.data.mnist_canvas import CanvasLayout, torch_targets
from ipslib.model.patches import grid_shape
from ipslib.streaming.windows import pixels_to_float

__all__ = ["touched_patches", "LayoutPatches", "LayoutPatchBatch", "MegapixelMNISTPatches", "collate_layout_items"]


def _span(start: np.ndarray, side: np.ndarray, p: int, s: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last patch (along one axis) whose window [j·s, j·s + p) meets [start, start + side)."""
    first = np.maximum(-((p - 1 - start) // s), 0)  # ceil((start - p + 1) / s), at least 0
    last = np.minimum((start + side - 1) // s, count - 1)
    return first, last


def touched_patches(layout: CanvasLayout, patch_size: int, stride: int | None = None) -> np.ndarray:
    """bool (N,): True where some stamp's square meets the patch (row-major grid); False means blank."""
    s = patch_size if stride is None else stride
    rows, cols = grid_shape(layout.size, layout.size, patch_size, s)
    grid = np.zeros((rows, cols), dtype=bool)
    r0, r1 = _span(layout.origins[:, 0], layout.sides, patch_size, s, rows)
    c0, c1 = _span(layout.origins[:, 1], layout.sides, patch_size, s, cols)
    for dr in range(int((r1 - r0).max(initial=-1)) + 1):
        for dc in range(int((c1 - c0).max(initial=-1)) + 1):
            ok = (r0 + dr <= r1) & (c0 + dc <= c1)
            grid[r0[ok] + dr, c0[ok] + dc] = True
    return grid.ravel()


@dataclass(frozen=True)
class LayoutPatches:
    """One canvas as its touched patches.

    Attributes:
        n_patches: N of the canvas's patch grid.
        indices: (k,) int64 ascending, the touched patches (every other patch is blank).
        pixels: (k, C, p, p) uint8, their pixels.
    """

    n_patches: int
    indices: Tensor
    pixels: Tensor

    @classmethod
    def from_layout(cls, layout: CanvasLayout, patch_size: int, stride: int | None = None) -> LayoutPatches:
        """Paint the canvas (uint8) and keep its touched patches: bit-identical to cutting ``ds[i].image``."""
        s = patch_size if stride is None else stride
        rows, cols = grid_shape(layout.size, layout.size, patch_size, s)
        touched = touched_patches(layout, patch_size, s)
        indices = np.flatnonzero(touched)
        canvas = layout.render()  # (H, W) uint8
        step, item = canvas.strides
        windows = np.lib.stride_tricks.as_strided(
            canvas,
            shape=(rows, cols, patch_size, patch_size),
            strides=(s * step, s * item, step, item),
            writeable=False,
        )  # (rows, cols, p, p) view, the patch grid of patchify
        pixels = windows[indices // cols, indices % cols][:, None]  # (k, 1, p, p) copy
        return cls(len(touched), torch.from_numpy(indices), torch.from_numpy(pixels))


class LayoutPatchBatch:
    """B :class:`LayoutPatches` as a :class:`~ipslib.model.sources.BlankAwareSource` (module docstring)."""

    def __init__(self, items: list[LayoutPatches]) -> None:
        if not items or len({item.n_patches for item in items}) != 1:
            raise ValueError("need at least one item, all with the same number of patches")
        if len({tuple(item.pixels.shape[1:]) for item in items}) != 1:
            raise ValueError("all items need patches of the same shape")
        self.items = list(items)
        self.n_patches, self.batch_size = items[0].n_patches, len(items)
        self.patch_shape = tuple(items[0].pixels.shape[1:])  # (C, p, p)
        self.pixels = torch.cat([item.pixels for item in items])  # (Σk, C, p, p) uint8
        self.slots = torch.full((self.batch_size, self.n_patches), -1, dtype=torch.int64)  # -1: blank
        offset = 0
        for b, item in enumerate(items):
            self.slots[b, item.indices] = torch.arange(offset, offset + len(item.indices))
            offset += len(item.indices)

    def __len__(self) -> int:
        return self.batch_size

    def _slots(self, indices: Tensor) -> Tensor:
        if indices.dim() != 2 or indices.shape[0] != self.batch_size:
            raise ValueError(f"indices must be (B={self.batch_size}, k); got {tuple(indices.shape)}")
        return self.slots.gather(1, indices.detach().cpu())  # (B, k)

    def known_blank(self, indices: Tensor) -> Tensor:
        """(B, k) bool: True where no stamp touches the patch (it is all zeros)."""
        return self._slots(indices) < 0

    def take(self, indices: Tensor) -> Tensor:
        """(B, k) patch indices -> (B, k, C, p, p) float32 on the CPU (x / 255; zeros where blank)."""
        slots = self._slots(indices)
        out = torch.zeros(*slots.shape, *self.patch_shape)
        touched = slots >= 0
        if bool(touched.any()):
            out[touched] = pixels_to_float(self.pixels[slots[touched]].numpy())
        return out

    def sub_batch(self, start: int, stop: int) -> LayoutPatchBatch:
        return LayoutPatchBatch(self.items[start:stop])


def collate_layout_items(batch: list[tuple[LayoutPatches, dict[str, Tensor]]]) -> tuple[LayoutPatchBatch, Any]:
    """``DataLoader`` collate for :class:`MegapixelMNISTPatches`: (LayoutPatchBatch, default-collated targets)."""
    return LayoutPatchBatch([item for item, _ in batch]), default_collate([targets for _, targets in batch])


class MegapixelMNISTPatches(Dataset):
    """Items ``(LayoutPatches, targets)`` of a :class:`~ipslib.data.megapixel_mnist.MegapixelMNIST` split, the
    targets as in :class:`~ipslib.data.megapixel_mnist.MegapixelMNISTTorch`; batch them with :attr:`collate`."""

    collate = staticmethod(collate_layout_items)

    def __init__(self, dataset: Any, patch_size: int, stride: int | None = None) -> None:
        self.dataset, self.patch_size, self.stride = dataset, int(patch_size), stride

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[LayoutPatches, dict[str, Tensor]]:
        layout = self.dataset.layout(index)
        return LayoutPatches.from_layout(layout, self.patch_size, self.stride), torch_targets(layout.labels)
