"""SYNTHETIC road scenes with at most one speed-limit sign: an offline stand-in for Swedish Traffic Signs.

Not the real dataset and never to be reported as such: it exists so that the traffic-sign pipeline (4 classes:
0 no-sign, 1 = 50, 2 = 70, 3 = 80) runs offline, in CI and in the book without the Linköping files.

Sample ``i`` of a split is a pure function of ``(config, split, i)``: it draws from its own
``numpy.random.Generator`` seeded by ``SeedSequence([data_seed, split code, i])``, its class first, so labels
cost no rendering and any index is rendered in O(1). A scene has a sky/ground gradient with a horizon, a road
in perspective with edge lines and dashed centre markings, buildings/trees/poles, ``n_distractors`` confusers
(red rings and discs without numbers, warning triangles, blue signs, number plates without a red ring, coloured
blobs) and a noise texture. Classes 1-3 add one round sign (red ring, white disc, black "50"/"70"/"80" in
DejaVu Sans Bold) of diameter d drawn uniformly from [sign_min_size, sign_max_size], on a pole, partly covered
by an occluder with probability ``occlusion_prob`` and blurred with probability ``blur_prob``.

O2I (box area d² over image area): with the defaults (d in [32, 88] px, 1200x1600) 0.053 %-0.40 %
(``SyntheticTrafficConfig.o2i_range``). Drawing: :mod:`ipslib.data.traffic_scene`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ipslib.config import SyntheticTrafficConfig, build
from ipslib.data.traffic_scene import TrafficScene, render_scene

__all__ = ["SyntheticTraffic", "SyntheticTrafficTorch", "TrafficScene", "CLASS_NAMES", "SYNTHETIC"]

SYNTHETIC = True
CLASS_NAMES = ("no-sign (synthetic)", "50 (synthetic)", "70 (synthetic)", "80 (synthetic)")
SPLIT_CODES = {"train": 0, "test": 1}


class SyntheticTraffic:
    """SYNTHETIC traffic scenes of one split; ``ds[i]`` is a :class:`TrafficScene`, ``ds.torch()`` a torch view.

    Args:
        config: a :class:`~ipslib.config.SyntheticTrafficConfig` or a mapping of its fields.
        split: ``"train"`` or ``"test"``; the two splits use disjoint random streams.
    """

    SYNTHETIC = True
    CLASS_NAMES = CLASS_NAMES

    def __init__(self, config: SyntheticTrafficConfig | Mapping[str, Any], split: str = "train") -> None:
        if not isinstance(config, SyntheticTrafficConfig):
            config = build(SyntheticTrafficConfig, dict(config), where="SyntheticTraffic")
        self.config, self.split = config, split
        self._length = config.n_items(split)
        self._cumulative = np.cumsum(config.class_probs)
        self._labels: list[int] | None = None

    def __len__(self) -> int:
        return self._length

    def _stream(self, i: int) -> tuple[np.random.Generator, int]:
        """The item's generator, after its first draw (the class)."""
        if not 0 <= i < self._length:
            raise IndexError(f"index {i} out of range for {self._length} {self.split} items")
        rng = np.random.default_rng(np.random.SeedSequence([self.config.data_seed, SPLIT_CODES[self.split], i]))
        label = int(np.searchsorted(self._cumulative, rng.random(), side="right"))
        return rng, min(label, len(CLASS_NAMES) - 1)

    def label(self, i: int) -> int:
        """Class of item ``i`` without rendering it."""
        return self._stream(int(i))[1]

    @property
    def labels(self) -> list[int]:
        if self._labels is None:
            self._labels = [self.label(i) for i in range(self._length)]
        return self._labels

    def class_counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=len(CLASS_NAMES)).tolist()

    def __getitem__(self, i: int) -> TrafficScene:
        i = int(i) + (self._length if int(i) < 0 else 0)
        rng, label = self._stream(i)
        return render_scene(self.config, rng, label)

    def display(self, i: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Image uint8 (H, W, 3); boxes int (n, 4) as (row, col, height, width), n = 0 without a sign;
        labels ``{"sign": int, "sign_name": str}``, the name marked as synthetic."""
        scene = self[i]
        boxes = np.zeros((0, 4), dtype=np.int64) if scene.sign_box is None else scene.sign_box[None, :]
        label = scene.labels["sign"]
        return scene.image, boxes, {"sign": label, "sign_name": CLASS_NAMES[label]}

    def torch(self) -> SyntheticTrafficTorch:
        return SyntheticTrafficTorch(self)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"SyntheticTraffic(SYNTHETIC, split={self.split!r}, n={len(self)}, "
            f"{c.image_height}x{c.image_width}, sign {c.sign_min_size}-{c.sign_max_size} px)"
        )


class SyntheticTrafficTorch(Dataset):
    """Torch view of :class:`SyntheticTraffic`: ``(image float (3, H, W) ImageNet-normalised, {"sign": long})``,
    the same item format as :class:`~ipslib.data.traffic_signs.TrafficSigns` (without augmentation)."""

    SYNTHETIC = True

    def __init__(self, scenes: SyntheticTraffic) -> None:
        from ipslib.data.traffic_signs import IMAGENET_MEAN, IMAGENET_STD

        self.scenes = scenes
        self._mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.scenes)

    @property
    def labels(self) -> list[int]:
        return self.scenes.labels

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        scene = self.scenes[i]
        image = torch.from_numpy(scene.image).permute(2, 0, 1).float().div_(255)  # (3, H, W)
        image = image.sub_(self._mean).div_(self._std)
        return image, {"sign": torch.tensor(scene.labels["sign"], dtype=torch.long)}
