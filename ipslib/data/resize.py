"""Exact area resampling of small uint8 images (what OpenCV calls ``INTER_AREA``), without OpenCV.

Output pixel i covers the input interval [i·n/m, (i+1)·n/m) for an n → m resize; its value is the
area-weighted mean of the input pixels under it. Integer up-scaling is pixel replication and integer
down-scaling a plain block mean. The weights are integers (overlaps measured in units of 1/(n·m)), so the
result is computed exactly in integer arithmetic and rounded half up: the same bytes on every machine.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["area_weights", "area_resize"]


@lru_cache(maxsize=64)
def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """Integer overlap weights (n_out, n_in); every row sums to ``n_in``.

    Output pixel i spans [i·n_in, (i+1)·n_in) and input pixel j spans [j·n_out, (j+1)·n_out) on a common
    integer axis of length n_in·n_out.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be >= 1, got {n_in} -> {n_out}")
    i = np.arange(n_out)[:, None]
    j = np.arange(n_in)[None, :]
    low = np.maximum(i * n_in, j * n_out)
    high = np.minimum((i + 1) * n_in, (j + 1) * n_out)
    weights = np.clip(high - low, 0, None).astype(np.int64)
    weights.setflags(write=False)
    return weights


def area_resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize square uint8 images to ``size`` × ``size`` by exact area averaging.

    Args:
        images: uint8 (..., n, n).
        size: the output side m.
    Returns:
        uint8 (..., m, m); the input itself when m = n.
    """
    n = images.shape[-1]
    if images.shape[-2] != n:
        raise ValueError(f"expected square images, got shape {images.shape}")
    if size == n:
        return images
    if size % n == 0:
        factor = size // n
        return np.repeat(np.repeat(images, factor, axis=-2), factor, axis=-1)
    weights = area_weights(n, size)  # (m, n)
    total = weights @ images.astype(np.int64) @ weights.T  # (..., m, m), scaled by n²
    denominator = n * n
    return ((2 * total + denominator) // (2 * denominator)).astype(np.uint8)
