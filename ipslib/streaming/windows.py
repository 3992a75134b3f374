"""Patch sources that cut patches window by window, and a foreground filter for mostly blank images.

IPS keeps at most M + I embeddings in memory, so its memory need not grow with the image, provided the
patches themselves are produced on demand. A :class:`WindowSource` is a
:class:`~ipslib.model.sources.PatchSource` that reads each requested patch as a window of the image (rendered
from a sparse description, :mod:`ipslib.data.mnist_patches`; read from disk, :mod:`ipslib.streaming.disk`) and
never holds more than the requested patches.

Foreground filter (as in whole-slide pipelines): :class:`BlankSkippingEncoder` gives every background
patch the embedding of one blank patch, computed once per model state, instead of encoding it. A patch is
background when the fraction of its pixels that differ from ``blank_value`` is at most ``min_foreground``.

* ``min_foreground=0`` ("exactly blank"): only patches identical to the blank patch are skipped. In eval
  mode the encoder maps identical inputs to identical embeddings, so selection (indices and scores) is the
  same as without the filter, up to the last bits that a batched convolution may differ in.
* ``min_foreground > 0``: nearly blank patches are treated as blank; selection is approximate (a kept
  patch of little content may be scored as if empty).

The filter acts only in eval mode without gradients (selection always; aggregation at inference): in
training, BatchNorm statistics depend on the whole batch. It composes with
``dedup_blank`` (:func:`ipslib.model.selection.encode_unique`), which encodes each distinct patch of a chunk once:
the filter removes the remaining once-per-chunk encoding of the blank patch.

Legend: B images, k requested patches per image, C channels, p patch side, s stride, D embedding width.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ipslib.model.patches import grid_shape

__all__ = ["WindowSource", "pixels_to_float", "BlankSkippingEncoder", "skip_blank_patches"]


def pixels_to_float(pixels: np.ndarray) -> Tensor:
    """Raw pixels to float32 in [0, 1] the way the datasets convert them.

    uint8 is divided by 255 in float32 (bit-identical to :func:`ipslib.data.megapixel_mnist.to_float`),
    uint16 by 65535, bool becomes 0/1 and float images are passed through as float32.
    """
    if pixels.dtype == np.uint8 or pixels.dtype == np.uint16:
        out = np.empty(pixels.shape, dtype=np.float32)
        np.divide(pixels, np.float32(np.iinfo(pixels.dtype).max), out=out, dtype=np.float32)
        return torch.from_numpy(out)
    if pixels.dtype == np.bool_ or np.issubdtype(pixels.dtype, np.floating):
        return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
    raise TypeError(f"pixel type {pixels.dtype} is not supported; use uint8, uint16, bool or float")


class WindowSource:
    """Base of the streaming sources: a batch of B images of the same size, cut into a patch grid.

    Subclasses implement :meth:`read_window` and may override :meth:`blank_mask` to say, without reading,
    which patches are certainly blank (all zeros).

    Attributes:
        height, width: image size in pixels; channels: C; dtype: raw pixel type.
        patch_size: p; stride: s; grid: (rows, cols); n_patches: N; batch_size: B.
    """

    def __init__(
        self,
        *,
        height: int,
        width: int,
        channels: int,
        dtype: np.dtype,
        batch_size: int,
        patch_size: int,
        stride: int | None = None,
    ) -> None:
        self.height, self.width, self.channels = int(height), int(width), int(channels)
        self.dtype, self.batch_size = np.dtype(dtype), int(batch_size)
        self.patch_size = int(patch_size)
        self.stride = self.patch_size if stride is None else int(stride)
        self.grid = grid_shape(self.height, self.width, self.patch_size, self.stride)
        self.n_patches = self.grid[0] * self.grid[1]

    def read_window(self, image: int, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Raw pixels (C, height, width) of one image; the window lies inside the image."""
        raise NotImplementedError

    def blank_mask(self, image: int, indices: np.ndarray) -> np.ndarray:
        """bool (k,): True where patch ``indices`` of ``image`` is certainly all zeros (default: unknown)."""
        return np.zeros(len(indices), dtype=bool)

    def origins(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel (top, left) of patches ``indices`` (row-major grid order)."""
        rows, cols = np.divmod(np.asarray(indices, dtype=np.int64), self.grid[1])
        return rows * self.stride, cols * self.stride

    def raw_patches(self, image: int, indices: np.ndarray) -> np.ndarray:
        """Raw patches (k, C, p, p) of one image; blank ones are filled without reading."""
        p = self.patch_size
        out = np.zeros((len(indices), self.channels, p, p), dtype=self.dtype)
        tops, lefts = self.origins(indices)
        for j in np.flatnonzero(~self.blank_mask(image, indices)):
            out[j] = self.read_window(image, int(tops[j]), int(lefts[j]), p, p)
        return out

    def thumbnail(self, image: int, max_side: int = 1024) -> np.ndarray:
        """Max-pooled float32 thumbnail (h, w) of one image, read in bands of whole thumbnail rows.

        Each thumbnail pixel is the maximum over channels and a ``factor`` × ``factor`` block,
        ``factor = ceil(max(H, W) / max_side)``; the image is never held whole.
        """
        factor = max(1, -(-max(self.height, self.width) // max_side))
        rows, cols = -(-self.height // factor), -(-self.width // factor)
        out = np.zeros((rows, cols), dtype=np.float32)
        for r in range(rows):
            top = r * factor
            band = self.read_window(image, top, 0, min(factor, self.height - top), self.width).max(axis=0)
            pad = cols * factor - self.width
            if pad:
                band = np.pad(band, ((0, 0), (0, pad)))
            out[r] = pixels_to_float(band.reshape(band.shape[0], cols, factor).max(axis=(0, 2))).numpy()
        return out

    def take(self, indices: Tensor) -> Tensor:
        """(B, k) patch indices -> (B, k, C, p, p) float32 patches on the CPU."""
        if indices.dim() != 2 or indices.shape[0] != self.batch_size:
            raise ValueError(f"indices must be (B={self.batch_size}, k); got {tuple(indices.shape)}")
        idx = indices.detach().cpu().numpy()
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_patches):
            raise IndexError(f"patch indices must be in [0, {self.n_patches}); got {idx.min()}..{idx.max()}")
        raw = np.stack([self.raw_patches(b, idx[b]) for b in range(self.batch_size)])  # (B, k, C, p, p)
        return pixels_to_float(raw)


class BlankSkippingEncoder(nn.Module):
    """A patch encoder that, in eval mode, gives background patches one shared embedding (module docstring).

    Args:
        encoder: maps (n, C, p, p) to (n, D).
        min_foreground: largest fraction of non-blank pixels for which a patch counts as background
            (0: exactly blank patches only, selection unchanged).
        blank_value: the pixel value of an empty patch.
    Attributes:
        skipped: background patches answered from the cache since construction.
    """

    def __init__(self, encoder: nn.Module, *, min_foreground: float = 0.0, blank_value: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= min_foreground < 1.0:
            raise ValueError(f"min_foreground={min_foreground!r} is out of range; it must be in [0, 1)")
        self.encoder, self.min_foreground, self.blank_value = encoder, float(min_foreground), float(blank_value)
        self._cache: dict[tuple, Tensor] = {}
        self.skipped = 0

    def train(self, mode: bool = True) -> BlankSkippingEncoder:
        self._cache.clear()  # weights may change while training
        return super().train(mode)

    def background(self, x: Tensor) -> Tensor:
        """(n, C, p, p) -> (n,) bool, True for background patches."""
        fraction = (x != self.blank_value).flatten(1).float().mean(dim=1)  # (n,)
        return fraction <= self.min_foreground

    def _blank_embedding(self, x: Tensor) -> Tensor:
        key = (tuple(x.shape[1:]), x.device, x.dtype)
        if key not in self._cache:
            blank = torch.full((1, *x.shape[1:]), self.blank_value, device=x.device, dtype=x.dtype)
            self._cache[key] = self.encoder(blank)[0]  # (D,)
        return self._cache[key]

    def forward(self, x: Tensor) -> Tensor:
        if self.training or torch.is_grad_enabled():  # a cached embedding must not carry a graph
            return self.encoder(x)
        background = self.background(x)
        n_back = int(background.sum())
        if n_back == 0:
            return self.encoder(x)
        blank = self._blank_embedding(x)
        out = blank.expand(x.shape[0], -1).clone()  # (n, D)
        if n_back < x.shape[0]:
            out[~background] = self.encoder(x[~background]).to(out.dtype)
        self.skipped += n_back
        return out


@contextlib.contextmanager
def skip_blank_patches(
    net: nn.Module, *, min_foreground: float = 0.0, blank_value: float = 0.0
) -> Iterator[BlankSkippingEncoder]:
    """Inside the block, ``net.encoder`` is wrapped in a :class:`BlankSkippingEncoder` (restored after).

    Wrap after loading weights: the wrapper changes the state-dict keys while it is in place.
    """
    original = net.encoder
    wrapper = BlankSkippingEncoder(original, min_foreground=min_foreground, blank_value=blank_value)
    wrapper.train(original.training)
    net.encoder = wrapper
    try:
        yield wrapper
    finally:
        net.encoder = original
