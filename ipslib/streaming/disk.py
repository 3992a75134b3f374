"""Patch sources over images on disk, read window by window: arrays (memory-mapped ``.npy``) and TIFF files.

* :class:`ArrayPatchSource` slices any array-like (``numpy.load(path, mmap_mode="r")``, a numpy array),
  so only the pages under the requested windows are read.
* :class:`TiffPatchSource` reads and decodes only the TIFF segments (tiles, or strips of untiled files)
  that intersect a requested window, through tifffile's segment decoder (any compression tifffile
  supports). Selection visits patches in a shuffled order, so consecutive patches rarely share a tile and a
  cache of recently decoded tiles is useless (measured: each tile decoded about 66 times). Each segment is
  therefore decoded once, into an uncompressed scratch copy that is memory-mapped like a ``.npy`` file
  (a deleted temporary file under ``scratch_dir``, default the system's temporary folder); later reads slice it,
  so a tiled TIFF costs about what the same pixels cost as ``.npy`` (``benchmarks/inference_scale.py --tiff``).
  Where the scratch copy would not fit on that disk, a small LRU cache of decoded segments is used instead.
* :func:`open_image_source` picks the source from the file name; PNG and JPEG (small images only) are
  decoded whole with Pillow.

Images are (H, W), (H, W, C) or (C, H, W) with C in {1, 3}; pixels are converted to float in [0, 1] by
:func:`ipslib.streaming.windows.pixels_to_float` (uint8 / 255, as the datasets do).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ipslib.config import ConfigError
from ipslib.streaming.windows import WindowSource

__all__ = ["ArrayPatchSource", "TiffPatchSource", "open_image_source", "IMAGE_SUFFIXES", "array_layout"]

IMAGE_SUFFIXES = {
    ".npy": "numpy array",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
}


def array_layout(shape: Sequence[int]) -> str:
    """``"HW"``, ``"HWC"`` or ``"CHW"`` for an image array shape (C in {1, 3} channels)."""
    if len(shape) == 2:
        return "HW"
    if len(shape) == 3 and shape[-1] in (1, 3):
        return "HWC"
    if len(shape) == 3 and shape[0] in (1, 3):
        return "CHW"
    raise ValueError(f"image shape {tuple(shape)} is not (H, W), (H, W, C) or (C, H, W) with C in {{1, 3}}")


class ArrayPatchSource(WindowSource):
    """Patches sliced from B array-likes of the same shape (memory-mapped files stay on disk).

    Args:
        arrays: images supporting ``shape``, ``dtype`` and basic slicing.
        patch_size: p; stride: s (default p).
    """

    def __init__(self, arrays: Sequence[Any], patch_size: int, stride: int | None = None) -> None:
        if not arrays or len({tuple(a.shape) for a in arrays}) != 1:
            raise ValueError("need at least one image, all of the same shape")
        self.arrays, self.layout = list(arrays), array_layout(arrays[0].shape)
        shape = arrays[0].shape
        height, width = (shape[1], shape[2]) if self.layout == "CHW" else (shape[0], shape[1])
        channels = 1 if self.layout == "HW" else shape[0] if self.layout == "CHW" else shape[2]
        super().__init__(
            height=height,
            width=width,
            channels=channels,
            dtype=arrays[0].dtype,
            batch_size=len(arrays),
            patch_size=patch_size,
            stride=stride,
        )

    def read_window(self, image: int, top: int, left: int, height: int, width: int) -> np.ndarray:
        a, rows, cols = self.arrays[image], slice(top, top + height), slice(left, left + width)
        if self.layout == "CHW":
            return np.asarray(a[:, rows, cols])
        window = np.asarray(a[rows, cols])
        return window[None] if self.layout == "HW" else np.moveaxis(window, -1, 0)


class TiffPatchSource(WindowSource):
    """Patches of B single-image TIFF files of the same size, decoding only the segments they touch.

    Args:
        paths: the TIFF files (first page of each; chunky or single-sample pixels).
        patch_size: p; stride: s (default p).
        scratch: decode each segment once into a memory-mapped scratch copy (module docstring); False, or too
            little free space under ``scratch_dir``, keeps an LRU cache of ``cache_mb`` per file instead.
        cache_mb: decoded segments kept per file without the scratch copy (least recently used dropped first).
    Attributes:
        segments_read: segments read and decoded so far (cache misses), for tests and benchmarks.
        scratch_bytes: size of the scratch copies (0 without them).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        patch_size: int,
        stride: int | None = None,
        *,
        scratch: bool = True,
        scratch_dir: str | Path | None = None,
        cache_mb: float = 64.0,
    ) -> None:
        import tifffile

        self.files = [tifffile.TiffFile(str(p)) for p in paths]
        self.pages = [f.pages.first for f in self.files]
        page = self.pages[0]
        if page.planarconfig == 2 and page.samplesperpixel > 1:
            raise ValueError(f"{paths[0]}: planar (separate) sample layout is not supported; save it chunky")
        if len({(p.imagelength, p.imagewidth, p.samplesperpixel, p.dtype) for p in self.pages}) != 1:
            raise ValueError("all TIFF files of a batch must have the same size, channels and pixel type")
        self.segment_shape = (
            (page.tilelength, page.tilewidth)
            if page.is_tiled
            else (min(page.rowsperstrip, page.imagelength), page.imagewidth)
        )
        self.segments_across = -(-page.imagewidth // self.segment_shape[1])
        super().__init__(
            height=page.imagelength,
            width=page.imagewidth,
            channels=page.samplesperpixel,
            dtype=page.dtype,
            batch_size=len(paths),
            patch_size=patch_size,
            stride=stride,
        )
        seg_bytes = self.segment_shape[0] * self.segment_shape[1] * self.channels * self.dtype.itemsize
        self.cache_size = max(4, int(cache_mb * 2**20 // seg_bytes))
        self._cache: list[OrderedDict[int, np.ndarray]] = [OrderedDict() for _ in self.pages]
        self.segments_read = 0
        self._scratch: list[tuple[Any, np.memmap, np.ndarray]] = []
        n_segments = len(page.dataoffsets)
        self.scratch_bytes = n_segments * seg_bytes * len(self.pages) if scratch else 0
        if scratch and not self._open_scratch(n_segments, Path(scratch_dir or tempfile.gettempdir())):
            self.scratch_bytes = 0

    def _open_scratch(self, n_segments: int, folder: Path) -> bool:
        """One deleted temporary file per image holding its decoded segments; False when they would not fit."""
        free = shutil.disk_usage(folder).free
        if self.scratch_bytes > free - 256 * 2**20:  # leave the disk some room
            warnings.warn(
                f"TIFF scratch copy of {self.scratch_bytes / 2**20:.0f} MB does not fit in {folder} "
                f"({free / 2**20:.0f} MB free); decoding with a {self.cache_size}-segment cache (slower)",
                stacklevel=3,
            )
            return False
        shape = (n_segments, *self.segment_shape, self.channels)
        for _ in self.pages:
            handle = tempfile.TemporaryFile(dir=folder)
            store = np.memmap(handle, dtype=self.dtype, mode="w+", shape=shape)
            self._scratch.append((handle, store, np.zeros(n_segments, dtype=bool)))
        return True

    def close(self) -> None:
        for f in self.files:
            f.close()
        for handle, store, _ in self._scratch:
            del store
            handle.close()
        self._scratch = []

    def _segment(self, image: int, index: int) -> np.ndarray:
        """Decoded segment ``index`` of one file as (length, width, C), zeros where the file has none (from the
        scratch copy, padded to the full segment shape, or from the LRU cache)."""
        if self._scratch:
            _, store, done = self._scratch[image]
            if not done[index]:
                segment = self._decode(image, index)
                store[index, : segment.shape[0], : segment.shape[1]] = segment
                done[index] = True
            return store[index]
        cache = self._cache[image]
        if index in cache:
            cache.move_to_end(index)
            return cache[index]
        cache[index] = self._decode(image, index)
        if len(cache) > self.cache_size:
            cache.popitem(last=False)
        return cache[index]

    def _decode(self, image: int, index: int) -> np.ndarray:
        """Read and decode segment ``index`` of one file: (length, width, C)."""
        page = self.pages[image]
        offset, count = page.dataoffsets[index], page.databytecounts[index]
        data = None
        if offset and count:
            handle = page.parent.filehandle
            handle.seek(offset)
            data = handle.read(count)
        decoded, _, shape = page.decode(data, index, jpegtables=page.jpegtables)
        self.segments_read += 1
        if decoded is None:
            return np.zeros((*self.segment_shape, self.channels), dtype=self.dtype)
        return np.asarray(decoded).reshape(shape[1], shape[2], shape[3])

    def read_window(self, image: int, top: int, left: int, height: int, width: int) -> np.ndarray:
        sh, sw = self.segment_shape
        out = np.zeros((height, width, self.channels), dtype=self.dtype)
        for sy in range(top // sh, (top + height - 1) // sh + 1):
            for sx in range(left // sw, (left + width - 1) // sw + 1):
                seg = self._segment(image, sy * self.segments_across + sx)
                r0, r1 = max(top, sy * sh), min(top + height, sy * sh + seg.shape[0])
                c0, c1 = max(left, sx * sw), min(left + width, sx * sw + seg.shape[1])
                out[r0 - top : r1 - top, c0 - left : c1 - left] = seg[
                    r0 - sy * sh : r1 - sy * sh, c0 - sx * sw : c1 - sx * sw
                ]
        return np.moveaxis(out, -1, 0)


def _pil_array(path: Path, channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("L" if channels == 1 else "RGB"))


def open_image_source(
    path: str | Path, patch_size: int, stride: int | None = None, *, channels: int | None = None
) -> WindowSource:
    """A one-image source for ``path`` by its suffix (.npy, .tif/.tiff, .png, .jpg/.jpeg).

    Args:
        channels: for PNG/JPEG, convert to 1 (grey) or 3 (RGB) channels; ignored otherwise.
    Raises:
        FileNotFoundError: no such file. ConfigError: an unsupported suffix or image shape.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ConfigError(
            f"--image {path}: unknown image type {path.suffix!r}; use one of {', '.join(sorted(IMAGE_SUFFIXES))}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"--image {path}: no such file")
    try:
        if suffix == ".npy":
            return ArrayPatchSource([np.load(path, mmap_mode="r")], patch_size, stride)
        if suffix in (".tif", ".tiff"):
            return TiffPatchSource([path], patch_size, stride)
        return ArrayPatchSource([_pil_array(path, channels or 1)], patch_size, stride)
    except ValueError as err:
        raise ConfigError(f"--image {path}: {err}") from None
