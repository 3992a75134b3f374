"""Training and evaluation of an IPS network (spec §6-§7): one call, :func:`train`, per run directory.

Per batch: the images are cut into patches on the CPU; IPS selects M patches per image without
gradients (per sub-batch of ``sub_batch_size`` images, as the original's ``init_batch/fill_batch``);
the selected patches of the whole batch go to the device for one gradient pass, then one AdamW step
with the rate of :class:`~ipslib.engine.schedule.WarmupCosine`. After every epoch the test split is
evaluated and the run directory (:mod:`ipslib.engine.records`) is updated atomically, checkpoint included,
so rerunning the same call resumes after the last finished epoch.

One process at a time trains in a run directory: :func:`train` holds its lock file (``.train.lock``, the
holder's PID inside) from the first check to the last write, so a second process (also one with ``force``) is
refused naming the holder, and a lock left by a killed process is taken over. Temporary files that a kill
left behind are removed on the next start. A NaN or infinite loss or gradient stops the run at once
(:class:`~ipslib.system.errors.NonFiniteError` naming epoch and step); ``metrics.json`` then records it as
failed and the checkpoint of the last good epoch stays.

Legend: B images per batch, N patches per image, M selected, C channels, p patch side.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ipslib.config import ConfigError, RunConfig
from ipslib.config.grid import grid_warnings
from ipslib.engine import checkpoint, records, runtime
from ipslib.engine.schedule import WarmupCosine, steps_per_epoch
from ipslib.engine.steps import (
    Context,
    TrainState,
    build_optimizer,
    evaluate,
    gradient_step,
    prepare_model,
    select_batch,
    train_one_epoch,
    train_step,
)
from ipslib.system.errors import LockHeld, NonFiniteError
from ipslib.system.files import exclusive_lock, remove_stale_temps

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


# --------------------------------------------------------------------------------------------- data
def _loader(dataset: Dataset, cfg: RunConfig, *, shuffle: bool, seed: int, pin: bool = False) -> DataLoader:
    """``pin`` (the CUDA path): batches come in pinned memory, so their copies to the GPU do not block."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=cfg.train.batch_size,
        shuffle=shuffle,
        drop_last=False,
        num_workers=cfg.train.num_workers,
        generator=generator,
        collate_fn=getattr(dataset, "collate", None),  # layout-cut items batch into a patch source
        pin_memory=pin,
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
    wait: bool = False,
) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (resuming it if it holds a checkpoint of the same config).

    Args:
        progress: tqdm bars; None shows them only on a terminal outside CI (:func:`progress_default`).
        force: discard a previous run in ``run_dir`` (finished or not) and start over.
        log: called with one summary line per epoch and status messages (the CLI passes ``print``).
        stop_after_epoch: end after this epoch, leaving the run unfinished and resumable.
        wait: when another process trains in ``run_dir``, wait for it (then resume or skip) instead of failing.
    Returns:
        The ``metrics.json`` dict (:func:`ipslib.engine.records.read_metrics`).
    Raises:
        records.RunDirConflict: ``run_dir`` holds a run of another config (the message names the keys).
        LockHeld: another living process trains in ``run_dir`` (the message names its PID).
        NonFiniteError: a loss or gradient was not finite (the run is recorded as failed).
    """
    run_dir, say = Path(run_dir), log or (lambda message: None)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: is a file, not a run directory; name a folder (created if missing)")
    try:
        with exclusive_lock(run_dir / records.LOCK_FILE, wait=wait, what=f"run directory {run_dir}") as dead:
            if dead is not None:
                say(f"{run_dir}: took over the lock left by process {dead}, which is no longer running")
            for stale in remove_stale_temps(run_dir):
                say(f"{run_dir}: removed {stale.name}, left by an interrupted write")
            return _train_locked(cfg, run_dir, progress, force, say, stop_after_epoch)
    except LockHeld as err:
        raise LockHeld(f"{err}; --force does not override a process that is training", err.pid) from None


def _train_locked(
    cfg: RunConfig, run_dir: Path, progress: bool | None, force: bool, say: Callable[[str], None], stop: int | None
) -> dict[str, Any]:
    if force:
        for name in (records.METRICS_FILE, records.CHECKPOINT_FILE, records.HISTORY_FILE, records.CONFIG_FILE):
            (run_dir / name).unlink(missing_ok=True)
        for name in (checkpoint.PREVIOUS_FILE, checkpoint.DAMAGED_FILE):
            (run_dir / name).unlink(missing_ok=True)
    records.check_run_dir(run_dir, cfg)
    if records.is_finished(run_dir, cfg):
        say(f"{run_dir}: complete ({cfg.train.epochs} epochs); nothing to do (force=True / --force retrains)")
        return records.read_metrics(run_dir)
    records.write_config(run_dir, cfg)
    for message in grid_warnings(cfg):
        warnings.warn(f"{run_dir}: {message}", stacklevel=3)
    progress = progress_default() if progress is None else progress
    with runtime.num_threads(cfg.train.threads):
        return _run(cfg, run_dir, progress, say, stop)


def _run(cfg: RunConfig, run_dir: Path, progress: bool, say: Callable[[str], None], stop: int | None) -> dict[str, Any]:
    from ipslib.data import build_dataset
    from ipslib.model.controls import build_model

    ctx = Context(cfg, runtime.resolve_device(cfg.train.device))
    train_set, test_set = build_dataset(cfg, "train", patches=True), build_dataset(cfg, "test", patches=True)
    runtime.seed_everything(cfg.train.train_seed)
    net = prepare_model(build_model(cfg).to(ctx.device), ctx)
    optimizer = build_optimizer(net, cfg)
    state = checkpoint.resume(run_dir, cfg, net, optimizer, say)
    schedule = WarmupCosine.from_config(cfg.train, steps_per_epoch(len(train_set), cfg.train.batch_size))
    pin = ctx.device.type == "cuda"
    loaders = (
        _loader(train_set, cfg, shuffle=True, seed=0, pin=pin),
        _loader(test_set, cfg, shuffle=False, seed=0, pin=pin),
    )
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
            try:
                row = _run_epoch(epoch, net, optimizer, loaders, schedule, state, ctx, bar)
            except NonFiniteError as err:
                failed = {"error": str(err), "epoch": epoch, "step": state.step}
                checkpoint.write_metrics(run_dir, net, state, cfg, ctx.device, failed=failed)
                kept = f"the checkpoint of epoch {state.epoch} is kept" if state.epoch else "no epoch had finished"
                raise NonFiniteError(
                    f"{run_dir}: {err}; recorded as failed in {records.METRICS_FILE} ({kept}); a lower lr or a "
                    "longer warmup_epochs may help"
                ) from None
            checkpoint.save(run_dir, net, optimizer, state, ctx.cfg, ctx.device, loaders)
            with tqdm.external_write_mode():
                say(_summary(row, cfg))
    if state.history:  # also after a kill between the checkpoint and the history
        records.write_history(run_dir, state.history)
    return checkpoint.write_metrics(run_dir, net, state, cfg, ctx.device)


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


def _summary(row: dict[str, Any], cfg: RunConfig) -> str:
    parts = [f"epoch {row['epoch']}/{cfg.train.epochs}", f"lr {row['lr']:.2e}"]
    for split in ("train", "test"):
        if f"{split}/loss" in row:
            accs = " ".join(f"{t} {row[f'{split}/{t}/accuracy']:.3f}" for t in cfg.tasks)
            parts.append(f"{split} loss {row[f'{split}/loss']:.4f} acc [{accs}]")
    parts.append(f"{row['epoch_seconds']:.1f} s ({row['ms_per_batch']:.0f} ms/batch)")
    return " | ".join(parts)
