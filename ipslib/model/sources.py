"""Where patches come from during selection: a dense tensor, or anything that can hand out patches by index.

:func:`IPSNet.select <ipslib.model.ips.IPSNet.select>` only ever asks a source for the chunk it is scoring and
for the M patches it keeps, so a source may cut patches lazily from an image that never exists whole as a
patch tensor (e.g. a sparse megapixel canvas, a tiled TIFF).

A source may also know, without producing them, which patches are blank (all zeros): a
:class:`BlankAwareSource` answers :meth:`~BlankAwareSource.known_blank`. Selection then neither converts nor
hashes those patches and gives them the one embedding of the zero patch (:func:`known_blank`, used by
:func:`ipslib.model.selection.encode_unique`). Generated data knows this from its layout
(:mod:`ipslib.data.mnist_patches`); the model never asks how.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["PatchSource", "BlankAwareSource", "DensePatches", "as_source", "known_blank", "sub_batch"]


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


@runtime_checkable
class BlankAwareSource(PatchSource, Protocol):
    """A :class:`PatchSource` that knows which patches are blank without producing them."""

    def known_blank(self, indices: Tensor) -> Tensor:
        """Which patches are certainly blank.

        Args:
            indices: (B, k) long, row-major patch indices per image.
        Returns:
            (B, k) bool on the CPU: True only where the patch is all zeros (``take`` returns zeros there);
            False means unknown (the patch may still be all zeros).
        """
        ...


def known_blank(source: PatchSource, indices: Tensor) -> Tensor | None:
    """``source.known_blank(indices)`` (B, k) bool for a :class:`BlankAwareSource`, else None (not known)."""
    if not isinstance(source, BlankAwareSource):
        return None
    blank = source.known_blank(indices)
    if blank.shape != indices.shape or blank.dtype != torch.bool:
        raise ValueError(
            f"known_blank must return (B, k) bool like the indices; got {blank.dtype} {tuple(blank.shape)}"
        )
    return blank


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


def sub_batch(patches: Tensor | PatchSource, start: int, stop: int) -> Tensor | PatchSource:
    """Images ``start:stop`` of a patch tensor or a source (a source that is cut must have ``sub_batch``)."""
    if isinstance(patches, Tensor):
        return patches[start:stop]
    if start == 0 and stop >= patches.batch_size:
        return patches
    if not hasattr(patches, "sub_batch"):
        raise TypeError(f"{type(patches).__name__} cannot be split into sub-batches (it has no sub_batch method)")
    return patches.sub_batch(start, stop)
