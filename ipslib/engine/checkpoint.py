"""A run's checkpoint and metrics after each epoch, and resuming from them.

The checkpoint holds the model, the optimiser, the epoch and step counters, the history, every RNG state and
the data loaders' generator states, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ipslib.config import RunConfig
from ipslib.engine import records, runtime
from ipslib.system.files import atomic_write_bytes, atomic_write_json
from ipslib.system.machine import code_version, machine_info

__all__ = ["TrainState", "save", "write_metrics", "resume"]


@dataclass
class TrainState:
    """Progress of a run: finished epochs, optimiser steps taken, one history row per epoch."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def save(
    run_dir: Path, net, optimizer, state: TrainState, cfg: RunConfig, device: torch.device, loaders
) -> dict[str, Any]:
    """Checkpoint, history and metrics after an epoch, each replaced atomically, in that order."""
    payload = {
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": state.epoch,
        "global_step": state.step,
        "history": state.history,
        "rng": runtime.get_rng_state(),
        "loader_generators": [loader.generator.get_state() for loader in loaders],
        "config": cfg.to_flat(),
        "config_key": cfg.key(),
    }
    atomic_write_bytes(run_dir / records.CHECKPOINT_FILE, records.torch_bytes(payload))
    records.write_history(run_dir, state.history)
    return write_metrics(run_dir, net, state, cfg, device)


def write_metrics(run_dir: Path, net, state: TrainState, cfg: RunConfig, device: torch.device) -> dict[str, Any]:
    """``metrics.json`` from the history so far (``finished`` once every epoch has run)."""
    metrics = records.summarise(
        state.history,
        list(cfg.tasks),
        device=runtime.device_name(device),
        finished=state.epoch >= cfg.train.epochs,
        config_key=cfg.key(),
        epochs=cfg.train.epochs,
        epochs_done=state.epoch,
        global_step=state.step,
        wall_seconds=sum(row["epoch_seconds"] for row in state.history),
        n_parameters=sum(p.numel() for p in net.parameters()),
        **_provenance(),
    )
    atomic_write_json(run_dir / records.METRICS_FILE, metrics)
    return metrics


def resume(run_dir: Path, cfg: RunConfig, net, optimizer, say: Callable[[str], None]) -> TrainState:
    """Load the run's checkpoint into ``net`` and ``optimizer`` (and the RNG states); a fresh state without one."""
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


def _provenance() -> dict[str, Any]:
    """The code commit and the library versions a run's numbers came from (``torch_version`` kept for older
    readers of ``metrics.json``)."""
    info = machine_info()
    versions = {name: info[name] for name in ("torch", "torchvision", "numpy", "python")}
    return {"torch_version": info["torch"], "versions": versions, "code": code_version()}
