"""A run's checkpoint and metrics after each epoch, and resuming from them.

The checkpoint holds the model, the optimiser, the epoch and step counters, the history, every RNG state and
the data loaders' generator states, so a resumed run continues exactly as an uninterrupted one would.

It also holds ``content_sha256``, a digest of everything else it holds (every tensor's bytes, dtype and
shape; every other value's repr), checked by :func:`load_checkpoint` on every load (resume, ``predict``), so
flipped bits are an error naming the file rather than damaged weights. Each save first moves the previous
checkpoint to ``checkpoint.prev.pt`` and reads the new one back before the run goes on; a resume that finds
``checkpoint.pt`` damaged (or missing after a kill during the save) moves it aside to
``checkpoint.damaged.pt`` and continues from the previous one. A finished run keeps only its final
checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ipslib.config import RunConfig
from ipslib.engine import records, runtime
from ipslib.system.errors import CheckpointError
from ipslib.system.files import atomic_write_bytes, atomic_write_json
from ipslib.system.machine import code_version, machine_info

__all__ = [
    "TrainState",
    "save",
    "write_metrics",
    "resume",
    "load_checkpoint",
    "write_checkpoint",
    "content_digest",
    "HASH_KEY",
    "PREVIOUS_FILE",
    "DAMAGED_FILE",
]

HASH_KEY = "content_sha256"
PREVIOUS_FILE = "checkpoint.prev.pt"
DAMAGED_FILE = "checkpoint.damaged.pt"


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
    write_checkpoint(run_dir / records.CHECKPOINT_FILE, payload)
    if state.epoch >= cfg.train.epochs:
        (run_dir / PREVIOUS_FILE).unlink(missing_ok=True)  # the final checkpoint is verified
    records.write_history(run_dir, state.history)
    return write_metrics(run_dir, net, state, cfg, device)


def content_digest(payload: Any) -> str:
    """sha256 hex digest of a checkpoint's content: tensors by dtype, shape and bytes, other values by repr."""
    digest = hashlib.sha256()
    _feed(digest, payload)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"V{type(value).__name__}:{value!r};".encode())


def write_checkpoint(path: Path, payload: dict[str, Any], *, keep_previous: bool = True) -> None:
    """Save ``payload`` with its content hash atomically, then read it back to verify it.

    With ``keep_previous`` an existing checkpoint is first moved to ``checkpoint.prev.pt`` (kept until the
    run finishes), so a damaged or missing new file leaves the run resumable from the one before.
    """
    data = records.torch_bytes({**payload, HASH_KEY: content_digest(payload)})
    if keep_previous and path.exists():
        os.replace(path, path.with_name(PREVIOUS_FILE))
    atomic_write_bytes(path, data)
    load_checkpoint(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's content (``torch.load`` with ``weights_only=True``), its content hash checked.

    Raises:
        CheckpointError: the file cannot be read (truncated, damaged, not a checkpoint, or holding objects
            other than tensors and plain data) or its content does not match its hash, naming the file.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError (foreign objects), RuntimeError (zip), EOFError, ...
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise CheckpointError(
            f"{path}: cannot be read as an ipslib checkpoint ({type(err).__name__}: {reason}); the file is "
            "truncated, damaged or not a checkpoint of ipslib (only tensors and plain data are loaded)"
        ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: not an ipslib checkpoint (no 'model' state in it)")
    stored = ckpt.pop(HASH_KEY, None)
    if stored is None:
        warnings.warn(
            f"{path}: no content hash (written before ipslib checked checkpoints); loaded unchecked", stacklevel=2
        )
    elif content_digest(ckpt) != stored:
        raise CheckpointError(
            f"{path}: content hash mismatch (the stored tensors do not match the {HASH_KEY} recorded with "
            "them): the file is damaged; do not use it"
        )
    return ckpt


def write_metrics(
    run_dir: Path, net, state: TrainState, cfg: RunConfig, device: torch.device, *, failed: dict | None = None
) -> dict[str, Any]:
    """``metrics.json`` from the history so far (``finished`` once every epoch has run; never with ``failed``,
    which records why a run stopped: ``{"error", "epoch", "step"}``)."""
    extra = {"failed": failed} if failed else {}
    metrics = records.summarise(
        state.history,
        list(cfg.tasks),
        device=runtime.device_name(device),
        finished=state.epoch >= cfg.train.epochs and not failed,
        config_key=cfg.key(),
        epochs=cfg.train.epochs,
        epochs_done=state.epoch,
        global_step=state.step,
        wall_seconds=sum(row["epoch_seconds"] for row in state.history),
        n_parameters=sum(p.numel() for p in net.parameters()),
        **_provenance(),
        **extra,
    )
    atomic_write_json(run_dir / records.METRICS_FILE, metrics)
    return metrics


def resume(run_dir: Path, cfg: RunConfig, net, optimizer, say: Callable[[str], None]) -> TrainState:
    """Load the run's checkpoint into ``net`` and ``optimizer`` (and the RNG states); a fresh state without one.

    A damaged ``checkpoint.pt`` is moved to ``checkpoint.damaged.pt`` (with a warning) and the previous
    checkpoint is used; CheckpointError when no intact checkpoint is left."""
    found = _intact_checkpoint(run_dir)
    if found is None:
        return TrainState()
    path, ckpt = found
    if ckpt.get("config_key") != cfg.key():
        raise records.RunDirConflict(
            f"{path} was written by config {ckpt.get('config_key')}, not {cfg.key()}; use another --out, "
            "or --force to discard it"
        )
    net.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    runtime.set_rng_state(ckpt["rng"])
    say(f"{run_dir}: resuming after epoch {ckpt['epoch']} of {cfg.train.epochs}")
    return TrainState(epoch=ckpt["epoch"], step=ckpt["global_step"], history=list(ckpt["history"]))


def _intact_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """(path, content) of the newest checkpoint that loads and matches its hash; None when there is none."""
    current, previous = run_dir / records.CHECKPOINT_FILE, run_dir / PREVIOUS_FILE
    if current.exists():
        try:
            return current, load_checkpoint(current)
        except CheckpointError as err:
            if not previous.exists():
                raise CheckpointError(f"{err}; there is no previous checkpoint to resume from: use --force") from None
            os.replace(current, run_dir / DAMAGED_FILE)
            warnings.warn(f"{err}; moved it to {DAMAGED_FILE}, resuming from {PREVIOUS_FILE}", stacklevel=3)
    if previous.exists():
        try:
            return previous, load_checkpoint(previous)
        except CheckpointError as err:
            raise CheckpointError(f"{err}; no intact checkpoint is left in {run_dir}: use --force") from None
    return None


def _provenance() -> dict[str, Any]:
    """The code commit and the library versions a run's numbers came from (``torch_version`` kept for older
    readers of ``metrics.json``)."""
    info = machine_info()
    versions = {name: info[name] for name in ("torch", "torchvision", "numpy", "python")}
    return {"torch_version": info["torch"], "versions": versions, "code": code_version()}
