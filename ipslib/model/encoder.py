"""Patch encoders: torchvision ResNet trunks cut after ``n_res_blocks`` stages, average-pooled (spec §2).

A patch (C, p, p) becomes one embedding of width D = ``EncoderConfig.embed_dim``: the width of the last
kept stage (ResNet-18: 64·2^(n-1); ResNet-50: 4× that), or ``proj_dim`` when a trainable
Linear(trunk_dim -> proj_dim) follows the trunk (the dissertation's frozen ResNet-50 projects 2048 -> D).

Weights: ``none`` (torchvision's random init), ``imagenet_v1`` / ``imagenet_v2`` (torchvision's weights
API, downloaded on first use into the torch hub cache) or ``file`` (a local state dict, e.g. the file
torchvision would download). Choices made here, which differ from the author's code in places:

* One-channel inputs get ``Conv2d(1, 64, 7, stride=2, padding=3, bias=False)``. With pretrained weights its
  kernel is the sum of the three RGB kernels, which gives exactly the pretrained network's response to the
  grey image copied into three channels. The author's code re-created this layer with random weights.
* ``freeze`` sets ``requires_grad=False`` on every trunk parameter, conv1 included (the author's HEAD
  re-created conv1 after freezing, so it stayed trainable); the projection always trains.
* ``freeze_bn=False`` (default, the author's behaviour) lets BatchNorm layers follow the module's train/eval
  mode, so a "frozen" trunk still normalises with batch statistics in training and its running statistics
  drift. ``freeze_bn=True`` keeps every BatchNorm layer in eval mode (running statistics, no updates).

The convolutions run in channels-last memory format, which made the CPU trunk about 1.5-2x faster here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from ipslib.config import Arch, EncoderConfig, Weights

__all__ = ["PatchEncoder", "WeightsUnavailableError", "load_state_dict_file"]

_WEIGHTS = {
    ("resnet18", "imagenet_v1"): "ResNet18_Weights.IMAGENET1K_V1",
    ("resnet50", "imagenet_v1"): "ResNet50_Weights.IMAGENET1K_V1",
    ("resnet50", "imagenet_v2"): "ResNet50_Weights.IMAGENET1K_V2",
}
_STEM = ("conv1", "bn1", "relu", "maxpool")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be obtained; the message says how to supply a local file."""


def _imagenet_state_dict(arch: Arch, weights: Weights) -> dict[str, Tensor]:
    enum_name, member = _WEIGHTS[(arch, weights)].split(".")
    weight_enum = getattr(getattr(torchvision.models, enum_name), member)
    try:
        return weight_enum.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # no network, proxy, corrupt cache ...: all end the same way for the user
        raise WeightsUnavailableError(
            f"could not obtain torchvision {enum_name}.{member} ({type(err).__name__}: {err}). Without network "
            f"access, download {weight_enum.url} elsewhere and pass weights='file', "
            f"weights_path='/path/to/{Path(weight_enum.url).name}'."
        ) from err


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a torch state-dict file (a mapping of parameter names to tensors); fail with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights_path={str(path)!r}: no such file (weights='file' needs a torch "
            "state-dict file, e.g. torchvision's resnet18-f37072fd.pth)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"weights_path={str(path)!r} is not a readable torch state-dict file ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"weights_path={str(path)!r} does not hold a state dict (a mapping of names to tensors)")
    return dict(state)


def _kept_names(n_res_blocks: int) -> tuple[str, ...]:
    return _STEM + tuple(f"layer{i}" for i in range(1, n_res_blocks + 1))


def _fit_conv1(value: Tensor, in_channels: int, source: str) -> Tensor:
    """A conv1 kernel (64, C', 7, 7) for ``in_channels`` inputs; RGB kernels are summed for grey inputs."""
    if value.dim() == 4 and value.shape[1] == in_channels:
        return value
    if value.dim() == 4 and value.shape[1] == 3 and in_channels == 1:
        return value.sum(dim=1, keepdim=True)  # (64, 1, 7, 7)
    raise ValueError(
        f"{source}: conv1.weight has shape {tuple(value.shape)}, which does not fit {in_channels}-channel inputs"
    )


def _load_trunk_weights(
    net: nn.Module, state: Mapping[str, Tensor], *, kept: tuple[str, ...], in_channels: int, source: str
) -> None:
    """Copy the kept layers of a full (or trimmed) torchvision-ResNet state dict into ``net``."""
    state = {k: v for k, v in state.items() if k.split(".")[0] in kept}
    own = {k: v for k, v in net.state_dict().items() if k.split(".")[0] in kept}
    missing = sorted(set(own) - set(state))
    if missing:
        raise ValueError(
            f"{source} is not a state dict of a torchvision {type(net).__name__}-style "
            f"network: {len(missing)} keys of the kept layers are missing, e.g. "
            f"{', '.join(missing[:3])}"
        )
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise ValueError(
            f"{source}: unexpected keys for this ResNet, e.g. {', '.join(unexpected[:3])} (wrong architecture?)"
        )
    for key, value in state.items():
        if key == "conv1.weight":
            value = _fit_conv1(value, in_channels, source)
        if value.shape != own[key].shape:
            raise ValueError(
                f"{source}: {key} has shape {tuple(value.shape)}, expected "
                f"{tuple(own[key].shape)} (wrong architecture?)"
            )
        with torch.no_grad():
            own[key].copy_(value)


def _pretrained_state(config: EncoderConfig) -> tuple[dict[str, Tensor], str]:
    """The state dict named by ``config.weights`` and a description of where it came from."""
    if config.weights == "file":
        return load_state_dict_file(config.weights_path), f"weights_path={config.weights_path!r}"
    return _imagenet_state_dict(config.arch, config.weights), f"torchvision {config.arch} {config.weights}"


class PatchEncoder(nn.Module):
    """ResNet trunk -> global average pool -> flatten (-> Linear projection).

    Args:
        config: architecture, kept stages, weights, freezing, projection width.
        in_channels: 1 (grey, e.g. megapixel MNIST) or 3 (RGB).
    """

    def __init__(self, *, config: EncoderConfig, in_channels: int) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels={in_channels!r} is not valid; choose one of 1, 3")
        self.config = config
        net = getattr(torchvision.models, config.arch)(weights=None)
        if in_channels == 1:
            net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        kept = _kept_names(config.n_res_blocks)
        if config.weights != "none":
            state, source = _pretrained_state(config)
            _load_trunk_weights(net, state, kept=kept, in_channels=in_channels, source=source)
        self.trunk = nn.Sequential(*(getattr(net, name) for name in kept), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        if config.frozen:
            self.trunk.requires_grad_(False)
        self.proj = nn.Identity() if config.proj_dim is None else nn.Linear(config.trunk_dim, config.proj_dim)
        self.in_channels = in_channels
        self.embed_dim = config.embed_dim
        self.to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> PatchEncoder:
        """Set train/eval mode; with ``freeze_bn`` the BatchNorm layers stay in eval mode."""
        super().train(mode)
        if self.config.freeze_bn:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Embed patches.

        Args:
            x: (n, C, p, p) patches.
        Returns:
            (n, D) embeddings.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected patches of shape (n, {self.in_channels}, p, p); got {tuple(x.shape)}")
        x = x.contiguous(memory_format=torch.channels_last)
        return self.proj(self.trunk(x))  # (n, D)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"arch={c.arch}, n_res_blocks={c.n_res_blocks}, weights={c.weights}, frozen={c.frozen}, "
            f"freeze_bn={c.freeze_bn}, embed_dim={self.embed_dim}"
        )
