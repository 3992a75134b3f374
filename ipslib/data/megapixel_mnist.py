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
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ipslib.config import ConfigError, MegapixelMNISTConfig, build
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
    "place_digits",
    "canvas_labels",
    "N_DIGITS",
    "N_POSITIVE",
    "MAX_TRIES",
]

N_DIGITS = 5
N_POSITIVE = 3
MAX_TRIES = 100  # rejection-sampling tries per digit before choosing among the free positions
_SPLIT_KEY = {"train": 0, "test": 1}
_POOL_STREAM, _SAMPLE_STREAM = 0, 1


@dataclass(frozen=True)
class Canvas:
    """One generated sample. Boxes are (row, col, height, width) of the top-left corner and size.

    Attributes:
        image: uint8 (H, W).
        digit_boxes: int (5, 4); digit_labels: int (5,), the first three are the majority class;
        digit_indices: int (5,), positions of the digits in their MNIST split (or in the sample).
        noise_boxes: int (n, 4); noise_patterns: int (n,), indices into the noise pool.
        labels: {"majority", "max", "top": int, "multi": int (10,) 0/1 presence vector}.
    """

    image: np.ndarray
    digit_boxes: np.ndarray
    digit_labels: np.ndarray
    digit_indices: np.ndarray
    noise_boxes: np.ndarray
    noise_patterns: np.ndarray
    labels: dict[str, Any]


@dataclass(frozen=True, eq=False)
class CanvasLayout:
    """The sparse description of one canvas: stamps in painting order.

    Attributes:
        size: canvas side in pixels.
        origins: int64 (K, 2) top-left (row, col) of each stamp.
        sides: int64 (K,) side of each stamp.
        sprites: (noise patterns uint8 (P, s, s), digit images uint8 (5, d, d)).
        bank: int64 (K,) 0 for a noise stamp, 1 for a digit; ref: int64 (K,) index into that bank.
        digit_indices, digit_labels: int64 (5,); noise_patterns: int64 (n,); labels: the canvas's tasks.
    """

    size: int
    origins: np.ndarray
    sides: np.ndarray
    sprites: tuple[np.ndarray, np.ndarray]
    bank: np.ndarray
    ref: np.ndarray
    digit_indices: np.ndarray
    digit_labels: np.ndarray
    noise_patterns: np.ndarray
    labels: dict

    @property
    def digit_boxes(self) -> np.ndarray:
        """int64 (5, 4) row, col, height, width, as :class:`~ipslib.data.megapixel_mnist.Canvas`."""
        digits = self.bank == 1
        return np.column_stack([self.origins[digits], self.sides[digits], self.sides[digits]])

    @property
    def noise_boxes(self) -> np.ndarray:
        noise = self.bank == 0
        return np.column_stack([self.origins[noise], self.sides[noise], self.sides[noise]])

    def sprite(self, k: int) -> np.ndarray:
        return self.sprites[self.bank[k]][self.ref[k]]

    def render(self) -> np.ndarray:
        """The whole canvas, uint8 (size, size): every stamp assigned in painting order."""
        image = np.zeros((self.size, self.size), dtype=np.uint8)
        stamps = zip(self.origins.tolist(), self.sides.tolist(), self.bank.tolist(), self.ref.tolist())
        for (row, col), side, bank, ref in stamps:
            image[row : row + side, col : col + side] = self.sprites[bank][ref]
        return image


@dataclass(frozen=True, eq=False)
class DigitBank:
    """MNIST digits of one split grouped by class: images uint8 (n, 28, 28), labels (n,).

    ``order`` lists the digits sorted by class; class c occupies ``order[starts[c]:starts[c + 1]]``.
    """

    images: np.ndarray
    labels: np.ndarray
    order: np.ndarray = field(init=False, repr=False)
    starts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        counts = np.bincount(self.labels, minlength=10)
        if len(counts) != 10 or counts.min() == 0:
            raise ValueError(f"every class 0-9 needs at least one digit; got counts {counts.tolist()}")
        object.__setattr__(self, "order", np.argsort(self.labels, kind="stable"))
        object.__setattr__(self, "starts", np.concatenate([[0], np.cumsum(counts)]))

    def draw(self, rng: np.random.Generator, target: int) -> np.ndarray:
        """Three digits of class ``target`` and two of any other class, with replacement: indices (5,)."""
        lo, hi = self.starts[target], self.starts[target + 1]
        positive = lo + rng.integers(hi - lo, size=N_POSITIVE)
        negative = rng.integers(len(self.labels) - (hi - lo), size=N_DIGITS - N_POSITIVE)
        negative = np.where(negative < lo, negative, negative + (hi - lo))  # skip the target's block
        return self.order[np.concatenate([positive, negative])]


@lru_cache(maxsize=4)
def _digit_bank(source: str, split: str, root: str) -> DigitBank:
    from ipslib.data import mnist

    if source == "sample":
        images, labels, _ = mnist.load_sample(split)
    else:
        images, labels = mnist.load_mnist(split, root)
    return DigitBank(images, labels)


@lru_cache(maxsize=8)
def _noise_pool(key: tuple, config: MegapixelMNISTConfig, split: str) -> NoisePool:
    seed = np.random.SeedSequence(config.data_seed, spawn_key=(_SPLIT_KEY[split], _POOL_STREAM))
    return build_noise_pool(config, np.random.default_rng(seed))


def _overlaps(placed: list[np.ndarray], pos: np.ndarray, size: int) -> bool:
    return any(abs(int(p[0] - pos[0])) < size and abs(int(p[1] - pos[1])) < size for p in placed)


def _free_position(rng: np.random.Generator, placed: list[np.ndarray], canvas: int, size: int) -> np.ndarray:
    span = canvas - size + 1
    free = np.ones((span, span), dtype=bool)
    for row, col in placed:
        free[max(0, row - size + 1) : row + size, max(0, col - size + 1) : col + size] = False
    choices = np.flatnonzero(free)
    return np.array(np.unravel_index(choices[rng.integers(len(choices))], free.shape))


def place_digits(rng: np.random.Generator, canvas: int, size: int, count: int = N_DIGITS) -> np.ndarray:
    """Non-overlapping top-left corners round(U·(canvas − size)): int (count, 2).

    Two digits overlap when |Δrow| < size and |Δcol| < size. After ``MAX_TRIES`` rejected draws a digit
    takes a uniformly chosen free position (one always exists when canvas ≥ 5·size).
    """
    placed: list[np.ndarray] = []
    for _ in range(count):
        for _ in range(MAX_TRIES):
            pos = np.rint(rng.random(2) * (canvas - size)).astype(np.int64)
            if not _overlaps(placed, pos, size):
                break
        else:
            pos = _free_position(rng, placed, canvas, size)
        placed.append(pos)
    return np.array(placed, dtype=np.int64).reshape(count, 2)


def canvas_labels(digit_labels: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    """The four tasks: majority (first label), max, top (smallest row, first on ties), multi (presence)."""
    return {
        "majority": int(digit_labels[0]),
        "max": int(digit_labels.max()),
        "top": int(digit_labels[np.argmin(rows)]),
        "multi": (np.bincount(digit_labels, minlength=10) > 0).astype(np.int64),
    }


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
        if split not in _SPLIT_KEY:
            raise ConfigError(f"split={split!r} is not valid; choose 'train' or 'test'")
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
        from ipslib.data.mnist import data_root

        return _digit_bank(self.config.digit_source, self.split, str(data_root()))

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
        labels = sample.labels
        targets = {name: torch.tensor(labels[name], dtype=torch.long) for name in ("majority", "max", "top")}
        targets["multi"] = torch.from_numpy(labels["multi"].astype(np.float32))
        return x, targets
