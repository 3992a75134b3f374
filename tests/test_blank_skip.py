"""Blank patches known from the layout: items carry only the touched patches, selection skips the known-blank
ones, and everything (selected indices, scores, losses, parameter updates, training history) is bit-identical
to the whole-image path on real megapixel-MNIST canvases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ipslib.data as data
from ipslib.config import RunConfig
from ipslib.data import build_dataset
from ipslib.data.layout_items import LayoutPatchBatch, LayoutPatches, MegapixelMNISTPatches, touched_patches
from ipslib.data.megapixel_mnist import MegapixelMNIST, to_float
from ipslib.data.mnist_patches import MegapixelPatchSource
from ipslib.engine import records
from ipslib.engine import training as engine
from ipslib.model.ips import IPSNet
from ipslib.model.patches import patchify
from ipslib.model.selection import encode_unique
from ipslib.model.sources import BlankAwareSource, DensePatches, known_blank

BASE = dict(
    canvas_size=400,
    digit_size=28,
    n_noise=12,
    noise_type="bezier",
    n_train=8,
    n_test=4,
    digit_source="sample",
    patch_size=40,
    memory_size=8,
    iter_size=12,
    n_res_blocks=1,
    n_heads=4,
    head_dim=8,
    mlp_dim=32,
    batch_size=4,
    epochs=2,
    warmup_epochs=1,
    device="cpu",
    threads=1,
)


def config(**changes) -> RunConfig:
    return RunConfig.from_flat({**BASE, **changes})


def _dense(ds: MegapixelMNIST, indices: list[int], p: int, s: int | None = None) -> torch.Tensor:
    images = np.stack([ds[i].image for i in indices])[:, None]  # (B, 1, H, W)
    return patchify(to_float(images), p, s)  # (B, N, 1, p, p)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    canvas=st.integers(140, 320),
    n_noise=st.integers(0, 40),
    noise_type=st.sampled_from(["bezier", "lines"]),
    index=st.integers(0, 9),
    patch=st.integers(8, 60),
    stride_gap=st.integers(-5, 6),
)
def test_layout_items_equal_cut_patches(canvas, n_noise, noise_type, index, patch, stride_gap):
    ds = MegapixelMNIST(
        dict(
            canvas_size=canvas, digit_size=28, n_noise=n_noise, noise_type=noise_type, n_train=10, digit_source="sample"
        )
    )
    stride = max(1, patch + stride_gap)
    dense = _dense(ds, [index], patch, stride)[0]  # (N, 1, p, p)
    touched = touched_patches(ds.layout(index), patch, stride)
    assert touched.shape == (dense.shape[0],)
    assert not dense[torch.from_numpy(~touched)].any()  # untouched patches are blank
    item = LayoutPatches.from_layout(ds.layout(index), patch, stride)
    batch = LayoutPatchBatch([item])
    everything = torch.arange(dense.shape[0]).unsqueeze(0)
    assert torch.equal(batch.take(everything)[0], dense)  # bit for bit, zeros where blank
    assert torch.equal(batch.known_blank(everything)[0], torch.from_numpy(~touched))


def test_touched_is_exact_for_a_stamp_on_patch_borders():
    ds = MegapixelMNIST(dict(canvas_size=200, digit_size=28, n_noise=0, n_train=2, digit_source="sample"))
    layout = ds.layout(0)
    grid = touched_patches(layout, 50).reshape(4, 4)
    expected = np.zeros((4, 4), dtype=bool)
    for (row, col), side in zip(layout.origins, layout.sides):
        expected[row // 50 : min((row + side - 1) // 50, 3) + 1, col // 50 : min((col + side - 1) // 50, 3) + 1] = True
    assert np.array_equal(grid, expected) and grid.sum() < 16


def test_batch_is_a_blank_aware_source_and_splits():
    ds = MegapixelMNIST(dict(canvas_size=300, n_noise=10, n_train=6, digit_source="sample"))
    batch = MegapixelMNISTPatches(ds, 50).collate([MegapixelMNISTPatches(ds, 50)[i] for i in range(3)])[0]
    assert isinstance(batch, BlankAwareSource) and not isinstance(
        DensePatches(torch.zeros(1, 2, 1, 3, 3)), BlankAwareSource
    )
    assert known_blank(DensePatches(torch.zeros(1, 2, 1, 3, 3)), torch.zeros(1, 2, dtype=torch.long)) is None
    idx = torch.tensor([[0, 5, 35], [1, 2, 3]])
    part = batch.sub_batch(1, 3)
    assert part.batch_size == 2 and torch.equal(part.take(idx), batch.take(torch.cat([idx[:1], idx]))[1:])
    with pytest.raises(ValueError, match="indices must be"):
        batch.take(idx)
    streamed = MegapixelPatchSource(ds, [0, 1, 2], 50)
    everything = torch.arange(36).expand(3, 36)
    assert isinstance(streamed, BlankAwareSource)
    assert torch.equal(streamed.known_blank(everything), batch.known_blank(everything))


def test_encode_unique_with_a_blank_mask_is_bit_identical():
    net = IPSNet.from_config(config()).eval()
    ds = MegapixelMNIST(config().data)
    flat = _dense(ds, [0, 1], 40).flatten(0, 1)  # (2N, 1, p, p)
    blank = ~flat.flatten(1).ne(0).any(dim=1)
    assert blank.sum() > 10 and (~blank).sum() > 10
    some = blank & (torch.arange(len(blank)) % 3 == 0)  # a source may know only some blank patches
    with torch.no_grad():
        plain = encode_unique(net.encoder, flat)
        for mask in (blank, some, torch.zeros_like(blank)):
            assert torch.equal(encode_unique(net.encoder, flat, mask), plain)


def _step(cfg: RunConfig, batch, targets, seed: int = 3):
    torch.manual_seed(0)
    net = IPSNet.from_config(cfg).train()
    optimizer = engine.build_optimizer(net, cfg)
    ctx = engine.Context(cfg, torch.device("cpu"))
    torch.manual_seed(seed)
    selection = engine.select_batch(net, batch, ctx)
    losses, _ = engine.gradient_step(net, optimizer, selection, targets, ctx, lr=1e-3)
    return selection, losses, net.state_dict()


@pytest.mark.parametrize(
    "changes",
    [{}, {"dedup_blank": False}, {"sub_batch_size": 1, "shuffle_style": "instance"}, {"memory_size": 200}],
)
def test_a_training_step_is_bit_identical_to_the_image_path(changes):
    cfg = config(**changes)
    images, targets = torch.utils.data.default_collate([build_dataset(cfg, "train")[i] for i in range(4)])
    view = build_dataset(cfg, "train", patches=True)
    assert isinstance(view, MegapixelMNISTPatches)
    batch, again = view.collate([view[i] for i in range(4)])
    assert all(torch.equal(targets[k], again[k]) for k in targets)
    assert int(batch.known_blank(torch.arange(cfg.n_patches).expand(4, -1)).sum()) > 100
    dense_sel, dense_losses, dense_state = _step(cfg, images, targets)
    layout_sel, layout_losses, layout_state = _step(cfg, batch, targets)
    assert torch.equal(dense_sel.indices, layout_sel.indices) and torch.equal(dense_sel.scores, layout_sel.scores)
    assert torch.equal(dense_sel.patches, layout_sel.patches)
    assert all(torch.equal(dense_losses[k], layout_losses[k]) for k in dense_losses)
    assert all(torch.equal(dense_state[k], layout_state[k]) for k in dense_state)


def test_image_view_stays_for_the_downsampled_control():
    cfg = config(architecture="downsampled", downsample_size=64)
    image, _ = build_dataset(cfg, "train", patches=True)[0]
    assert isinstance(image, torch.Tensor) and image.shape == (1, 400, 400)


def test_training_runs_on_layout_items_and_matches_the_image_view(tmp_path, monkeypatch):
    cfg = config(n_train=8, n_test=4)
    engine.train(cfg, tmp_path / "layout", progress=False)
    real = data.build_dataset
    monkeypatch.setattr(data, "build_dataset", lambda cfg, split, patches=False: real(cfg, split))
    engine.train(cfg, tmp_path / "image", progress=False)
    drop = ["epoch_seconds", "ms_per_batch", "peak_memory_mb"]
    layout = records.read_history(tmp_path / "layout").drop(columns=drop)
    image = records.read_history(tmp_path / "image").drop(columns=drop)
    assert layout.equals(image)
