"""Megapixel MNIST generator: determinism, labels, geometry, noise recipes and the torch view (spec §8)."""

from __future__ import annotations

import dataclasses
import hashlib
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ipslib.config import ConfigError, MegapixelMNISTConfig
from ipslib.data import MegapixelMNIST, mnist, noise
from ipslib.data import megapixel_mnist as mm
from ipslib.data.mnist_canvas import digit_bank
from ipslib.data.resize import area_resize, area_weights

PINNED = {"integer": "1fe7ad78686f4aa3", "antialiased": "946d675a048b9f62", "lines": "bf790051aa9fd2f4"}
SMALL = dict(canvas_size=200, digit_size=28, n_noise=20, digit_source="sample", n_train=50, n_test=20)


@st.composite
def configs(draw):
    digit = draw(st.sampled_from([7, 10, 14, 21, 28, 35, 56]))
    canvas = draw(st.integers(5 * digit, 5 * digit + 150))
    mode = draw(st.sampled_from(["integer", "antialiased"]))
    return MegapixelMNISTConfig(
        canvas_size=canvas,
        digit_size=digit,
        noise_size=draw(st.none() | st.integers(1, min(canvas, 60))),
        n_noise=draw(st.integers(0, 25)),
        noise_type=draw(st.sampled_from(["bezier", "lines"])),
        noise_thickness=draw(st.floats(1.0, 3.5) if mode == "integer" else st.floats(0.3, 3.5)),
        thickness_mode=mode,
        n_train=10**6,
        n_test=10**4,
        data_seed=draw(st.integers(0, 2**40)),
        digit_source="sample",
    )


def _boxes_overlap(a, b) -> bool:
    return abs(a[0] - b[0]) < a[2] and abs(a[1] - b[1]) < a[3]


@settings(max_examples=60, deadline=None)
@given(cfg=configs(), split=st.sampled_from(["train", "test"]), index=st.integers(0, 10**4 - 1))
def test_canvas_invariants(cfg, split, index):
    s = MegapixelMNIST(cfg, split)[index]
    c, d = cfg.canvas_size, cfg.digit_size
    assert s.image.shape == (c, c) and s.image.dtype == np.uint8
    # labels
    majority = s.labels["majority"]
    assert (s.digit_labels == majority).sum() == 3 and (s.digit_labels[:3] == majority).all()
    assert s.labels["max"] == s.digit_labels.max()
    assert s.labels["top"] == s.digit_labels[np.argmin(s.digit_boxes[:, 0])]
    np.testing.assert_array_equal(s.labels["multi"], np.isin(np.arange(10), s.digit_labels).astype(int))
    # geometry: boxes inside, digits never overlap
    assert s.digit_boxes.shape == (5, 4) and (s.digit_boxes[:, 2:] == d).all()
    assert (s.digit_boxes[:, :2] >= 0).all() and (s.digit_boxes[:, :2] <= c - d).all()
    for i in range(5):
        for j in range(i):
            assert not _boxes_overlap(s.digit_boxes[i], s.digit_boxes[j])
    assert s.noise_boxes.shape == (cfg.noise_count, 4) and (s.noise_boxes[:, 2:] == cfg.noise_px).all()
    assert (s.noise_boxes[:, :2] >= 0).all() and (s.noise_boxes[:, :2] <= c - cfg.noise_px).all()
    # digits are painted last, as the resized digit of the right split
    images, labels, _ = mnist.load_sample(split)
    np.testing.assert_array_equal(labels[s.digit_indices], s.digit_labels)
    resized = area_resize(images[s.digit_indices], d)
    for (row, col, h, w), digit in zip(s.digit_boxes, resized):
        np.testing.assert_array_equal(s.image[row : row + h, col : col + w], digit)
    # noise is painted by assignment: the last placement shows its whole pattern unless a digit covers it
    if cfg.noise_count and not any(
        _boxes_overlap(s.noise_boxes[-1], b) or _boxes_overlap(b, s.noise_boxes[-1]) for b in s.digit_boxes
    ):
        row, col, h, w = s.noise_boxes[-1]
        pattern = MegapixelMNIST(cfg, split).noise_pool.patterns[s.noise_patterns[-1]]
        np.testing.assert_array_equal(s.image[row : row + h, col : col + w], pattern)
    assert cfg.o2i == d**2 / c**2


@settings(max_examples=25, deadline=None)
@given(cfg=configs(), index=st.integers(0, 10**6 - 2))
def test_determinism(cfg, index):
    first = MegapixelMNIST(cfg, "train")[index].image.tobytes()
    assert MegapixelMNIST(cfg, "train")[index].image.tobytes() == first
    mm._noise_pool.cache_clear()  # a fresh pool must come out the same too
    assert MegapixelMNIST(dataclasses.asdict(cfg), "train")[index].image.tobytes() == first
    assert MegapixelMNIST(cfg, "train")[index + 1].image.tobytes() != first
    other_seed = dataclasses.replace(cfg, data_seed=cfg.data_seed + 1)
    assert MegapixelMNIST(other_seed, "train")[index].image.tobytes() != first
    assert MegapixelMNIST(cfg, "test")[index % 10**4].image.tobytes() != first


def test_fixed_bytes_regression():
    """Pinned digests: the same bytes on every machine; update only when the generator changes on purpose."""
    digests = {}
    for mode in ("integer", "antialiased"):
        ds = MegapixelMNIST(dict(SMALL, thickness_mode=mode, noise_thickness=1.5), "train")
        digests[mode] = hashlib.sha256(b"".join(ds[i].image.tobytes() for i in range(3))).hexdigest()[:16]
    lines = MegapixelMNIST(dict(SMALL, noise_type="lines", digit_size=14, noise_size=21), "test")
    digests["lines"] = hashlib.sha256(lines[7].image.tobytes()).hexdigest()[:16]
    assert digests == PINNED


def test_train_and_test_use_their_own_mnist_split(monkeypatch):
    def fake_load(split, root=None):
        labels = np.repeat(np.arange(10, dtype=np.uint8), 20)
        return np.full((200, 28, 28), 1 if split == "train" else 2, np.uint8), labels

    monkeypatch.setattr(mnist, "load_mnist", fake_load)
    digit_bank.cache_clear()
    try:
        cfg = dict(SMALL, digit_source="mnist", n_noise=0)
        for split, value in (("train", 1), ("test", 2)):
            s = MegapixelMNIST(cfg, split)[0]
            assert set(np.unique(s.image)) == {0, value}
    finally:
        digit_bank.cache_clear()


def test_indexing_and_length():
    ds = MegapixelMNIST(SMALL, "test")
    assert len(ds) == 20 and len(MegapixelMNIST(SMALL, "train")) == 50
    for bad in (-1, 20, 10**9):
        with pytest.raises(IndexError):
            ds[bad]
    with pytest.raises(TypeError):
        ds[1.5]
    with pytest.raises(ConfigError, match="split"):
        MegapixelMNIST(SMALL, "valid")
    with pytest.raises(ConfigError, match="unknown"):
        MegapixelMNIST(dict(SMALL, colour=True))
    with pytest.raises(ConfigError, match="data_seed"):
        MegapixelMNIST(dict(SMALL, data_seed=-1))
    image, boxes, labels = ds.display(3)
    np.testing.assert_array_equal(image, ds[3].image)
    np.testing.assert_array_equal(boxes, ds[3].digit_boxes)
    assert set(labels) == {"majority", "max", "top", "multi"}


def test_memory_and_time_do_not_grow_with_length():
    def peak(n_train, index):
        ds = MegapixelMNIST(dict(SMALL, n_train=n_train), "train")
        ds[0]  # build the shared pool and digit bank first
        tracemalloc.start()
        ds[index]
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    small, huge = peak(10, 5), peak(10**7, 5)
    assert huge < 1.5 * small + 10_000
    assert peak(10**7, 10**6) < 1.5 * small + 10_000


def test_digit_placement_terminates_when_rejection_gives_up(monkeypatch):
    monkeypatch.setattr(mm, "MAX_TRIES", 0)  # always choose among the free positions
    rng = np.random.default_rng(0)
    for _ in range(50):
        pos = mm.place_digits(rng, canvas=5 * 9, size=9)
        assert pos.min() >= 0 and pos.max() <= 5 * 9 - 9
        for i in range(5):
            for j in range(i):
                assert not (abs(pos[i] - pos[j]) < 9).all()


def test_o2i_rule_noise_counts():
    counts = [
        MegapixelMNISTConfig(canvas_size=3000, digit_size=d, n_noise="o2i_rule").noise_count for d in (28, 56, 84, 112)
    ]
    assert counts == [800, 600, 400, 200]


def test_bezier_control_point_frequencies():
    pool = MegapixelMNIST(dict(SMALL, n_noise=4000)).noise_pool
    assert pool.patterns.shape == (4000, 28, 28)
    n = len(pool.n_control)
    for points, prob in zip(noise.CONTROL_POINTS, noise.CONTROL_PROBS):
        observed = (pool.n_control == points).sum()
        assert abs(observed - n * prob) < 4 * np.sqrt(n * prob * (1 - prob))


def test_thickness_modes():
    def pool(t, mode):
        return MegapixelMNIST(dict(SMALL, noise_thickness=t, thickness_mode=mode)).noise_pool.patterns

    np.testing.assert_array_equal(pool(1.9, "integer"), pool(1.0, "integer"))
    np.testing.assert_array_equal(pool(2.4, "integer"), pool(2.0, "integer"))
    assert (pool(2.0, "integer") > 0).sum() > 1.8 * (pool(1.0, "integer") > 0).sum()
    assert not np.array_equal(pool(1.9, "antialiased"), pool(1.0, "antialiased"))
    assert pool(1.9, "antialiased").astype(int).sum() > pool(1.0, "antialiased").astype(int).sum()
    # a 1-px integer pattern is a thin curve: about 31 pixels on average (spec §8.2)
    assert 20 < (pool(1.0, "integer") > 0).sum(axis=(1, 2)).mean() < 45


def test_one_pixel_segments_are_8_connected_digital_lines():
    points = np.array([[[0, 0], [5, 2], [5, 9], [0, 4], [0, 4], [27, 27]]])
    index, rows, cols = noise._digital_segments(points)
    assert (index == 0).all()
    starts = np.concatenate([[0], np.cumsum([6, 8, 6, 1, 28])])
    for k, (a, b) in enumerate(zip(points[0, :-1], points[0, 1:])):
        r, c = rows[starts[k] : starts[k + 1]], cols[starts[k] : starts[k + 1]]
        assert (c[0], r[0]) == tuple(a) and (c[-1], r[-1]) == tuple(b)
        assert len(r) == max(abs(b - a)) + 1
        assert (np.abs(np.diff(r)) <= 1).all() and (np.abs(np.diff(c)) <= 1).all()
    np.testing.assert_array_equal(noise.draw_polylines(np.array([[[0, 0], [27, 27]]]), 1)[0], np.eye(28))
    thick = noise.draw_polylines(np.array([[[5, 9], [5, 9]]]), 2)[0]  # one point, disc of width 2
    assert sorted(zip(*np.nonzero(thick))) == [(8, 5), (9, 4), (9, 5), (9, 6), (10, 5)]


def test_lines_noise_follows_the_original_recipe():
    cfg = dict(SMALL, canvas_size=300, noise_type="lines", n_noise=30)
    ds = MegapixelMNIST(cfg)
    patterns = ds.noise_pool.patterns
    assert patterns.shape == (30, 28, 28) and (ds.noise_pool.n_control == 0).all()
    assert patterns[patterns > 0].min() >= 204 and patterns.max() <= 255
    origins = ds[0].noise_boxes[:, :2]
    assert origins.min() >= 28 and origins.max() < 300 - 28


def test_area_resize():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(area_resize(x, 56), x.repeat(2, axis=1).repeat(2, axis=2))
    np.testing.assert_array_equal(area_resize(x, 28), x)
    blocks = x.reshape(3, 14, 2, 14, 2).astype(int).sum(axis=(2, 4))
    np.testing.assert_array_equal(area_resize(x, 14), (2 * blocks + 4) // 8)
    assert (area_weights(28, 21).sum(axis=1) == 28).all()
    np.testing.assert_array_equal(area_resize(np.full((1, 28, 28), 77, np.uint8), 21), 77)
    assert abs(area_resize(x, 21).mean() - x.mean()) < 1.0


def test_torch_view_and_default_collate():
    ds = MegapixelMNIST(SMALL, "train")
    view = ds.torch()
    x, targets = view[2]
    assert x.shape == (1, 200, 200) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x[0], torch.from_numpy(ds[2].image).float() / 255)
    assert targets["majority"].dtype == torch.long and targets["majority"].dim() == 0
    assert targets["multi"].dtype == torch.float32 and targets["multi"].shape == (10,)
    xb, tb = next(iter(torch.utils.data.DataLoader(view, batch_size=2)))
    assert xb.shape == (2, 1, 200, 200) and tb["max"].shape == (2,) and tb["multi"].shape == (2, 10)
    from ipslib.model.patches import patchify

    patches, _ = ds.torch(patch_size=50)[2]
    assert patches.shape == (16, 1, 50, 50) and patches.is_contiguous()
    assert torch.equal(patches, patchify(x, 50))
