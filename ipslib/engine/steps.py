"""One training or evaluation step of IPS (spec §1.2-§1.3, §6): selection without gradients, then the
gradient pass over the B·M kept patches and one AdamW step; an epoch of them; evaluation.

Legend: B images per batch, N patches per image, M selected, C channels, p patch side.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from ipslib.config import RunConfig
from ipslib.engine import runtime
from ipslib.engine.checkpoint import TrainState
from ipslib.engine.metrics import EpochMeter
from ipslib.engine.schedule import WarmupCosine
from ipslib.model.patches import patchify
from ipslib.model.selection import Selection
from ipslib.model.sources import sub_batch
from ipslib.system.errors import NonFiniteError

__all__ = [
    "Context",
    "TrainState",
    "select_batch",
    "gradient_step",
    "train_step",
    "train_one_epoch",
    "evaluate",
    "build_optimizer",
    "prepare_model",
    "to_device",
]


@dataclass(frozen=True)
class Context:
    """What every step needs besides the model: config, device, precision."""

    cfg: RunConfig
    device: torch.device

    def autocast(self):
        return runtime.autocast(self.device, self.cfg.train.amp)


# ------------------------------------------------------------------------------------------- steps
def select_batch(net: torch.nn.Module, images: torch.Tensor, ctx: Context) -> Selection:
    """IPS over a batch, ``sub_batch_size`` images at a time; the selection is moved to the device.

    With ``architecture: downsampled`` the net receives the whole images and resizes them itself
    (:class:`ipslib.model.controls.DownsampledNet`; one "patch" (C, S, S) per image).

    Under ``amp: bf16`` the encoder of the selection runs in bfloat16; the model scores and ranks in float32.

    Args:
        images: (B, C, H, W) on the CPU; patches are cut as views and stay there until IPS moves chunks.
            Or a batch that is already a patch source (:class:`~ipslib.model.sources.PatchSource`, e.g. the
            layout-cut items of :func:`ipslib.data.build_dataset` with ``patches=True``).
    Returns:
        The net's Selection with patches (B, M, C, p, p), indices (B, M), scores (B, M) on the device.
    """
    ips = ctx.cfg.ips
    whole = ips.architecture == "downsampled" or not isinstance(images, torch.Tensor)
    inputs = images if whole else patchify(images, ips.patch_size, ips.stride)  # (B, N, C, p, p)
    size = ctx.cfg.train.sub_batch_size or len(images)
    with torch.no_grad(), ctx.autocast():
        parts = [net.select(sub_batch(inputs, i, i + size)) for i in range(0, len(images), size)]
    return _to_device(_concat(parts), ctx.device)


def _concat(parts: list[Selection]) -> Selection:
    if len(parts) == 1:
        return parts[0]
    names = [f.name for f in dataclasses.fields(Selection)]
    return Selection(**{n: torch.cat([getattr(p, n) for p in parts]) for n in names})


def _to_device(selection: Selection, device: torch.device) -> Selection:
    moved = {f.name: to_device(getattr(selection, f.name), device) for f in dataclasses.fields(Selection)}
    return dataclasses.replace(selection, **moved)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``. A CPU tensor bound for a GPU goes from pinned memory without blocking the host
    (the loader pins batches on the CUDA path; others are pinned here); elsewhere a plain ``.to``."""
    if device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    return (tensor if tensor.is_pinned() else tensor.pin_memory()).to(device, non_blocking=True)


def _forward_losses(
    net: torch.nn.Module, selection: Selection, targets: dict[str, torch.Tensor], ctx: Context
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    from ipslib.engine.losses import compute_losses

    with ctx.autocast():
        output = net.forward_features(selection)
        losses = compute_losses(output, targets, tasks=ctx.cfg.tasks, regulariser=ctx.cfg.regulariser)
    return losses, output.logits


def gradient_step(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    selection: Selection,
    targets: dict[str, torch.Tensor],
    ctx: Context,
    lr: float,
) -> tuple[dict, dict]:
    """The gradient pass over the B·M selected patches and one AdamW step at rate ``lr``.

    Returns:
        (losses, logits) on the device.
    Raises:
        NonFiniteError: the loss or a gradient is NaN or infinite; the step is not taken, so the weights stay
            as they were (the message names the loss term or the parameter).
    """
    losses, logits = _forward_losses(net, selection, targets, ctx)
    _check_finite_loss(losses)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    _check_finite_gradients(net)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return losses, logits


def _check_finite_loss(losses: dict[str, torch.Tensor]) -> None:
    if not bool(torch.isfinite(losses["loss"].detach()).all()):
        terms = ", ".join(f"{k}={float(v.detach().float().mean()):g}" for k, v in losses.items() if v.numel())
        raise NonFiniteError(f"the loss is not finite ({terms})")


def _check_finite_gradients(net: torch.nn.Module) -> None:
    named = [(name, p.grad) for name, p in net.named_parameters() if p.grad is not None]
    if not named or bool(torch.isfinite(torch.stack([g.detach().float().sum() for _, g in named])).all()):
        return
    bad = next((name for name, g in named if not bool(torch.isfinite(g).all())), named[0][0])
    raise NonFiniteError(f"the gradient of {bad} is not finite")


def train_step(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    targets: dict[str, torch.Tensor],
    ctx: Context,
    lr: float,
) -> tuple[dict, dict, dict]:
    """One optimiser step on a batch: IPS selection (:func:`select_batch`), then :func:`gradient_step`.

    Returns:
        (losses, logits, targets), the latter two on the device, for the metrics.
    """
    selection = select_batch(net, images, ctx)
    targets = {task: to_device(value, ctx.device) for task, value in targets.items()}
    losses, logits = gradient_step(net, optimizer, selection, targets, ctx, lr)
    return losses, logits, targets


def train_one_epoch(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    schedule: WarmupCosine,
    state: TrainState,
    ctx: Context,
    bar: Any,
) -> dict[str, float]:
    """Train over ``loader`` once; returns the epoch's mean metrics, final lr and ms per batch.

    The batch time runs from after the batch is fetched to after ``optimizer.step`` (GPU synchronised);
    the first batch is left out as warm-up when there are more.
    """
    net.train()
    meter, seconds, lr = EpochMeter(ctx.cfg.tasks), [], float("nan")
    for batch, (images, targets) in enumerate(_prefetched(loader), start=1):
        start = time.perf_counter()
        state.step += 1
        lr = schedule(state.step)
        try:
            losses, logits, targets = train_step(net, optimizer, images, targets, ctx, lr)
        except NonFiniteError as err:
            where = f"epoch {state.epoch + 1}, step {state.step} (batch {batch} of {len(loader)}, lr {lr:.3g})"
            raise NonFiniteError(f"{where}: {err}; training stopped before this step's update") from None
        runtime.synchronize(ctx.device)
        seconds.append(time.perf_counter() - start)
        meter.update(losses, logits, targets)
        bar.update(1)
    timed = seconds[1:] if len(seconds) > 1 else seconds
    return {**meter.compute(), "lr": lr, "ms_per_batch": 1000 * sum(timed) / max(len(timed), 1)}


@torch.no_grad()
def evaluate(net: torch.nn.Module, loader: DataLoader, ctx: Context) -> dict[str, float]:
    """Mean loss and accuracy per task over ``loader`` in eval mode (what STKIM/shuffle do is the model's)."""
    net.eval()
    meter = EpochMeter(ctx.cfg.tasks)
    for images, targets in _prefetched(loader):
        selection = select_batch(net, images, ctx)
        targets = {task: to_device(value, ctx.device) for task, value in targets.items()}
        losses, logits = _forward_losses(net, selection, targets, ctx)
        meter.update(losses, logits, targets)
    return meter.compute()


def _prefetched(loader: DataLoader):
    """The loader's batches, the next one generated in a thread meanwhile when it has no worker processes."""
    return runtime.prefetch(loader) if loader.num_workers == 0 else loader


def prepare_model(net: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """Set up a model on its device before it trains: on a GPU cuDNN benchmarks its convolution algorithms
    for the fixed patch shapes; ``compile_mode`` other than ``none`` compiles the patch encoder with
    ``torch.compile`` in place (state dict and checkpoints keep their names). The encoder's weights are
    channels-last already (:class:`~ipslib.model.encoder.PatchEncoder`). On the CPU with ``compile_mode:
    none`` (every existing config) nothing changes."""
    if ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    mode = ctx.cfg.train.compile_mode
    if mode != "none":
        net.encoder.compile(mode=None if mode == "default" else mode)
    return net


def build_optimizer(net: torch.nn.Module, cfg: RunConfig) -> torch.optim.AdamW:
    """AdamW with one parameter group (decay on every parameter, as the original); lr is set per step."""
    return torch.optim.AdamW(net.parameters(), lr=0.0, weight_decay=cfg.train.weight_decay)
