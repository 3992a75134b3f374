"""The pieces of a megapixel-MNIST canvas: its sparse layout (stamps in painting order), the digit bank a
split draws from, digit placement without overlap, and the four labels (spec §8.1-§8.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch

__all__ = [
    "Canvas",
    "CanvasLayout",
    "DigitBank",
    "digit_bank",
    "place_digits",
    "canvas_labels",
    "torch_targets",
    "N_DIGITS",
    "N_POSITIVE",
    "MAX_TRIES",
]

N_DIGITS = 5
N_POSITIVE = 3
MAX_TRIES = 100  # rejection-sampling tries per digit before choosing among the free positions


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
def digit_bank(source: str, split: str, root: str) -> DigitBank:
    from ipslib.data import mnist

    if source == "sample":
        images, labels, _ = mnist.load_sample(split)
    else:
        images, labels = mnist.load_mnist(split, root)
    return DigitBank(images, labels)


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


def torch_targets(labels: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A canvas's labels as tensors (what the torch views yield): majority, max, top long scalars; multi
    float32 (10,)."""
    targets = {name: torch.tensor(labels[name], dtype=torch.long) for name in ("majority", "max", "top")}
    targets["multi"] = torch.from_numpy(labels["multi"].astype(np.float32))
    return targets
