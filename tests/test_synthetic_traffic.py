"""SYNTHETIC traffic scenes: determinism, labels without rendering, sign boxes, O2I, torch view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ipslib.config import ConfigError, SyntheticTrafficConfig
from ipslib.data import SyntheticTraffic, build_dataset
from ipslib.data.traffic_scene import render_scene
from ipslib.data.traffic_signs import IMAGENET_MEAN, IMAGENET_STD

SMALL = {
    "image_height": 240,
    "image_width": 320,
    "n_train": 40,
    "n_test": 20,
    "sign_min_size": 24,
    "sign_max_size": 48,
    "n_distractors": 4,
}
SIGNS_ONLY = {**SMALL, "class_probs": (0.0, 0.4, 0.3, 0.3)}


def test_deterministic_and_random_access():
    ds = SyntheticTraffic(SMALL, "train")
    again = SyntheticTraffic(SyntheticTrafficConfig(**SMALL), "train")
    for i in (7, 0, 39, 7):
        a, b = ds[i], again[i]
        assert a.image.tobytes() == b.image.tobytes() and a.labels == b.labels
        assert (a.sign_box is None) == (b.sign_box is None)
    assert ds[3].image.tobytes() != ds[4].image.tobytes()
    assert ds[0].image.tobytes() != SyntheticTraffic(SMALL, "test")[0].image.tobytes()
    assert ds[0].image.tobytes() != SyntheticTraffic({**SMALL, "data_seed": 1}, "train")[0].image.tobytes()
    assert ds[-1].image.tobytes() == ds[39].image.tobytes()
    with pytest.raises(IndexError):
        ds[40]


def test_labels_without_rendering_match_items(monkeypatch):
    ds = SyntheticTraffic(SMALL, "test")
    rendered = [ds[i].labels["sign"] for i in range(len(ds))]
    monkeypatch.setattr("ipslib.data.synthetic_traffic.render_scene", lambda *a: pytest.fail("rendered"))
    fresh = SyntheticTraffic(SMALL, "test")
    assert fresh.labels == rendered and sum(fresh.class_counts()) == len(fresh)


def test_class_shares_follow_class_probs():
    probs = (0.5, 0.1, 0.25, 0.15)
    ds = SyntheticTraffic({**SMALL, "n_train": 8000, "class_probs": probs}, "train")
    shares = np.array(ds.class_counts()) / len(ds)
    assert np.allclose(shares, probs, atol=0.02)  # ~4 standard errors at n = 8000


@pytest.mark.parametrize("split", ["train", "test"])
def test_sign_box_inside_image_red_ring_white_disc(split):
    ds = SyntheticTraffic({**SIGNS_ONLY, "occlusion_prob": 0.0, "blur_prob": 0.0}, split)
    for i in range(12):
        scene = ds[i]
        assert scene.labels["sign"] in (1, 2, 3) and not (scene.occluded or scene.blurred)
        top, left, h, w = scene.sign_box.tolist()
        assert h == w and 24 <= h <= 48
        assert top >= 0 and left >= 0 and top + h <= 240 and left + w <= 320
        r = h / 2
        cy, cx = top + r, left + r
        angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        ring = scene.image[(cy + 0.84 * r * np.sin(angles)).astype(int), (cx + 0.84 * r * np.cos(angles)).astype(int)]
        ring = ring.astype(int)
        assert np.all(ring[:, 0] > 150) and np.all(ring[:, 0] - ring[:, 1:].max(axis=1) > 90), ring
        white = scene.image[int(cy - 0.52 * r), int(cx) - 1 : int(cx) + 2].astype(int)
        assert np.all(white > 195), white  # above the number, inside the ring
        assert scene.image[int(cy), left + int(0.2 * w) : left + int(0.8 * w)].min() < 80  # black digits


def test_o2i_within_configured_range_and_no_sign_has_no_box():
    cfg = SyntheticTrafficConfig(**{**SMALL, "n_train": 60, "class_probs": (0.5, 0.2, 0.2, 0.1)})
    low, high = cfg.o2i_range
    ds = SyntheticTraffic(cfg, "train")
    for i in range(len(ds)):
        scene = ds[i]
        if scene.labels["sign"] == 0:
            assert scene.sign_box is None
            image, boxes, labels = ds.display(i)
            assert boxes.shape == (0, 4) and labels["sign_name"] == "no-sign (synthetic)"
        else:
            _, _, h, w = scene.sign_box
            assert low <= h * w / (240 * 320) <= high
    default = SyntheticTrafficConfig()
    assert default.o2i_range == pytest.approx((32**2 / 1920000, 88**2 / 1920000))
    assert 0.0005 < default.o2i_range[0] < default.o2i_range[1] < 0.0041


def test_occlusion_and_blur_happen_and_change_the_sign():
    ds = SyntheticTraffic({**SIGNS_ONLY, "n_train": 30, "occlusion_prob": 0.5, "blur_prob": 0.5}, "train")
    scenes = [ds[i] for i in range(len(ds))]
    assert any(s.occluded for s in scenes) and any(s.blurred for s in scenes)
    assert not all(s.occluded for s in scenes) and not all(s.blurred for s in scenes)


def test_display_and_torch_view():
    ds = SyntheticTraffic(SIGNS_ONLY, "train")
    assert ds.SYNTHETIC and "SYNTHETIC" in repr(ds)
    image, boxes, labels = ds.display(2)
    assert image.dtype == np.uint8 and image.shape == (240, 320, 3)
    assert boxes.shape == (1, 4) and boxes.dtype == np.int64 and labels["sign_name"].endswith("(synthetic)")
    view = ds.torch()
    assert len(view) == len(ds) and view.labels == ds.labels
    x, target = view[2]
    assert x.shape == (3, 240, 320) and x.dtype == torch.float32
    assert target["sign"].dtype == torch.long and target["sign"].shape == () and int(target["sign"]) == labels["sign"]
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    expected = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean) / std
    assert torch.allclose(x, expected, atol=1e-5)
    batch = torch.utils.data.default_collate([view[0], view[1]])
    assert batch[0].shape == (2, 3, 240, 320) and batch[1]["sign"].shape == (2,)


def test_build_dataset_and_config_checks():
    from ipslib.config import RunConfig

    cfg = RunConfig.from_flat(dataset="synthetic_traffic", **SMALL, patch_size=40)
    view = build_dataset(cfg, "test")
    assert len(view) == 20 and view[0][0].shape == (3, 240, 320)
    with pytest.raises(ConfigError, match="class_probs"):
        SyntheticTrafficConfig(class_probs=(0.5, 0.5))
    with pytest.raises(ConfigError, match="sign_max_size"):
        SyntheticTrafficConfig(image_height=64, image_width=64, sign_max_size=80)
    with pytest.raises(ConfigError, match="split"):
        SyntheticTraffic(SMALL, "val")


def test_full_size_scene_renders():
    cfg = SyntheticTrafficConfig(class_probs=(0.0, 0.0, 1.0, 0.0))
    scene = render_scene(cfg, np.random.default_rng(0), 2)
    assert scene.image.shape == (1200, 1600, 3) and scene.labels == {"sign": 2}
