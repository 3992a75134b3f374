"""Checks on an image given to ``predict`` before any patch is scored, each failure naming the file.

* The file must open as its suffix says (an empty, truncated or foreign file is a :class:`DataError`).
* Pixels must be uint8, uint16, bool or float; a float image must lie in [0, 1] with no NaN or infinity
  (an image in 0..255 stored as float would otherwise pass unscaled, and a NaN pixel make every score NaN).
  The check reads the image once, band by band, so it is never held whole.
* A TIFF header must agree with the file: as many segments (tiles or strips) as the declared size needs,
  each inside the file and no larger than :data:`MAX_SEGMENT_BYTES` decoded (a damaged header asking for
  petabytes is refused instead of ending in a MemoryError).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ipslib.streaming.disk import IMAGE_SUFFIXES, TiffPatchSource, open_image_source
from ipslib.streaming.windows import WindowSource
from ipslib.system.errors import DataError
from ipslib.system.files import human_size

__all__ = ["open_checked_image", "check_pixels", "check_tiff", "MAX_SEGMENT_BYTES", "BAND_BYTES"]

MAX_SEGMENT_BYTES = 1 << 30
"""Largest decoded TIFF tile or strip accepted (1 GiB): bigger ones cannot be read window by window."""
BAND_BYTES = 64 << 20
"""Raw bytes read at a time when a float image's range is checked."""
_INTEGER_TYPES = (np.uint8, np.uint16, np.bool_)


def open_checked_image(path: str | Path, patch_size: int, stride: int, *, channels: int) -> WindowSource:
    """:func:`ipslib.streaming.disk.open_image_source` for ``path``, then :func:`check_tiff` and
    :func:`check_pixels`.

    Raises:
        FileNotFoundError: no such file. ConfigError: an unknown suffix. DataError: the file cannot be read
            as an image, or its pixels or header fail a check (module docstring).
    """
    path = Path(path)
    try:
        source = open_image_source(path, patch_size, stride, channels=channels)
    except (FileNotFoundError, DataError):
        raise
    except (OSError, ValueError, EOFError, MemoryError, SyntaxError) as err:
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            raise
        kind = IMAGE_SUFFIXES[path.suffix.lower()]
        size = path.stat().st_size
        raise DataError(
            f"--image {path}: cannot be read as a {kind} file ({size} bytes; {type(err).__name__}: "
            f"{str(err).removeprefix(f'--image {path}: ')}); it is empty, truncated or not a {kind}"
        ) from None
    if isinstance(source, TiffPatchSource):
        check_tiff(source, path)
    check_pixels(source, path)
    return source


def check_pixels(source: WindowSource, path: str | Path) -> None:
    """A supported pixel type; for a float image every pixel finite and in [0, 1] (read band by band)."""
    dtype = source.dtype
    if any(dtype == t for t in _INTEGER_TYPES):
        return
    if not np.issubdtype(dtype, np.floating):
        raise DataError(
            f"--image {path}: pixel type {dtype} is not supported; use uint8 (0..255), uint16, bool, or float "
            "in [0, 1] (e.g. save array.astype('uint8') or (array / array.max()).astype('float32'))"
        )
    row_bytes = max(1, source.width * source.channels * dtype.itemsize)
    rows = max(1, BAND_BYTES // row_bytes)
    for image in range(source.batch_size):
        for top in range(0, source.height, rows):
            band = source.read_window(image, top, 0, min(rows, source.height - top), source.width)
            finite = np.isfinite(band)
            if not finite.all():
                row = top + int(np.argwhere(~finite)[0][1])
                raise DataError(f"--image {path}: a pixel in row {row} is NaN or infinite; pixels must be finite")
            low, high = float(band.min()), float(band.max())
            if low < 0 or high > 1:
                raise DataError(
                    f"--image {path}: float pixels must lie in [0, 1], found {low:g}..{high:g} (rows {top}.."
                    f"{top + band.shape[1] - 1}); divide an image in 0..255 by 255, or save it as uint8"
                )


def check_tiff(source: TiffPatchSource, path: str | Path) -> None:
    """The header's image size agrees with the segments in the file (count, offsets, decoded size)."""
    size = Path(path).stat().st_size
    seg_h, seg_w = source.segment_shape
    seg_bytes = seg_h * seg_w * source.channels * source.dtype.itemsize
    declared = f"its header declares {source.height} x {source.width} pixels"
    if seg_bytes > MAX_SEGMENT_BYTES:
        raise DataError(
            f"--image {path}: {declared} in segments of {seg_h} x {seg_w} ({human_size(seg_bytes)} each decoded, "
            f"more than {human_size(MAX_SEGMENT_BYTES)}); the header is damaged, or save the image tiled"
        )
    for page in source.pages:
        needed = -(-page.imagelength // seg_h) * -(-page.imagewidth // seg_w)
        offsets, counts = np.asarray(page.dataoffsets), np.asarray(page.databytecounts)
        if len(offsets) != needed or len(counts) != needed:
            raise DataError(
                f"--image {path}: {declared}, which needs {needed} segments, but the file lists {len(offsets)} "
                f"({size} bytes on disk); the header is damaged or the file truncated"
            )
        if len(offsets) and int((offsets.astype(np.int64) + counts.astype(np.int64)).max()) > size:
            raise DataError(f"--image {path}: segments reach past the end of the file ({size} bytes); it is truncated")
