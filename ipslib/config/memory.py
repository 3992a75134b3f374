"""How much memory a pass of many patches through the ResNet trunk needs: the estimate behind ``selection: all``.

IPS bounds the gradient pass at B·M patches; the ``all`` control arm sends every one of the B·N patches of
a batch through the trunk with gradients, so its memory grows with the image. :func:`pass_memory_mb`
estimates that memory from the configuration alone, before anything is allocated, and
:func:`check_all_selection` refuses a configuration whose estimate exceeds ``memory_budget_mb``.

The estimate (float32, 4 bytes an element) counts, per patch of side p with C channels,

* the input patch, C·p² elements (the patches of the selection are held on the device);
* with gradients through a trainable trunk: the output of every convolution, BatchNorm and max-pool layer
  of the kept stages (:func:`trunk_layer_sizes`), which autograd keeps for the backward pass (the in-place
  ReLUs reuse the BatchNorm outputs and add nothing);
* without gradients (evaluation, prediction) or through a frozen trunk: only the largest of those layer
  outputs, the most the forward holds at once besides its input.

It leaves out the weights, optimiser state, the aggregator (B·N embeddings of width D, small beside the
trunk) and allocator and convolution-workspace overhead, so a real peak is somewhat higher: the budget
should leave headroom. Example: megapixel MNIST at 1500² (N = 900 patches of 50 px), ResNet-18 with two
stages, B = 16: 240,064 activation elements and 2,500 pixels a patch, 14,400 patches: 13,324 MiB (13.0 GiB).
"""

from __future__ import annotations

import math

from ipslib.config.base import ConfigError
from ipslib.config.model import EncoderConfig

__all__ = ["trunk_layer_sizes", "pass_memory_mb", "check_all_selection", "BYTES_PER_ELEMENT"]

BYTES_PER_ELEMENT = 4  # float32
_BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet50": (3, 4, 6, 3)}  # torchvision's blocks per stage
_WIDTHS = (64, 128, 256, 512)


def _half(side: int) -> int:
    """Output side of a stride-2 convolution or pooling with 'same' padding: ceil(side / 2)."""
    return -(-side // 2)


def _basic_block(width: int, side_in: int, stride: int, downsample: bool) -> tuple[list[int], int]:
    side = _half(side_in) if stride == 2 else side_in
    sizes = [width * side * side] * 4  # conv1, bn1, conv2, bn2
    if downsample:
        sizes += [width * side * side] * 2  # 1x1 conv and its BatchNorm
    return sizes, side


def _bottleneck(width: int, side_in: int, stride: int, downsample: bool) -> tuple[list[int], int]:
    side = _half(side_in) if stride == 2 else side_in
    sizes = [width * side_in * side_in] * 2  # conv1 (1x1), bn1
    sizes += [width * side * side] * 2  # conv2 (3x3, carries the stride), bn2
    sizes += [4 * width * side * side] * 2  # conv3 (1x1, expansion 4), bn3
    if downsample:
        sizes += [4 * width * side * side] * 2
    return sizes, side


def trunk_layer_sizes(encoder: EncoderConfig, side: int) -> list[int]:
    """Output elements per sample of every convolution, BatchNorm and max-pool layer of the kept trunk.

    Args:
        encoder: architecture and number of kept stages (``n_res_blocks``).
        side: p, the side of the square input.
    Returns:
        One count per layer, in forward order (stem: conv1, bn1, maxpool; then the blocks).
    """
    stem = _half(side)  # conv1: 7x7, stride 2, padding 3
    side = _half(stem)  # maxpool: 3x3, stride 2, padding 1
    sizes = [64 * stem * stem] * 2 + [64 * side * side]
    block = _basic_block if encoder.arch == "resnet18" else _bottleneck
    expansion = 1 if encoder.arch == "resnet18" else 4
    channels = 64
    for stage in range(encoder.n_res_blocks):
        width = _WIDTHS[stage]
        for i in range(_BLOCKS[encoder.arch][stage]):
            stride = 2 if stage > 0 and i == 0 else 1
            downsample = i == 0 and (stride == 2 or channels != width * expansion)
            more, side = block(width, side, stride, downsample)
            sizes += more
            channels = width * expansion
    return sizes


def pass_memory_mb(encoder: EncoderConfig, *, in_channels: int, side: int, n_inputs: int, gradients: bool) -> float:
    """Estimated MiB of one trunk pass over ``n_inputs`` inputs of ``side`` pixels (module docstring).

    Args:
        encoder: the trunk; a frozen one (``encoder.frozen``) keeps no activations for the backward pass.
        in_channels: C.
        side: p, the input side (a patch, or the downsampled image).
        n_inputs: how many inputs go through at once (B·N for ``selection: all`` in training).
        gradients: whether the pass is differentiated (training) or not (evaluation, prediction).
    """
    sizes = trunk_layer_sizes(encoder, side)
    kept = sum(sizes) if gradients and not encoder.frozen else max(sizes)
    per_input = in_channels * side * side + kept
    return n_inputs * per_input * BYTES_PER_ELEMENT / 2**20


def check_all_selection(
    encoder: EncoderConfig,
    *,
    in_channels: int,
    patch_size: int,
    n_patches: int,
    batch_size: int,
    budget_mb: float,
    gradients: bool = True,
    where: str = "selection='all'",
) -> float:
    """The estimate of :func:`pass_memory_mb` for B·N patches; ConfigError when it exceeds ``budget_mb``.

    Returns:
        The estimate in MiB.
    """
    n_inputs = batch_size * n_patches
    estimate = pass_memory_mb(encoder, in_channels=in_channels, side=patch_size, n_inputs=n_inputs, gradients=gradients)
    if estimate > budget_mb:
        mode = "with gradients" if gradients else "without gradients"
        raise ConfigError(
            f"{where} sends B·N = {batch_size}·{n_patches} = {n_inputs:,} patches of {patch_size} px through the "
            f"trunk at once {mode}: estimated {math.ceil(estimate):,} MiB, above memory_budget_mb="
            f"{budget_mb:g} (raise memory_budget_mb if the device holds it, or use selection='ips' or 'random')"
        )
    return estimate
