"""The whole image area-downsampled band by band from a streaming source, for the downsampled control model.

:func:`downsample_source` gives the same S x S image as :func:`ipslib.model.controls.area_downsample` on the
whole image (up to float rounding), reading one band of whole rows per output row: output row i averages
input rows floor(i·H/S) .. ceil((i+1)·H/S) - 1, and ``F.adaptive_avg_pool2d`` of that band to (1, S) uses
the same column windows as the pool of the whole image. Memory: one band, C·ceil(H/S + 1)·W floats (36 MB
for a 48,000-pixel-wide grey canvas at S = 256), never the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ipslib.streaming.windows import WindowSource, pixels_to_float

__all__ = ["downsample_source"]


def downsample_source(source: WindowSource, image: int, side: int) -> Tensor:
    """Image ``image`` of ``source`` area-resized to side x side, read one band of rows at a time.

    Args:
        source: any window source (its patch grid is not used).
        image: which image of the source.
        side: S.
    Returns:
        (1, C, S, S) float32 on the CPU, pixels scaled as the datasets scale them (:func:`pixels_to_float`).
    """
    height, width = source.height, source.width
    out = torch.empty(source.channels, side, side)
    for i in range(side):
        top, bottom = (i * height) // side, -(-((i + 1) * height) // side)
        band = pixels_to_float(source.read_window(image, top, 0, bottom - top, width))  # (C, h, W)
        out[:, i] = F.adaptive_avg_pool2d(band.unsqueeze(0), (1, side))[0, :, 0]  # (C, S)
    return out.unsqueeze(0)
