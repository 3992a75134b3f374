"""Noise patterns of megapixel MNIST: the original straight-line scribbles and the dissertation's Bézier curves.

Every pattern is drawn on a 28×28 canvas and then area-resized to the noise size (spec §8.2, P12).

* ``lines`` (spec §8.1, ``make_mnist.py``): the union of a random straight line and a shuffled, possibly
  flipped copy of another pattern, with per-pixel intensity U(0.8, 1.0).
* ``bezier`` (spec §8.2, ``PineneedleMegaMNIST.py``): a Bézier curve through p ∈ {4, 6, 8} random integer
  control points (probabilities 3/9, 5/9, 1/9), sampled at 100 values of t, truncated to integers, and
  joined by 99 segments of intensity 1.0.

Rendering of the Bézier segments (no OpenCV needed):

* ``integer`` thickness (the author's ``cv2.line(..., thickness=int(t))``): a 1-px segment is the
  8-connected digital line that visits every column (or row, whichever is longer) once, at the rounded
  (half up) ideal position, like Bresenham / ``cv2.line`` with ``LINE_8``; a width of w ≥ 2 px stamps
  a disc brush {(dy, dx): dy² + dx² ≤ (w/2)²} at every pixel of that line. Not bit-identical to OpenCV.
* ``antialiased``: the same polyline (pixel centres at integer coordinates) with a true width t; a pixel's
  value is the box-filter coverage clip(t/2 + 1/2 − d, 0, 1), d = distance from its centre to the polyline.

All arithmetic is elementwise IEEE or integer (no BLAS reductions, powers by repeated multiplication), so
the patterns are the same bytes on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from ipslib.config import ThicknessMode, choices
from ipslib.data.resize import area_resize

__all__ = [
    "NoisePool",
    "CONTROL_POINTS",
    "CONTROL_PROBS",
    "PATTERN_SIZE",
    "N_CURVE_POINTS",
    "bezier_basis",
    "bezier_curves",
    "draw_polylines",
    "draw_polylines_antialiased",
    "bezier_patterns",
    "line_patterns",
    "build_noise_pool",
]

PATTERN_SIZE = 28
N_CURVE_POINTS = 100
CONTROL_POINTS = (4, 6, 8)
CONTROL_PROBS = (3 / 9, 5 / 9, 1 / 9)
_AA_CHUNK = 32


@dataclass(frozen=True)
class NoisePool:
    """The noise patterns of one (config, split).

    Attributes:
        patterns: uint8 (n, s, s), s = noise size.
        n_control: int (n,), control points of each Bézier pattern (0 for straight-line patterns).
    """

    patterns: np.ndarray
    n_control: np.ndarray

    def __len__(self) -> int:
        return len(self.patterns)


@cache
def bezier_basis(n_control: int) -> np.ndarray:
    """Bernstein weights C(n, i) (1 − t)^(n − i) t^i with n = n_control − 1 at t = linspace(0, 1, 100).

    Returns:
        float64 (100, n_control), powers by repeated multiplication (no platform ``pow``).
    """
    t = np.linspace(0.0, 1.0, N_CURVE_POINTS)
    degree = n_control - 1
    t_pow, s_pow = [np.ones_like(t)], [np.ones_like(t)]
    for _ in range(degree):
        t_pow.append(t_pow[-1] * t)
        s_pow.append(s_pow[-1] * (1.0 - t))
    basis = np.stack([math.comb(degree, i) * s_pow[degree - i] * t_pow[i] for i in range(n_control)], axis=1)
    basis.setflags(write=False)
    return basis


def bezier_curves(control: np.ndarray) -> np.ndarray:
    """Evaluate Bézier curves: control (m, p, 2) → points (m, 100, 2) float64 (summed in a fixed order)."""
    basis = bezier_basis(control.shape[1])  # (100, p)
    curves = np.zeros((control.shape[0], N_CURVE_POINTS, 2))
    for i in range(control.shape[1]):
        curves += basis[None, :, i, None] * control[:, None, i, :]
    return curves


def _digital_segments(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of the 8-connected segments between consecutive points: points (m, K, 2) int as (x, y).

    Returns:
        pattern index, row and column of every drawn pixel (with repeats), each (total,).
    """
    m, k, _ = points.shape
    start = points[:, :-1].reshape(-1, 2).astype(np.int64)  # (S, 2)
    delta = points[:, 1:].reshape(-1, 2).astype(np.int64) - start
    steps = np.abs(delta).max(axis=1)  # (S,)
    counts = steps + 1
    segment = np.repeat(np.arange(len(steps)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    n = np.maximum(steps, 1)[segment]
    pos = start[segment] + (2 * offset[:, None] * delta[segment] + n[:, None]) // (2 * n[:, None])
    return segment // (k - 1), pos[:, 1], pos[:, 0]


def _disc(width: int) -> np.ndarray:
    r = width // 2
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = dy * dy + dx * dx <= (width / 2) ** 2
    return np.stack([dy[keep], dx[keep]], axis=1)  # (b, 2)


def draw_polylines(points: np.ndarray, width: int, size: int = PATTERN_SIZE) -> np.ndarray:
    """Integer-width polylines (see module docstring): points (m, K, 2) int (x, y) → bool (m, size, size)."""
    out = np.zeros((points.shape[0], size, size), dtype=bool)
    index, rows, cols = _digital_segments(points)
    for dy, dx in _disc(width) if width > 1 else [(0, 0)]:
        r, c = rows + dy, cols + dx
        inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
        out[index[inside], r[inside], c[inside]] = True
    return out


def draw_polylines_antialiased(points: np.ndarray, width: float, size: int = PATTERN_SIZE) -> np.ndarray:
    """Polylines of sub-pixel width by distance coverage: points (m, K, 2) (x, y) → float32 (m, size, size)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    px, py = xs.reshape(1, 1, -1), ys.reshape(1, 1, -1)  # (1, 1, P)
    out = np.empty((points.shape[0], size * size), dtype=np.float32)
    for lo in range(0, points.shape[0], _AA_CHUNK):
        pts = points[lo : lo + _AA_CHUNK].astype(np.float32)
        ax, ay = pts[:, :-1, 0, None], pts[:, :-1, 1, None]  # (c, S, 1)
        dx, dy = pts[:, 1:, 0, None] - ax, pts[:, 1:, 1, None] - ay
        length2 = dx * dx + dy * dy
        t = ((px - ax) * dx + (py - ay) * dy) / np.where(length2 > 0, length2, np.float32(1))
        t = np.clip(t, 0, 1)  # (c, S, P)
        ex, ey = px - (ax + t * dx), py - (ay + t * dy)
        dist = np.sqrt((ex * ex + ey * ey).min(axis=1))  # (c, P)
        out[lo : lo + _AA_CHUNK] = np.clip(np.float32(width / 2 + 0.5) - dist, 0, 1)
    return out.reshape(-1, size, size)


def bezier_patterns(
    rng: np.random.Generator, n: int, thickness: float, mode: ThicknessMode
) -> tuple[np.ndarray, np.ndarray]:
    """The dissertation's Bézier noise on 28×28: uint8 patterns (n, 28, 28) and control-point counts (n,)."""
    n_control = rng.choice(np.array(CONTROL_POINTS), size=n, p=CONTROL_PROBS)
    control = rng.integers(0, PATTERN_SIZE, size=(n, max(CONTROL_POINTS), 2))
    points = np.zeros((n, N_CURVE_POINTS, 2), dtype=np.int64)
    for p in CONTROL_POINTS:
        chosen = n_control == p
        points[chosen] = bezier_curves(control[chosen, :p].astype(np.float64)).astype(np.int64)
    if mode == "integer":
        patterns = draw_polylines(points, int(thickness)).astype(np.uint8) * np.uint8(255)
    elif mode == "antialiased":
        patterns = np.rint(draw_polylines_antialiased(points, thickness) * np.float32(255)).astype(np.uint8)
    else:
        raise ValueError(
            f"thickness_mode={mode!r} is not valid; choose one of {', '.join(map(repr, choices(ThicknessMode)))}"
        )
    return patterns, n_control


def line_patterns(rng: np.random.Generator, n: int) -> np.ndarray:
    """The original straight-line noise on 28×28 (``make_mnist.py``): uint8 (n, 28, 28)."""
    slopes = np.tan(rng.random(n) * np.pi / 2.5)
    x = np.linspace(0.0, np.minimum(27.49, 27.49 / slopes), 56, axis=-1)  # (n, 56)
    y = slopes[:, None] * x
    lines = np.zeros((n, PATTERN_SIZE, PATTERN_SIZE), dtype=bool)
    lines[np.arange(n)[:, None], np.round(x).astype(int), np.round(y).astype(int)] = True
    other = lines[rng.permutation(n)]
    for flip in (rng.random(n) < 0.33, rng.random(n) < 0.33):  # both flips on axis 2, as in the original
        other[flip] = other[flip, :, ::-1]
    intensity = rng.random((n, PATTERN_SIZE, PATTERN_SIZE)) * 0.2 + 0.8
    return ((lines | other) * intensity * 255).astype(np.uint8)


def build_noise_pool(config, rng: np.random.Generator) -> NoisePool:
    """The pool of ``config.noise_count`` patterns for a MegapixelMNISTConfig, resized to ``config.noise_px``."""
    n = config.noise_count
    if config.noise_type == "bezier":
        base, n_control = bezier_patterns(rng, n, config.noise_thickness, config.thickness_mode)
    else:
        base, n_control = line_patterns(rng, n), np.zeros(n, dtype=np.int64)
    patterns = np.ascontiguousarray(area_resize(base, config.noise_px))
    patterns.setflags(write=False)
    return NoisePool(patterns, n_control)
