"""Where patches come from during selection: a dense tensor, or anything that can hand out patches by index.

:func:`IPSNet.select <ipslib.model.ips.IPSNet.select>` only ever asks a source for the chunk it is scoring and
for the M patches it keeps, so a source may cut patches lazily from an image that never exists whole as a
patch tensor (e.g. a sparse megapixel canvas, a tiled TIFF).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["PatchSource", "DensePatches", "as_source"]


@runtime_checkable
class PatchSource(Protocol):
    """A batch of B images with N patches each, read by index.

    Attributes:
        n_patches: N, patches per image (row-major grid order).
        batch_size: B, images in the batch.
    """

    n_patches: int
    batch_size: int

    def take(self, indices: Tensor) -> Tensor:
        """Patches by index.

        Args:
            indices: (B, k) long, row-major patch indices per image (any device).
        Returns:
            (B, k, C, p, p) patches on any device (the caller moves them to the model's).
        """
        ...


class DensePatches:
    """A :class:`PatchSource` over a patch tensor (B, N, C, p, p); ``take`` copies only the requested patches."""

    def __init__(self, patches: Tensor) -> None:
        if not isinstance(patches, Tensor) or patches.dim() != 5:
            shape = tuple(patches.shape) if isinstance(patches, Tensor) else type(patches).__name__
            raise ValueError(f"patches must be a tensor of shape (B, N, C, p, p); got {shape}")
        self.patches = patches

    @property
    def n_patches(self) -> int:
        return self.patches.shape[1]

    @property
    def batch_size(self) -> int:
        return self.patches.shape[0]

    def take(self, indices: Tensor) -> Tensor:
        """(B, k) indices -> (B, k, C, p, p) patches, on the patch tensor's device."""
        indices = indices.to(self.patches.device)
        rows = torch.arange(self.batch_size, device=indices.device).unsqueeze(1)  # (B, 1)
        return self.patches[rows, indices]  # (B, k, C, p, p)


def as_source(patches: Tensor | PatchSource) -> PatchSource:
    """Wrap a dense tensor in :class:`DensePatches`; pass a :class:`PatchSource` through."""
    if isinstance(patches, Tensor):
        return DensePatches(patches)
    if isinstance(patches, PatchSource):
        return patches
    raise TypeError(f"expected a (B, N, C, p, p) tensor or a PatchSource; got {type(patches).__name__}")
