"""Streaming patch sources: rendered / read patches equal patches cut from the whole image, selection on a
stream equals selection on the dense tensor, disk sources read only what they are asked for, and the
foreground filter leaves selection unchanged at "exactly blank"."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipslib.config import RunConfig
from ipslib.data.display import max_downsample
from ipslib.data.megapixel_mnist import MegapixelMNIST, to_float
from ipslib.data.mnist_patches import MegapixelPatchSource
from ipslib.model.ips import IPSNet
from ipslib.model.patches import patchify
from ipslib.streaming.disk import ArrayPatchSource, TiffPatchSource, array_layout, open_image_source
from ipslib.streaming.windows import BlankSkippingEncoder, pixels_to_float, skip_blank_patches


def _dataset(**kw) -> MegapixelMNIST:
    base = dict(canvas_size=300, digit_size=28, n_noise=30, n_train=20, n_test=5, digit_source="sample")
    return MegapixelMNIST({**base, **kw}, "train")


def _dense(ds: MegapixelMNIST, indices: list[int], p: int, s: int) -> torch.Tensor:
    images = np.stack([ds[i].image for i in indices])[:, None]  # (B, 1, H, W)
    return to_float(patchify(torch.from_numpy(images), p, s).numpy())  # (B, N, 1, p, p)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    canvas=st.integers(140, 320),
    digit=st.sampled_from([14, 28]),
    noise=st.sampled_from([None, 9, 40]),
    n_noise=st.integers(0, 60),
    noise_type=st.sampled_from(["bezier", "lines"]),
    index=st.integers(0, 19),
    patch=st.integers(8, 60),
    stride_gap=st.integers(-4, 6),
    seed=st.integers(0, 3),
)
def test_streamed_patches_equal_cut_patches(canvas, digit, noise, n_noise, noise_type, index, patch, stride_gap, seed):
    ds = _dataset(
        canvas_size=canvas, digit_size=digit, noise_size=noise, n_noise=n_noise, noise_type=noise_type, data_seed=seed
    )
    stride = max(1, patch + stride_gap)
    source = MegapixelPatchSource(ds, [index], patch, stride)
    dense = _dense(ds, [index], patch, stride)
    order = torch.randperm(source.n_patches, generator=torch.Generator().manual_seed(seed))[None]
    assert torch.equal(source.take(order), dense[:, order[0]])


@pytest.mark.parametrize("noise_type", ["bezier", "lines"])
def test_description_matches_painted_canvas(noise_type):
    ds = _dataset(noise_type=noise_type, noise_size=35)
    for i in range(4):
        canvas, layout = ds[i], ds.layout(i)
        assert np.array_equal(layout.digit_boxes, canvas.digit_boxes)
        assert np.array_equal(layout.noise_boxes, canvas.noise_boxes)
        assert np.array_equal(layout.noise_patterns, canvas.noise_patterns)
        assert np.array_equal(layout.digit_indices, canvas.digit_indices)
        assert layout.labels["majority"] == canvas.labels["majority"]
        assert np.array_equal(layout.render(), canvas.image)
    with pytest.raises(IndexError, match="out of range"):
        ds.layout(len(ds))


def test_blank_mask_is_sufficient_and_thumbnail_is_max_pooled():
    ds = _dataset(canvas_size=600, n_noise=20)
    source = MegapixelPatchSource(ds, [3], 50)
    dense = _dense(ds, [3], 50, 50)[0]
    blank = source.blank_mask(0, np.arange(source.n_patches))
    assert blank.sum() > source.n_patches // 2
    assert (dense[torch.from_numpy(blank)] == 0).all()
    expected = max_downsample(ds[3].image, 10).astype(np.float32) / np.float32(255)
    assert np.array_equal(source.thumbnail(0, max_side=60), expected)


def _tiny_net(canvas: int, **kw) -> tuple[IPSNet, RunConfig]:
    cfg = RunConfig.from_flat(
        dict(
            canvas_size=canvas,
            patch_size=50,
            memory_size=4,
            iter_size=6,
            n_res_blocks=1,
            n_heads=2,
            head_dim=8,
            mlp_dim=16,
            digit_source="sample",
            **kw,
        )
    )
    torch.manual_seed(0)
    return IPSNet.from_config(cfg).eval(), cfg


@pytest.mark.parametrize("shuffle_style", ["batch", "instance"])
def test_selection_on_stream_equals_dense(shuffle_style):
    ds = _dataset()
    net, _ = _tiny_net(300, shuffle_style=shuffle_style)
    source = MegapixelPatchSource(ds, [0, 5], 50)
    torch.manual_seed(7)
    streamed = net.select(source)
    torch.manual_seed(7)
    dense = net.select(_dense(ds, [0, 5], 50, 50))
    assert torch.equal(streamed.indices, dense.indices)
    assert torch.equal(streamed.scores, dense.scores)
    assert torch.equal(streamed.patches, dense.patches)


def test_foreground_filter_exactly_blank_keeps_selection():
    ds = _dataset(canvas_size=500, n_noise=15)
    net, _ = _tiny_net(500, dedup_blank=False)
    source = MegapixelPatchSource(ds, [1, 2], 50)
    torch.manual_seed(3)
    plain = net.select(source)
    torch.manual_seed(3)
    with torch.no_grad(), skip_blank_patches(net) as wrapper:
        filtered = net.select(source)
        logits = net(filtered)
    assert wrapper.skipped > 100 and isinstance(net.encoder, torch.nn.Module)
    assert not isinstance(net.encoder, BlankSkippingEncoder)  # restored
    assert torch.equal(plain.indices, filtered.indices)
    torch.testing.assert_close(plain.scores, filtered.scores, rtol=0, atol=1e-6)
    torch.testing.assert_close(logits["majority"], net(plain)["majority"], rtol=0, atol=1e-5)


def test_foreground_threshold_skips_nearly_blank_patches_only_in_eval():
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    wrapper = BlankSkippingEncoder(encoder, min_foreground=0.1).eval()
    x = torch.zeros(3, 1, 4, 4)
    x[1, 0, 0, 0] = 1.0  # 1/16 of the pixels: background at 10 %
    x[2, 0, :2, :2] = 1.0  # 4/16: foreground
    with torch.no_grad():
        out = wrapper(x)
    assert torch.equal(out[1], out[0]) and not torch.equal(out[2], out[0]) and wrapper.skipped == 2
    with torch.no_grad():
        torch.testing.assert_close(out[2], encoder(x[2:3])[0])
    wrapper.train()
    assert torch.equal(wrapper(x), encoder(x))
    with pytest.raises(ValueError, match="min_foreground"):
        BlankSkippingEncoder(encoder, min_foreground=1.0)


class _Recorder:
    """An array-like that records the windows sliced from it."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, []

    def __getitem__(self, key):
        self.reads.append(key)
        return self.array[key]


def test_array_source_reads_only_requested_windows(tmp_path):
    image = (np.random.default_rng(0).random((230, 170)) * 255).astype(np.uint8)
    recorder = _Recorder(image)
    source = ArrayPatchSource([recorder], 40, 30)
    wanted = torch.tensor([[0, 7, 11]])
    out = source.take(wanted)
    assert torch.equal(out, to_float(patchify(torch.from_numpy(image[None]), 40, 30).numpy())[wanted[0]][None])
    tops, lefts = source.origins(wanted[0].numpy())
    assert recorder.reads == [(slice(t, t + 40), slice(left, left + 40)) for t, left in zip(tops, lefts)]
    np.save(tmp_path / "x.npy", image)
    mapped = open_image_source(tmp_path / "x.npy", 40, 30)
    assert isinstance(mapped.arrays[0], np.memmap) and torch.equal(mapped.take(wanted), out)


@pytest.mark.parametrize(
    "layout", [dict(tile=(32, 48)), dict(tile=(16, 16), compression="zlib"), dict(rowsperstrip=10)]
)
def test_tiff_source_decodes_only_touched_segments(tmp_path, layout):
    image = (np.random.default_rng(1).random((200, 190, 3)) * 255).astype(np.uint8)
    path = tmp_path / "x.tif"
    tifffile.imwrite(path, image, **layout)
    source = TiffPatchSource([path], 30, 25, cache_mb=64)
    wanted = torch.tensor([[0, 9, 30]])
    dense = to_float(patchify(torch.from_numpy(np.moveaxis(image, -1, 0)), 30, 25).numpy())
    assert torch.equal(source.take(wanted), dense[wanted[0]][None])
    sh, sw = source.segment_shape
    touched = {
        (y, x)
        for t, left in zip(*source.origins(wanted[0].numpy()))
        for y in range(t // sh, (t + 29) // sh + 1)
        for x in range(left // sw, (left + 29) // sw + 1)
    }
    assert source.segments_read == len(touched) < (-(-200 // sh)) * (-(-190 // sw))
    source.take(wanted)
    assert source.segments_read == len(touched)  # served from the cache
    source.close()


def test_pixel_conversion_and_layouts():
    assert torch.equal(pixels_to_float(np.array([0, 255], np.uint8)), torch.tensor([0.0, 1.0]))
    assert torch.equal(pixels_to_float(np.array([65535], np.uint16)), torch.tensor([1.0]))
    with pytest.raises(TypeError, match="int64"):
        pixels_to_float(np.array([1], np.int64))
    assert [array_layout(s) for s in [(5, 6), (5, 6, 3), (3, 5, 6)]] == ["HW", "HWC", "CHW"]
    with pytest.raises(ValueError, match="not"):
        array_layout((5, 6, 7))
