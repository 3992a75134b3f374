"""Training and evaluation of an IPS network (spec §6-§7): one call, :func:`train`, per run directory.

Per batch: the images are cut into patches on the CPU; IPS selects M patches per image without
gradients (per sub-batch of ``sub_batch_size`` images, as the original's ``init_batch/fill_batch``);
the selected patches of the whole batch go to the device for one gradient pass, then one AdamW step
with the rate of :class:`~ipslib.engine.schedule.WarmupCosine`. After every epoch the test split is
evaluated and the run directory (:mod:`ipslib.engine.records`) is updated atomically, checkpoint included,
so rerunning the same call resumes after the last finished epoch.

Legend: B images per batch, N patches per image, M selected, C channels, p patch side.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ipslib.config import RunConfig
from ipslib.engine import records, runtime
from ipslib.engine.metrics import EpochMeter
from ipslib.engine.schedule import WarmupCosine, steps_per_epoch
from ipslib.model.patches import patchify
from ipslib.model.selection import Selection

__all__ = [
    "train",
    "train_step",
    "gradient_step",
    "evaluate",
    "select_batch",
    "Context",
    "progress_default",
    "build_optimizer",
]

REGULARISER_TERMS = ("diversity", "semantic")


@dataclass
class TrainState:
    """Progress of a run: finished epochs, optimiser steps taken, one history row per epoch."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


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

    Args:
        images: (B, C, H, W) on the CPU; patches are cut as views and stay there until IPS moves chunks.
    Returns:
        The net's Selection with patches (B, M, C, p, p), indices (B, M), scores (B, M) on the device.
    """
    patches = patchify(images, ctx.cfg.ips.patch_size, ctx.cfg.ips.stride)  # (B, N, C, p, p)
    size = ctx.cfg.train.sub_batch_size or len(images)
    with torch.no_grad():  # float32 even under amp: bf16 scores tie and would change the selection
        parts = [net.select(patches[i : i + size]) for i in range(0, len(images), size)]
    return _to_device(_concat(parts), ctx.device)


def _concat(parts: list[Selection]) -> Selection:
    if len(parts) == 1:
        return parts[0]
    names = [f.name for f in dataclasses.fields(Selection)]
    return Selection(**{n: torch.cat([getattr(p, n) for p in parts]) for n in names})


def _to_device(selection: Selection, device: torch.device) -> Selection:
    moved = {f.name: getattr(selection, f.name).to(device) for f in dataclasses.fields(Selection)}
    return dataclasses.replace(selection, **moved)


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
    """
    losses, logits = _forward_losses(net, selection, targets, ctx)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return losses, logits


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
    targets = {task: value.to(ctx.device) for task, value in targets.items()}
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
    for images, targets in loader:
        start = time.perf_counter()
        state.step += 1
        lr = schedule(state.step)
        losses, logits, targets = train_step(net, optimizer, images, targets, ctx, lr)
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
    for images, targets in loader:
        selection = select_batch(net, images, ctx)
        targets = {task: value.to(ctx.device) for task, value in targets.items()}
        losses, logits = _forward_losses(net, selection, targets, ctx)
        meter.update(losses, logits, targets)
    return meter.compute()


# ------------------------------------------------------------------------------------------- setup
def build_optimizer(net: torch.nn.Module, cfg: RunConfig) -> torch.optim.AdamW:
    """AdamW with one parameter group (decay on every parameter, as the original); lr is set per step."""
    return torch.optim.AdamW(net.parameters(), lr=0.0, weight_decay=cfg.train.weight_decay)


def _loader(dataset: Dataset, cfg: RunConfig, *, shuffle: bool, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=cfg.train.batch_size,
        shuffle=shuffle,
        drop_last=False,
        num_workers=cfg.train.num_workers,
        generator=generator,
    )


def progress_default() -> bool:
    """Show progress bars only on a terminal, outside CI and without TQDM_DISABLE."""
    quiet_env = os.environ.get("CI") or os.environ.get("TQDM_DISABLE") not in (None, "", "0")
    return bool(sys.stderr.isatty() and not quiet_env)


def _row(
    epoch: int, train_m: dict[str, float], test_m: dict[str, float], seconds: float, peak_mb: float
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "epoch": epoch,
        "lr": train_m.pop("lr"),
        "epoch_seconds": seconds,
        "ms_per_batch": train_m.pop("ms_per_batch"),
        "peak_memory_mb": peak_mb,
    }
    for split, values in (("train", train_m), ("test", test_m)):
        tasks = dict.fromkeys(key.split("/")[0] for key in values if "/" in key)
        per_task = [f"{task}/{name}" for task in tasks for name in ("loss", "accuracy")]
        keys = [k for k in ("loss", "accuracy", "task_loss", *per_task) if k in values] + list(REGULARISER_TERMS)
        row.update({f"{split}/{key}": values.get(key, float("nan")) for key in keys})
    return row


# --------------------------------------------------------------------------------------------- run
def train(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    progress: bool | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    stop_after_epoch: int | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (resuming it if it holds a checkpoint of the same config).

    Args:
        progress: tqdm bars; None shows them only on a terminal outside CI (:func:`progress_default`).
        force: discard a previous run in ``run_dir`` (finished or not) and start over.
        log: called with one summary line per epoch and status messages (the CLI passes ``print``).
        stop_after_epoch: end after this epoch, leaving the run unfinished and resumable.
    Returns:
        The ``metrics.json`` dict (:func:`ipslib.engine.records.read_metrics`).
    Raises:
        records.RunDirConflict: ``run_dir`` holds a run of another config (the message names the keys).
    """
    run_dir, say = Path(run_dir), log or (lambda message: None)
    if force:
        for name in (records.METRICS_FILE, records.CHECKPOINT_FILE, records.HISTORY_FILE, records.CONFIG_FILE):
            (run_dir / name).unlink(missing_ok=True)
    records.check_run_dir(run_dir, cfg)
    if records.is_finished(run_dir, cfg):
        say(f"{run_dir}: complete ({cfg.train.epochs} epochs); nothing to do (force=True / --force retrains)")
        return records.read_metrics(run_dir)
    records.write_config(run_dir, cfg)
    progress = progress_default() if progress is None else progress
    with runtime.num_threads(cfg.train.threads):
        return _run(cfg, run_dir, progress, say, stop_after_epoch)


def _run(cfg: RunConfig, run_dir: Path, progress: bool, say: Callable[[str], None], stop: int | None) -> dict[str, Any]:
    from ipslib.data import build_dataset
    from ipslib.model.ips import IPSNet

    ctx = Context(cfg, runtime.resolve_device(cfg.train.device))
    train_set, test_set = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    runtime.seed_everything(cfg.train.train_seed)
    net = IPSNet.from_config(cfg).to(ctx.device)
    optimizer = build_optimizer(net, cfg)
    state = _resume(run_dir, cfg, net, optimizer, say)
    schedule = WarmupCosine.from_config(cfg.train, steps_per_epoch(len(train_set), cfg.train.batch_size))
    loaders = _loader(train_set, cfg, shuffle=True, seed=0), _loader(test_set, cfg, shuffle=False, seed=0)
    runtime.reset_peak_memory(ctx.device)
    last = cfg.train.epochs if stop is None else min(stop, cfg.train.epochs)
    with tqdm(
        total=max(last - state.epoch, 0) * len(loaders[0]),
        disable=not progress,
        unit="batch",
        desc=run_dir.name,
        dynamic_ncols=True,
    ) as bar:
        for epoch in range(state.epoch + 1, last + 1):
            bar.set_postfix_str(f"epoch {epoch}/{cfg.train.epochs}")
            row = _run_epoch(epoch, net, optimizer, loaders, schedule, state, ctx, bar)
            _save(run_dir, net, optimizer, state, ctx, loaders)
            with tqdm.external_write_mode():
                say(_summary(row, cfg))
    return _write_metrics(run_dir, net, state, ctx)


def _run_epoch(epoch: int, net, optimizer, loaders, schedule, state: TrainState, ctx: Context, bar) -> dict:
    start = time.perf_counter()
    for loader, offset in zip(loaders, (0, 1)):
        loader.generator.manual_seed(runtime.epoch_seed(ctx.cfg.train.train_seed, 2 * epoch + offset))
    train_metrics = train_one_epoch(net, optimizer, loaders[0], schedule, state, ctx, bar)
    test_metrics = evaluate(net, loaders[1], ctx) if len(loaders[1].dataset) else {}
    row = _row(epoch, train_metrics, test_metrics, time.perf_counter() - start, runtime.peak_memory_mb(ctx.device))
    state.history.append(row)
    state.epoch = epoch
    return row


def _save(run_dir: Path, net, optimizer, state: TrainState, ctx: Context, loaders) -> dict[str, Any]:
    """Checkpoint, history and metrics after an epoch, each replaced atomically, in that order."""
    payload = {
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": state.epoch,
        "global_step": state.step,
        "history": state.history,
        "rng": runtime.get_rng_state(),
        "loader_generators": [loader.generator.get_state() for loader in loaders],
        "config": ctx.cfg.to_flat(),
        "config_key": ctx.cfg.key(),
    }
    records.atomic_write_bytes(run_dir / records.CHECKPOINT_FILE, records.torch_bytes(payload))
    records.write_history(run_dir, state.history)
    return _write_metrics(run_dir, net, state, ctx)


def _write_metrics(run_dir: Path, net, state: TrainState, ctx: Context) -> dict[str, Any]:
    cfg = ctx.cfg
    metrics = records.summarise(
        state.history,
        list(cfg.tasks),
        device=runtime.device_name(ctx.device),
        finished=state.epoch >= cfg.train.epochs,
        config_key=cfg.key(),
        epochs=cfg.train.epochs,
        epochs_done=state.epoch,
        global_step=state.step,
        wall_seconds=sum(row["epoch_seconds"] for row in state.history),
        n_parameters=sum(p.numel() for p in net.parameters()),
        torch_version=torch.__version__,
    )
    records.atomic_write_json(run_dir / records.METRICS_FILE, metrics)
    return metrics


def _resume(run_dir: Path, cfg: RunConfig, net, optimizer, say: Callable[[str], None]) -> TrainState:
    path = run_dir / records.CHECKPOINT_FILE
    if not path.exists():
        return TrainState()
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt["config_key"] != cfg.key():
        raise records.RunDirConflict(
            f"{path} was written by config {ckpt['config_key']}, not {cfg.key()}; use another --out or --force"
        )
    net.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    runtime.set_rng_state(ckpt["rng"])
    say(f"{run_dir}: resuming after epoch {ckpt['epoch']} of {cfg.train.epochs}")
    return TrainState(epoch=ckpt["epoch"], step=ckpt["global_step"], history=list(ckpt["history"]))


def _summary(row: dict[str, Any], cfg: RunConfig) -> str:
    parts = [f"epoch {row['epoch']}/{cfg.train.epochs}", f"lr {row['lr']:.2e}"]
    for split in ("train", "test"):
        if f"{split}/loss" in row:
            accs = " ".join(f"{t} {row[f'{split}/{t}/accuracy']:.3f}" for t in cfg.tasks)
            parts.append(f"{split} loss {row[f'{split}/loss']:.4f} acc [{accs}]")
    parts.append(f"{row['epoch_seconds']:.1f} s ({row['ms_per_batch']:.0f} ms/batch)")
    return " | ".join(parts)
