"""Control arms without patch selection (issue 16): the whole image, downsampled, through the same trunk and heads.

:class:`DownsampledNet` is what a practitioner would try first: area-resize the image to S x S pixels
(``downsample_size``; the mean over each output pixel's window, as ``F.interpolate(mode="area")``; the
aspect ratio is not kept), encode it with the ResNet trunk of the encoder settings (``arch``,
``n_res_blocks``, weights, in-channels) followed by global average pooling, and classify the one embedding
with the IPS aggregator and per-task heads. Attention over a single key is 1, so each task token becomes
LayerNorm(W_o·W_v·x + q_t), then the shared MLP and the task's linear head: the IPS heads applied to one
embedding, with the same losses and metrics.

It plugs into the engine like IPSNet (:func:`ipslib.engine.steps.select_batch` hands it whole images
instead of patches): :meth:`DownsampledNet.select` returns the resized images as a one-"patch"
Selection, :meth:`DownsampledNet.forward_features` encodes and aggregates it. :func:`build_model` builds
the network a config names. The ``random`` and ``all`` selection arms are IPSNet with
``ips.selection`` set (:mod:`ipslib.model.control_selection`).

Legend: B batch, C channels, H, W image size, S downsampled side, D embedding width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ipslib.config import AggregatorConfig, EncoderConfig, RunConfig, TaskSpec
from ipslib.model.encoder import PatchEncoder
from ipslib.model.ips import IPSNet
from ipslib.model.selection import Selection
from ipslib.model.transformer import Aggregator, AggregatorOutput

__all__ = ["DownsampledNet", "area_downsample", "build_model"]


def area_downsample(images: Tensor, side: int) -> Tensor:
    """Resize to side x side by averaging each output pixel's window (``F.adaptive_avg_pool2d``).

    Output pixel (i, j) is the mean of input rows floor(i·H/S) .. ceil((i+1)·H/S) - 1 and the columns
    likewise, i.e. ``F.interpolate(mode="area")``; windows are separable, which is what lets
    :func:`ipslib.engine.predict.downsample_source` compute the same image band by band.

    Args:
        images: (B, C, H, W).
        side: S.
    Returns:
        (B, C, S, S) in the input's dtype.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W); got shape {tuple(images.shape)}")
    return F.adaptive_avg_pool2d(images, (side, side))


class DownsampledNet(nn.Module):
    """Downsampled whole image -> ResNet trunk + global average pool -> the IPS aggregator and heads.

    Args:
        encoder: trunk settings (D = ``encoder.embed_dim``).
        aggregator: heads, widths and dropout of the aggregator.
        tasks: task name -> TaskSpec; one query token per task, in this order.
        in_channels: 1 or 3.
        downsample_size: S, the side the image is resized to.
    """

    def __init__(
        self,
        *,
        encoder: EncoderConfig,
        aggregator: AggregatorConfig,
        tasks: dict[str, TaskSpec],
        in_channels: int,
        downsample_size: int,
    ) -> None:
        super().__init__()
        if downsample_size < 1:
            raise ValueError(f"downsample_size={downsample_size!r} must be >= 1")
        self.tasks, self.downsample_size = dict(tasks), downsample_size
        self.encoder = PatchEncoder(config=encoder, in_channels=in_channels)
        self.aggregator = Aggregator(embed_dim=encoder.embed_dim, tasks=tasks, config=aggregator)
        self.embed_dim = encoder.embed_dim

    @classmethod
    def from_config(cls, cfg: RunConfig) -> DownsampledNet:
        """Build from a run configuration (encoder, aggregator, tasks, channels, ``downsample_size``)."""
        return cls(
            encoder=cfg.encoder,
            aggregator=cfg.aggregator,
            tasks=cfg.tasks,
            in_channels=cfg.in_channels,
            downsample_size=cfg.ips.downsample_size,
        )

    @property
    def device(self) -> torch.device:
        return self.aggregator.attention.query.device

    def _to_model(self, x: Tensor) -> Tensor:
        return x.to(device=self.device, dtype=self.aggregator.attention.query.dtype)

    def select(self, images: Tensor) -> Selection:
        """The resized images as a one-"patch" selection (no parameters involved).

        Args:
            images: (B, C, H, W) whole images, any device (an image already S x S passes unchanged).
        Returns:
            Selection with patches (B, 1, C, S, S), indices (B, 1) zeros and scores (B, 1) ones, on the
            model's device.
        """
        if not isinstance(images, Tensor) or images.dim() != 4:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise TypeError(f"DownsampledNet.select takes whole images (B, C, H, W), not patches; got {got}")
        side = self.downsample_size
        small = images if images.shape[-2:] == (side, side) else area_downsample(images, side)
        b = images.shape[0]
        ones = torch.ones(b, 1, device=self.device)
        return Selection(
            patches=self._to_model(small).unsqueeze(1),  # (B, 1, C, S, S)
            indices=torch.zeros(b, 1, dtype=torch.long, device=self.device),
            scores=ones,
        )

    def forward_features(self, selection: Selection) -> AggregatorOutput:
        """Encode the resized images in the current mode and classify them.

        Args:
            selection: from :meth:`select` (patches (B, 1, C, S, S)).
        Returns:
            AggregatorOutput: logits (B, n_classes) per task, attention (B, H, T, 1) (all ones), head outputs
            (B, H, T, D_v), no branch logits.
        """
        x = self._to_model(selection.patches)
        b, k = x.shape[:2]
        emb = self.encoder(x.flatten(0, 1)).view(b, k, -1)  # (B, 1, D)
        return self.aggregator(emb)

    def forward(self, selection: Selection) -> dict[str, Tensor]:
        """Task name -> logits (B, n_classes) (see :meth:`forward_features`)."""
        return self.forward_features(selection).logits


def build_model(cfg: RunConfig) -> IPSNet | DownsampledNet:
    """The network ``cfg`` describes: :class:`IPSNet` (any ``selection``) or :class:`DownsampledNet`."""
    if cfg.ips.architecture == "downsampled":
        return DownsampledNet.from_config(cfg)
    return IPSNet.from_config(cfg)
