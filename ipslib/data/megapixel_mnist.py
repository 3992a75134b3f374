"""Megapixel MNIST (Katharopoulos & Fleuret 2019; IPS version) and the dissertation's O2I / Bézier variant.

A canvas holds five MNIST digits (three of the target class, two from other classes) and ``n_noise`` noise
patterns on a black square (spec §8.1-§8.3). It is a pure function of (config, split, index): sample i
draws from its own random stream, ``SeedSequence(data_seed, spawn_key=(split, 1, i))``, so random access
costs the same for every index, nothing is generated up front or written to disk, and the same bytes come
out on every run and machine. The pool of noise patterns of a (config, split) comes from the stream
``spawn_key=(split, 0)`` and is built once per process.

Painting follows the IPS generator: noise first, then digits, each by assignment of its whole square (a
later square erases what is under it). Training canvases use MNIST training digits, test canvases test
digits.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ipslib.config import ConfigError, MegapixelMNISTConfig, Split, build
from ipslib.config.options import choice_error
from ipslib.data.mnist_canvas import (
    MAX_TRIES,
    N_DIGITS,
    N_POSITIVE,
    Canvas,
    CanvasLayout,
    DigitBank,
    canvas_labels,
    digit_bank,
    place_digits,
    torch_targets,
)
from ipslib.data.noise import NoisePool, build_noise_pool
from ipslib.data.resize import area_resize
from ipslib.model.patches import patchify

__all__ = [
    "Canvas",
    "CanvasLayout",
    "DigitBank",
    "MegapixelMNIST",
    "MegapixelMNISTTorch",
    "to_float",
    "torch_targets",
    "place_digits",
    "canvas_labels",
    "N_DIGITS",
    "N_POSITIVE",
    "MAX_TRIES",
]

_SPLIT_KEY = {"train": 0, "test": 1}
_POOL_STREAM, _SAMPLE_STREAM = 0, 1


@lru_cache(maxsize=8)
def _noise_pool(key: tuple, config: MegapixelMNISTConfig, split: str) -> NoisePool:
    seed = np.random.SeedSequence(config.data_seed, spawn_key=(_SPLIT_KEY[split], _POOL_STREAM))
    return build_noise_pool(config, np.random.default_rng(seed))


def to_float(image: np.ndarray) -> torch.Tensor:
    """uint8 array → float32 tensor in [0, 1] (x / 255, exact), in one pass."""
    out = np.empty(image.shape, dtype=np.float32)
    np.divide(image, np.float32(255), out=out, dtype=np.float32)
    return torch.from_numpy(out)


class MegapixelMNIST:
    """Generated megapixel MNIST canvases of one split.

    Args:
        config: a :class:`~ipslib.config.MegapixelMNISTConfig` or a mapping of its fields.
        split: ``"train"`` or ``"test"``.
    """

    def __init__(self, config: MegapixelMNISTConfig | Mapping[str, Any], split: str = "train") -> None:
        if isinstance(config, Mapping):
            config = build(MegapixelMNISTConfig, config, where="MegapixelMNIST config")
        if not isinstance(config, MegapixelMNISTConfig):
            raise TypeError(f"config must be a MegapixelMNISTConfig or a mapping, got {type(config).__name__}")
        if message := choice_error("split", split, Split):
            raise ConfigError(message)
        self.config, self.split = config, split

    def __len__(self) -> int:
        return self.config.n_items(self.split)

    def __repr__(self) -> str:
        return f"MegapixelMNIST(split={self.split!r}, n={len(self)}, {self.config})"

    @property
    def noise_pool(self) -> NoisePool:
        """The split's noise patterns (built once per process and shared by equal configs)."""
        c = self.config
        key = (c.data_seed, c.noise_type, c.noise_thickness, c.thickness_mode, c.noise_px, c.noise_count)
        return _noise_pool(key, c, self.split)

    @property
    def digits(self) -> DigitBank:
        from ipslib.system.files import data_root

        return digit_bank(self.config.digit_source, self.split, str(data_root()))

    def _stream(self, index: int) -> np.random.Generator:
        key = (_SPLIT_KEY[self.split], _SAMPLE_STREAM, index)
        return np.random.default_rng(np.random.SeedSequence(self.config.data_seed, spawn_key=key))

    def layout(self, index: int) -> CanvasLayout:
        """The sparse description of canvas ``index`` (its stamps in painting order), without painting it."""
        index = operator.index(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} {self.split} canvases")
        c, bank, pool = self.config, self.digits, self.noise_pool
        rng = self._stream(index)
        target = int(rng.integers(10))
        digit_indices = bank.draw(rng, target)
        positions = place_digits(rng, c.canvas_size, c.digit_size)
        noise_origins, noise_ids = self._place_noise(rng, len(pool))
        n_noise, n_digits = len(noise_ids), len(positions)
        digit_labels = bank.labels[digit_indices].astype(np.int64)
        return CanvasLayout(
            size=c.canvas_size,
            origins=np.concatenate([noise_origins, positions]).astype(np.int64).reshape(-1, 2),
            sides=np.concatenate([np.full(n_noise, c.noise_px), np.full(n_digits, c.digit_size)]).astype(np.int64),
            sprites=(pool.patterns, area_resize(bank.images[digit_indices], c.digit_size)),
            bank=np.concatenate([np.zeros(n_noise), np.ones(n_digits)]).astype(np.int64),
            ref=np.concatenate([noise_ids, np.arange(n_digits)]).astype(np.int64),
            digit_indices=digit_indices.astype(np.int64),
            digit_labels=digit_labels,
            noise_patterns=np.asarray(noise_ids, dtype=np.int64),
            labels=canvas_labels(digit_labels, positions[:, 0]),
        )

    def __getitem__(self, index: int) -> Canvas:
        layout = self.layout(index)
        return Canvas(
            image=layout.render(),
            digit_boxes=layout.digit_boxes,
            digit_labels=layout.digit_labels,
            digit_indices=layout.digit_indices,
            noise_boxes=layout.noise_boxes,
            noise_patterns=layout.noise_patterns,
            labels=layout.labels,
        )

    def _place_noise(self, rng: np.random.Generator, n_patterns: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-left corners (n, 2) and pattern indices (n,) of the canvas's noise placements."""
        c, n = self.config, self.config.noise_count
        if n == 0 or n_patterns == 0:
            return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64)
        span = c.canvas_size - c.noise_px
        if c.noise_type == "bezier":  # int(U·(H − s)) as in the dissertation
            origins = (rng.random((n, 2)) * span).astype(np.int64)
        else:  # int(U·(H − 2s) + s) as in the original (margin s)
            margin = min(c.noise_px, span // 2)
            origins = (rng.random((n, 2)) * (span - 2 * margin) + margin).astype(np.int64)
        return origins, rng.integers(n_patterns, size=n)

    def display(self, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """(image uint8 (H, W), digit boxes int (5, 4) row/col/h/w, labels) for ``ipslib data show``."""
        sample = self[index]
        return sample.image, sample.digit_boxes, sample.labels

    def torch(self, patch_size: int | None = None, patch_stride: int | None = None) -> MegapixelMNISTTorch:
        """The torch ``Dataset`` view (see :class:`MegapixelMNISTTorch`)."""
        return MegapixelMNISTTorch(self, patch_size=patch_size, patch_stride=patch_stride)

    def patch_view(self, patch_size: int, patch_stride: int | None = None) -> Any:
        """The torch ``Dataset`` of items cut with the layout's help: only the patches a stamp touches
        (:class:`~ipslib.data.layout_items.MegapixelMNISTPatches`; batch with its ``collate``)."""
        from ipslib.data.layout_items import MegapixelMNISTPatches

        return MegapixelMNISTPatches(self, patch_size, patch_stride)


class MegapixelMNISTTorch(Dataset):
    """Items ``(x, targets)``: x float32 in [0, 1], (1, H, W), or (N, 1, p, p) patches when ``patch_size``
    is given (cut from the uint8 canvas, then converted: one float pass instead of two); targets =
    {"majority", "max", "top": long scalar, "multi": float32 (10,)}, so the default collate works."""

    def __init__(
        self, dataset: MegapixelMNIST, *, patch_size: int | None = None, patch_stride: int | None = None
    ) -> None:
        self.dataset, self.patch_size, self.patch_stride = dataset, patch_size, patch_stride

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        sample = self.dataset[index]
        if self.patch_size is None:
            x = to_float(sample.image[None])  # (1, H, W)
        else:
            cut = patchify(torch.from_numpy(sample.image[None]), self.patch_size, self.patch_stride)
            x = to_float(cut.numpy())  # (N, 1, p, p)
        return x, torch_targets(sample.labels)
