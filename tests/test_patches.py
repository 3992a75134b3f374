"""patchify / unpatchify: row-major order, dropped remainder, overlapping strides, round trip (spec §1.1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ipslib.model.patches import covered_shape, grid_shape, patch_origin, patchify, unpatchify


@st.composite
def images(draw):
    patch = draw(st.integers(1, 7))
    stride = draw(st.integers(1, patch))
    channels = draw(st.integers(1, 3))
    height, width = draw(st.integers(patch, patch + 15)), draw(st.integers(patch, patch + 15))
    seed = draw(st.integers(0, 2**31))
    x = torch.from_numpy(np.random.default_rng(seed).random((channels, height, width), dtype=np.float32))
    return x, patch, stride


@settings(max_examples=60, deadline=None)
@given(case=images())
def test_row_major_patches_and_round_trip(case):
    x, p, s = case
    rows, cols = grid_shape(x.shape[1], x.shape[2], p, s)
    assert (rows, cols) == ((x.shape[1] - p) // s + 1, (x.shape[2] - p) // s + 1)
    patches = patchify(x, p, s)
    assert patches.shape == (rows * cols, x.shape[0], p, p)
    for k in {0, cols - 1, rows * cols // 2, rows * cols - 1}:
        r, c = patch_origin(k, cols, s)
        assert torch.equal(patches[k], x[:, r : r + p, c : c + p])
    height, width = covered_shape(x.shape[1], x.shape[2], p, s)
    assert torch.equal(unpatchify(patches, (rows, cols), s), x[:, :height, :width])  # remainder dropped


def test_remainder_is_dropped_and_order_is_row_major():
    x = torch.arange(7 * 11, dtype=torch.float32).reshape(1, 7, 11)
    patches = patchify(x, 3)  # 2 x 3 grid, 1 row and 2 cols dropped
    assert patches.shape == (6, 1, 3, 3)
    assert [int(p[0, 0, 0]) for p in patches] == [0, 3, 6, 33, 36, 39]
    assert torch.equal(unpatchify(patches, (2, 3)), x[:, :6, :9])


def test_overlapping_stride_counts_and_average():
    x = torch.rand(2, 10, 10)
    patches = patchify(x, 4, 2)  # (10 - 4) // 2 + 1 = 4 per side
    assert patches.shape == (16, 2, 4, 4)
    assert torch.equal(patches[5], x[:, 2:6, 2:6])
    assert torch.allclose(unpatchify(patches, (4, 4), 2), x)


def test_batched_2d_and_numpy_inputs():
    x = np.random.default_rng(0).integers(0, 255, size=(3, 1, 20, 30), dtype=np.uint8)
    batched = patchify(x, 10)
    assert batched.shape == (3, 6, 1, 10, 10) and batched.dtype == torch.uint8
    assert torch.equal(batched[1], patchify(x[1], 10))
    assert torch.equal(patchify(x[1, 0], 10), patchify(x[1], 10))
    assert torch.equal(unpatchify(batched, (2, 3)), torch.from_numpy(x))


def test_errors():
    with pytest.raises(ValueError, match="larger"):
        patchify(torch.zeros(1, 5, 5), 6)
    with pytest.raises(ValueError):
        patchify(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="grid"):
        unpatchify(torch.zeros(5, 1, 2, 2), (2, 3))
