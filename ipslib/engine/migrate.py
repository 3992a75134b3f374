"""Bring run records to the current config key after the key's definition changed (``ipslib runs --rekey``).

A run's key (:meth:`ipslib.config.RunConfig.key`) is written in four places: the first line of
``config.yaml``, ``config_key`` in ``metrics.json`` and in the checkpoints, and the run directory's name when it
lives in a profile's ``runs/`` folder. :func:`rekey_run` recomputes the key from ``config.yaml`` and rewrites
each place that differs, every file atomically, the directory renamed last, so an interrupted migration is
finished by running it again. Checkpoints are rewritten with their content hash (adding it to older ones).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from ipslib.engine import checkpoint, records
from ipslib.system.errors import RecordError
from ipslib.system.files import atomic_write_json, atomic_write_text, exclusive_lock

__all__ = ["Rekeyed", "rekey_run", "rekey_runs"]

_HEADER = re.compile(r"# ipslib run config; config_key: (\w+)")
_KEY_NAME = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class Rekeyed:
    """One run directory's migration: its old key (None when ``config.yaml`` had no key line) and new one."""

    old_dir: Path
    new_dir: Path
    old_key: str | None
    new_key: str

    @property
    def changed(self) -> bool:
        return self.old_key != self.new_key or self.old_dir != self.new_dir


def rekey_run(run_dir: str | Path, *, rename: bool | None = None) -> Rekeyed:
    """Rewrite one run directory's keys to its config's current key.

    Args:
        rename: rename the directory to the new key; None renames only a directory named by its old key.
    Raises:
        ConfigError: ``config.yaml`` is missing or incomplete. RecordError: the new directory name is taken.
    """
    run_dir = Path(run_dir)
    with exclusive_lock(run_dir / records.LOCK_FILE, wait=False, what=f"run directory {run_dir}"):
        old, new = _rekey_files(run_dir)
    target = run_dir
    if rename or (rename is None and run_dir.name == old):
        target = run_dir.with_name(new)
    if target != run_dir:
        if target.exists():
            raise RecordError(f"{run_dir}: cannot rename it to {target.name}, which already exists; compare the two")
        os.rename(run_dir, target)
    return Rekeyed(run_dir, target, old, new)


def _rekey_files(run_dir: Path) -> tuple[str | None, str]:
    new = records.read_config(run_dir).key()
    config_path = run_dir / records.CONFIG_FILE
    lines = config_path.read_text().splitlines(keepends=True)
    match = _HEADER.fullmatch(lines[0].strip()) if lines else None
    old = match.group(1) if match else None
    if old != new:
        body = lines[1:] if match else lines
        atomic_write_text(config_path, f"# ipslib run config; config_key: {new}\n" + "".join(body))
    _rekey_metrics(run_dir / records.METRICS_FILE, new)
    for name in (records.CHECKPOINT_FILE, checkpoint.PREVIOUS_FILE):
        _rekey_checkpoint(run_dir / name, new)
    return old, new


def _rekey_metrics(path: Path, key: str) -> None:
    if not path.is_file():
        return
    metrics = records.read_metrics(path.parent)
    if metrics.get("config_key") != key:
        metrics["config_key"] = key
        atomic_write_json(path, metrics)


def _rekey_checkpoint(path: Path, key: str) -> None:
    if not path.is_file():
        return
    import torch

    hashed = checkpoint.HASH_KEY in torch.load(path, map_location="cpu", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an older checkpoint without a hash gets one now
        payload = checkpoint.load_checkpoint(path)
    if payload.get("config_key") != key or not hashed:
        checkpoint.write_checkpoint(path, {**payload, "config_key": key}, keep_previous=False)


def rekey_runs(folder: str | Path) -> list[Rekeyed]:
    """:func:`rekey_run` on every run directory in ``folder`` (those with a complete ``config.yaml``); a
    directory named like a key is renamed to its new key. Returns the runs that changed."""
    changed = []
    for run_dir in sorted(Path(folder).iterdir()):
        if not (run_dir / records.CONFIG_FILE).is_file():
            continue
        result = rekey_run(run_dir, rename=bool(_KEY_NAME.fullmatch(run_dir.name)))
        if result.changed:
            changed.append(result)
    return changed
