"""Cutting images into a grid of patches and putting them back: the project's one patchify/unpatchify pair.

Patches are laid out in row-major grid order (row by row, left to right), as in the original IPS code.
Remainder pixels at the bottom and right that do not fill a whole patch are dropped, so
``unpatchify(patchify(x))`` returns the image cropped to ``covered_shape``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["grid_shape", "covered_shape", "patchify", "unpatchify", "patch_origin"]


def grid_shape(height: int, width: int, patch_size: int, stride: int | None = None) -> tuple[int, int]:
    """Rows and columns of the patch grid: floor((H - p) / s) + 1 by floor((W - p) / s) + 1."""
    stride = patch_size if stride is None else stride
    if patch_size < 1 or stride < 1:
        raise ValueError(f"patch_size and stride must be >= 1, got {patch_size} and {stride}")
    if patch_size > min(height, width):
        raise ValueError(f"patch_size={patch_size} is larger than the image ({height}x{width})")
    return (height - patch_size) // stride + 1, (width - patch_size) // stride + 1


def covered_shape(height: int, width: int, patch_size: int, stride: int | None = None) -> tuple[int, int]:
    """Height and width of the image region that the patch grid covers."""
    stride = patch_size if stride is None else stride
    rows, cols = grid_shape(height, width, patch_size, stride)
    return (rows - 1) * stride + patch_size, (cols - 1) * stride + patch_size


def patch_origin(index: int | np.ndarray, cols: int, stride: int) -> tuple:
    """Pixel (row, col) of the top-left corner of patch ``index`` in a grid with ``cols`` columns."""
    return (index // cols) * stride, (index % cols) * stride


def patchify(image: Tensor | np.ndarray, patch_size: int, stride: int | None = None) -> Tensor:
    """Cut an image into patches.

    Args:
        image: (C, H, W) or (H, W), or a batch (B, C, H, W); a numpy array is converted without copying.
        patch_size: p, the side of a square patch.
        stride: s, the step between patches (default p: no overlap).
    Returns:
        (N, C, p, p) for one image or (B, N, C, p, p) for a batch, N = rows * cols in row-major order.
        The result is a view of ``image`` where possible (no copy for non-overlapping patches is not
        guaranteed; call ``.contiguous()`` when a copy is wanted).
    """
    stride = patch_size if stride is None else stride
    x = torch.as_tensor(image)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() not in (3, 4):
        raise ValueError(f"image must be (H, W), (C, H, W) or (B, C, H, W); got shape {tuple(x.shape)}")
    grid_shape(x.shape[-2], x.shape[-1], patch_size, stride)
    batched = x.dim() == 4
    if not batched:
        x = x.unsqueeze(0)
    b, c = x.shape[:2]
    x = x.unfold(2, patch_size, stride).unfold(3, patch_size, stride)  # (B, C, rows, cols, p, p)
    x = x.permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c, patch_size, patch_size)  # (B, N, C, p, p)
    return x if batched else x[0]


def unpatchify(patches: Tensor, grid: tuple[int, int], stride: int | None = None) -> Tensor:
    """Inverse of :func:`patchify` for its covered region.

    Args:
        patches: (N, C, p, p) or (B, N, C, p, p) in row-major grid order.
        grid: (rows, cols) with rows * cols = N.
        stride: the stride used to cut them (default p). Overlapping pixels are averaged.
    Returns:
        (C, H', W') or (B, C, H', W') with (H', W') = ``covered_shape``.
    """
    batched = patches.dim() == 5
    x = patches if batched else patches.unsqueeze(0)
    b, n, c, p, _ = x.shape
    rows, cols = grid
    if rows * cols != n:
        raise ValueError(f"grid {grid} holds {rows * cols} patches, got {n}")
    stride = p if stride is None else stride
    height, width = (rows - 1) * stride + p, (cols - 1) * stride + p
    if stride == p:
        out = x.reshape(b, rows, cols, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, height, width)
    else:
        cols_view = x.reshape(b, n, c * p * p).transpose(1, 2).to(torch.float64)
        out = torch.nn.functional.fold(cols_view, (height, width), p, stride=stride)
        count = torch.nn.functional.fold(
            torch.ones_like(cols_view[:1, :1].expand(1, c * p * p, n)), (height, width), p, stride=stride
        )
        out = (out / count).to(patches.dtype)
    return out if batched else out[0]
