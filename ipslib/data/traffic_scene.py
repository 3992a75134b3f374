"""Drawing of the SYNTHETIC traffic scenes used by :mod:`ipslib.data.synthetic_traffic` (not real data).

Everything is drawn with PIL on a 1/8-resolution gradient background enlarged to full size, then a fine grain
is added to the whole scene (signs included, so a clean sign is no shortcut). Signs and the number plates use
matplotlib's bundled DejaVu Sans Bold. One 1200x1600 scene takes about 35 ms on one CPU core.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from ipslib.config import SyntheticTrafficConfig

__all__ = ["TrafficScene", "render_scene", "SIGN_NUMBERS"]

SIGN_NUMBERS = {1: "50", 2: "70", 3: "80"}
_SUPERSAMPLE = 3


@lru_cache(maxsize=1)
def _font_path() -> str:
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "fonts/ttf/DejaVuSans-Bold.ttf")


@lru_cache(maxsize=512)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(_font_path(), size)


@dataclass(frozen=True)
class TrafficScene:
    """One SYNTHETIC scene: image uint8 (H, W, 3); sign_box (row, col, height, width) or None; labels."""

    image: np.ndarray
    sign_box: np.ndarray | None
    labels: dict[str, int]
    occluded: bool = False
    blurred: bool = False


def _colour(rng: np.random.Generator, low, high) -> tuple[int, int, int]:
    """A random RGB colour between ``low`` and ``high`` per channel; scalar bounds give a grey."""
    value = rng.integers(low, high, endpoint=True)
    return (int(value),) * 3 if np.ndim(value) == 0 else tuple(int(v) for v in value)


# ------------------------------------------------------------------------------------------- scene parts
def _background(rng: np.random.Generator, height: int, width: int, horizon: int) -> Image.Image:
    """Sky gradient above the horizon, ground gradient below it, with smooth low-frequency shading.

    Built at 1/8 resolution (less for small images) and enlarged without interpolation: the steps between blocks
    are about one grey level, and interpolating a full-size image would cost more than the rest of the scene."""
    factor = max(1, min(8, min(height, width) // 150))
    small_h, small_w = -(-height // factor), -(-width // factor)
    cut = horizon * small_h / height
    rows = np.arange(small_h, dtype=np.float32)[:, None]
    sky_top = rng.uniform((70, 110, 170), (150, 190, 240))
    sky_low = np.minimum(sky_top + rng.uniform(20, 60), 250)
    ground_far = rng.uniform((80, 90, 50), (140, 150, 100))
    ground_near = ground_far * rng.uniform(0.6, 0.9)
    t_sky = np.clip(rows / max(cut, 1), 0, 1)
    t_ground = np.clip((rows - cut) / max(small_h - cut, 1), 0, 1)
    column = np.where(
        rows < cut, sky_top * (1 - t_sky) + sky_low * t_sky, ground_far * (1 - t_ground) + ground_near * t_ground
    )  # (h, 3)
    coarse = Image.fromarray(rng.normal(0, 1, (height // 48 + 2, width // 48 + 2)).astype(np.float32))  # "F"
    shade = np.asarray(coarse.resize((small_w, small_h), Image.BILINEAR)) * rng.uniform(3, 10)  # (h, w)
    small = np.clip(column[:, None, :] + shade[:, :, None], 0, 255).astype(np.uint8)  # (h, w, 3)
    return Image.fromarray(small).resize((width, height), Image.NEAREST)


def _road(draw: ImageDraw.ImageDraw, rng: np.random.Generator, height: int, width: int, horizon: int) -> None:
    """Road trapezoid to a vanishing point, edge lines and perspective-shortened centre dashes."""
    vx = width * rng.uniform(0.3, 0.7)
    bottom = vx + width * rng.uniform(-0.25, 0.25)
    half = width * rng.uniform(0.3, 0.6)
    top_half = width * 0.01
    grey = int(rng.integers(70, 130))
    draw.polygon(
        [(vx - top_half, horizon), (vx + top_half, horizon), (bottom + half, height), (bottom - half, height)],
        fill=(grey, grey, grey + int(rng.integers(0, 10))),
    )
    line = max(2.0, width * 0.008)
    for side in (-1, 1):
        x0, x1 = vx + side * top_half, bottom + side * half * 0.92
        draw.polygon([(x0, horizon), (x0 + 1, horizon), (x1 + line, height), (x1 - line, height)], fill=(235, 235, 225))
    s, yellow = 0.04, rng.random() < 0.3
    while s < 1:
        e = min(1.0, s * 1.35)
        y0, y1 = horizon + (height - horizon) * s, horizon + (height - horizon) * e
        xa, xb = vx + (bottom - vx) * s, vx + (bottom - vx) * e
        wa, wb = line * s, line * e
        draw.polygon(
            [(xa - wa, y0), (xa + wa, y0), (xb + wb, y1), (xb - wb, y1)],
            fill=(230, 200, 40) if yellow else (240, 240, 235),
        )
        s = e * 1.4


def _clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, height: int, width: int, horizon: int) -> None:
    """Buildings and trees standing on the horizon, and a few poles."""
    for _ in range(int(rng.integers(4, 14))):
        x, w, h = width * rng.random(), width * rng.uniform(0.02, 0.12), height * rng.uniform(0.03, 0.2)
        if rng.random() < 0.5:
            draw.rectangle([x, horizon - h, x + w, horizon + 2], fill=_colour(rng, (60, 50, 40), (200, 190, 180)))
        else:
            draw.ellipse([x, horizon - h, x + w, horizon + h * 0.2], fill=_colour(rng, (20, 50, 15), (70, 120, 60)))
    for _ in range(int(rng.integers(1, 5))):
        x, w = width * rng.random(), max(2.0, width * 0.004)
        top = horizon - height * rng.uniform(0.05, 0.3)
        draw.rectangle([x, top, x + w, horizon + height * rng.uniform(0.05, 0.4)], fill=_colour(rng, 90, 150))


def _distractor(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: list[float], kind: int) -> None:
    """A confuser: 0 red ring without a number, 1 warning triangle, 2 blue sign, 3 plate with digits, 4 blob."""
    x0, y0, x1, y1 = box
    d = x1 - x0
    red = _colour(rng, (170, 0, 10), (235, 50, 60))
    if kind == 0:
        draw.ellipse(box, fill=red)
        inner = d * rng.uniform(0.12, 0.2)
        fill = (240, 240, 235) if rng.random() < 0.5 else (30, 80, 170)
        draw.ellipse([x0 + inner, y0 + inner, x1 - inner, y1 - inner], fill=fill)
        if rng.random() < 0.5:
            draw.line([(x0 + inner, y0 + inner), (x1 - inner, y1 - inner)], fill=red, width=max(1, int(inner)))
    elif kind == 1:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=red)
        k = d * 0.2
        draw.polygon(
            [((x0 + x1) / 2, y0 + 1.6 * k), (x1 - k, y1 - 0.6 * k), (x0 + k, y1 - 0.6 * k)],
            fill=(240, 230, 120) if rng.random() < 0.5 else (240, 240, 235),
        )
    elif kind == 2:
        draw.rectangle(box, fill=(20, 70, 160), outline=(240, 240, 240), width=max(1, int(d * 0.05)))
        draw.ellipse([x0 + d * 0.3, y0 + d * 0.3, x1 - d * 0.3, y1 - d * 0.3], fill=(240, 240, 240))
    elif kind == 3:
        fill = (20, 110, 60) if rng.random() < 0.5 else (20, 70, 160)
        draw.rectangle([x0 - d * 0.3, y0 + d * 0.2, x1 + d * 0.3, y1 - d * 0.2], fill=fill)
        text = f"{'E' if rng.random() < 0.5 else ''}{int(rng.integers(1, 100))}"
        draw.text(
            ((x0 + x1) / 2, (y0 + y1) / 2), text, font=_font(max(6, int(d * 0.4))), fill=(245, 245, 245), anchor="mm"
        )
    else:
        draw.ellipse(box, fill=_colour(rng, (0, 0, 0), (255, 255, 255)))


def _sign_tile(rng: np.random.Generator, diameter: int, label: int) -> Image.Image:
    """RGBA speed-limit sign of ``diameter`` pixels, drawn supersampled for smooth edges."""
    size = diameter * _SUPERSAMPLE
    tile = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(tile)
    draw.ellipse([0, 0, size - 1, size - 1], fill=(*_colour(rng, (185, 0, 15), (235, 40, 55)), 255))
    ring = size * rng.uniform(0.13, 0.17)
    white = int(rng.integers(225, 256))
    draw.ellipse([ring, ring, size - 1 - ring, size - 1 - ring], fill=(white, white, white - 5, 255))
    draw.text(
        (size / 2, size / 2), SIGN_NUMBERS[label], font=_font(int(size * 0.38)), fill=(15, 15, 15, 255), anchor="mm"
    )
    return tile.resize((diameter, diameter), Image.BOX)


def _blur_region(image: Image.Image, box: tuple[int, int, int, int], radius: float) -> None:
    """Gaussian-blur a disc around the sign in place (the scene around it blurs with it)."""
    top, left, d, _ = box
    margin = int(np.ceil(2 * radius)) + 1
    crop = (
        max(0, left - margin),
        max(0, top - margin),
        min(image.width, left + d + margin),
        min(image.height, top + d + margin),
    )
    region = image.crop(crop).filter(ImageFilter.GaussianBlur(radius))
    mask = Image.new("L", region.size, 0)
    ImageDraw.Draw(mask).ellipse(
        [
            left - crop[0] - margin / 2,
            top - crop[1] - margin / 2,
            left - crop[0] + d + margin / 2,
            top - crop[1] + d + margin / 2,
        ],
        fill=255,
    )
    image.paste(region, crop[:2], mask.filter(ImageFilter.GaussianBlur(margin / 2)))


def _occlude(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple[int, int, int, int]) -> None:
    """Cover 20-50 % of the sign's width or height from one side with foliage or a grey object."""
    top, left, d, _ = box
    depth, side = d * rng.uniform(0.2, 0.5), int(rng.integers(4))
    extent = d * rng.uniform(0.3, 1.0)
    rects = [
        (left - extent, top - extent, left + depth, top + d + extent),  # from the left
        (left + d - depth, top - extent, left + d + extent, top + d + extent),  # from the right
        (left - extent, top - extent, left + d + extent, top + depth),  # from above
        (left - extent, top + d - depth, left + d + extent, top + d + extent),
    ]  # from below
    x0, y0, x1, y1 = rects[side]
    if rng.random() < 0.5:
        draw.rectangle([x0, y0, x1, y1], fill=_colour(rng, 40, 110))
        return
    for _ in range(int(rng.integers(4, 9))):  # foliage: overlapping leaves clustered in the band
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        r = d * rng.uniform(0.1, 0.25)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_colour(rng, (20, 60, 15), (70, 130, 60)))
    draw.rectangle(
        [max(x0, left - 1), max(y0, top - 1), min(x1, left + d), min(y1, top + d)],
        fill=_colour(rng, (20, 60, 15), (70, 130, 60)),
    )


def _texture(rng: np.random.Generator, image: Image.Image, amplitude: int) -> np.ndarray:
    """Add a fine grain of +-amplitude (a random 128x128 tile, repeated) to the whole scene, signs included."""
    tile = Image.fromarray(rng.integers(128 - amplitude, 128 + amplitude, (128, 128, 3), endpoint=True, dtype=np.uint8))
    grain = Image.new("RGB", image.size)
    for y in range(0, image.height, 128):
        for x in range(0, image.width, 128):
            grain.paste(tile, (x, y))
    return np.array(ImageChops.add(image, grain, scale=1.0, offset=-128))  # writable copy


def render_scene(config: SyntheticTrafficConfig, rng: np.random.Generator, label: int) -> TrafficScene:
    """Draw one SYNTHETIC scene of class ``label`` from ``rng`` (called after the label draw)."""
    height, width = config.image_height, config.image_width
    horizon = int(height * rng.uniform(0.3, 0.5))
    image = _background(rng, height, width, horizon)
    draw = ImageDraw.Draw(image)
    _road(draw, rng, height, width, horizon)
    _clutter(draw, rng, height, width, horizon)
    lo, hi = config.sign_min_size, config.sign_max_size
    for _ in range(config.n_distractors):
        d = float(rng.uniform(lo, min(1.3 * hi, min(height, width))))
        x, y = rng.uniform(0, width - d), rng.uniform(0, height - d)
        _distractor(draw, rng, [x, y, x + d, y + d], int(rng.integers(5)))
    box, occluded, blurred = None, False, False
    if label > 0:
        d = int(rng.integers(lo, hi, endpoint=True))
        top, left = int(rng.integers(0, height - d + 1)), int(rng.integers(0, width - d + 1))
        pole = max(2.0, d * 0.08)
        draw.rectangle(
            [left + d / 2 - pole / 2, top + d / 2, left + d / 2 + pole / 2, min(height, top + d * rng.uniform(1.5, 4))],
            fill=_colour(rng, 100, 160),
        )
        tile = _sign_tile(rng, d, label)
        image.paste(tile, (left, top), tile)
        box = (top, left, d, d)
        blurred = bool(rng.random() < config.blur_prob)
        if blurred:
            _blur_region(image, box, d * rng.uniform(0.03, 0.07))
        occluded = bool(rng.random() < config.occlusion_prob)
        if occluded:
            _occlude(draw, rng, box)
    pixels = _texture(rng, image, amplitude=int(rng.integers(4, 12)))
    sign_box = None if box is None else np.array(box, dtype=np.int64)
    return TrafficScene(pixels, sign_box, {"sign": label}, occluded, blurred)
