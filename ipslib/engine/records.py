"""Run directories: what a training run writes, and how to read it back.

A run directory (``ipslib train ... --out RUN_DIR`` or :func:`ipslib.engine.training.train`) holds

* ``config.yaml`` - the resolved configuration as flat keys (usable again as a params file); its first
  line is a comment with the config key (:meth:`RunConfig.key`);
* ``history.csv`` - one row per finished epoch (columns: :data:`HISTORY_HEAD`, then
  ``train/...`` and ``test/...``: ``loss``, ``accuracy`` (mean over tasks), ``task_loss``,
  ``<task>/loss``, ``<task>/accuracy``, ``diversity``, ``semantic``);
* ``metrics.json`` - ``last``/``best`` epoch results per split and task, ``efficiency``, ``finished``,
  ``config_key``, ``epochs`` (see :func:`read_metrics`);
* ``checkpoint.pt`` - model, optimiser, RNG states and history, for resuming.

Every file is replaced atomically (:mod:`ipslib.system.files`: temporary file in the same directory, then
``os.replace``), so a reader never sees a half-written file and an interrupted run leaves the previous
epoch's files intact.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ipslib.config import ConfigError, RunConfig, load_yaml_mapping
from ipslib.system.errors import RecordError
from ipslib.system.files import atomic_write_text

__all__ = [
    "CONFIG_FILE",
    "HISTORY_FILE",
    "METRICS_FILE",
    "CHECKPOINT_FILE",
    "LOCK_FILE",
    "HISTORY_HEAD",
    "TIMING_FIELDS",
    "RunRecord",
    "RunDirConflict",
    "write_config",
    "read_config",
    "write_history",
    "read_history",
    "read_metrics",
    "load_run",
    "is_finished",
    "config_diff",
    "check_run_dir",
    "summarise",
]

CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"
LOCK_FILE = ".train.lock"
"""Held by the process that trains in (or migrates) the run directory; its PID inside."""
HISTORY_HEAD = ["epoch", "lr", "epoch_seconds", "ms_per_batch", "peak_memory_mb"]
TIMING_FIELDS = ("epoch_seconds", "ms_per_batch", "peak_memory_mb", "wall_seconds")
"""Columns/keys that measure speed or memory and so differ between otherwise identical runs."""
EXECUTION_KEYS = ("device", "num_workers")
"""Config keys that change where or how fast a run goes, not its result (excluded from the key). ``threads`` is
not one: CPU sums are split by thread count, so it changes the numbers and is part of the key."""


class RunDirConflict(ConfigError):
    """The run directory holds a run with a different configuration."""


@dataclass(frozen=True)
class RunRecord:
    """One run directory read back: its config, per-epoch history and final metrics."""

    run_dir: Path
    config: RunConfig
    history: pd.DataFrame
    metrics: dict[str, Any]

    @property
    def finished(self) -> bool:
        return bool(self.metrics.get("finished"))


# ------------------------------------------------------------------------------------------- config
def write_config(run_dir: str | Path, cfg: RunConfig) -> Path:
    header = f"# ipslib run config; config_key: {cfg.key()}\n"
    body = yaml.safe_dump(cfg.to_flat(), sort_keys=False, default_flow_style=False)
    return atomic_write_text(Path(run_dir) / CONFIG_FILE, header + body)


def read_config(run_dir: str | Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILE
    return RunConfig.from_flat(load_yaml_mapping(path), where=str(path))


def config_diff(old: RunConfig, new: RunConfig, *, ignore: tuple[str, ...] = EXECUTION_KEYS) -> dict[str, tuple]:
    """Flat keys whose values differ: ``{key: (old, new)}``, keys in ``ignore`` left out."""
    a, b = old.to_flat(), new.to_flat()
    keys = [k for k in dict.fromkeys([*a, *b]) if k not in ignore]
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


def check_run_dir(run_dir: str | Path, cfg: RunConfig) -> None:
    """Refuse a run directory that was made with a different configuration (naming the keys)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        return
    try:
        old = read_config(run_dir)
    except ConfigError as err:
        raise RunDirConflict(f"{run_dir} holds a config that cannot be read ({err}); use another --out") from None
    diff = config_diff(old, cfg)
    if diff:
        changes = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
        raise RunDirConflict(
            f"{run_dir} holds a run with a different config (differing keys: {changes}); "
            "use another --out, or delete the directory to start over"
        )


# ----------------------------------------------------------------------------------- history/metrics
def write_history(run_dir: str | Path, rows: list[dict[str, Any]]) -> Path:
    frame = pd.DataFrame(rows)
    ordered = [c for c in HISTORY_HEAD if c in frame] + [c for c in frame if c not in HISTORY_HEAD]
    return atomic_write_text(Path(run_dir) / HISTORY_FILE, frame[ordered].to_csv(index=False))


def read_history(run_dir: str | Path) -> pd.DataFrame:
    path = Path(run_dir) / HISTORY_FILE
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=HISTORY_HEAD)


def summarise(history: list[dict[str, Any]], tasks: list[str], **fields: Any) -> dict[str, Any]:
    """The ``metrics.json`` dict from history rows: ``last`` and ``best`` (highest mean test accuracy,
    earliest on ties) epoch blocks, efficiency over all epochs, then ``fields`` (``finished``,
    ``config_key``, ``epochs``, ``device``, extras)."""

    def block(row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"epoch": int(row["epoch"])}
        for split in ("train", "test"):
            out[split] = {t: {m: _number(row.get(f"{split}/{t}/{m}")) for m in ("accuracy", "loss")} for t in tasks}
        return out

    def score(row: dict[str, Any]) -> tuple[float, int]:
        value = _number(row.get("test/accuracy", row.get("train/accuracy")))
        return (-1.0 if value is None else value, -int(row["epoch"]))

    device = fields.pop("device", None)
    efficiency = {
        "ms_per_batch": _mean([r["ms_per_batch"] for r in history]),
        "peak_memory_mb": max((r["peak_memory_mb"] for r in history), default=None),
        "device": device,
    }
    return {
        "last": block(history[-1]) if history else None,
        "best": block(max(history, key=score)) if history else None,
        "efficiency": efficiency,
        **fields,
    }


def _number(value: Any) -> float | None:
    return None if value is None or value != value else float(value)  # NaN -> None (valid JSON)


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else None


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """``metrics.json`` as a dict: ``{"last": {"epoch", "train": {task: {"accuracy", "loss"}}, "test":
    ...}, "best": same for the epoch with the highest mean test accuracy, "efficiency":
    {"ms_per_batch", "peak_memory_mb", "device"}, "finished", "config_key", "epochs", ...}``; ``{}``
    when the file does not exist. A failed run also has ``failed`` (``{"error", "epoch", "step"}``).

    Raises:
        RecordError: the file is not a JSON object (truncated or damaged), naming it.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return {}
    try:
        metrics = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise RecordError(
            f"{path}: not valid JSON ({err}); the file is damaged or truncated. Training the run again "
            "(ipslib train with the same --out, or ipslib run) rewrites it from the checkpoint"
        ) from None
    if not isinstance(metrics, dict):
        raise RecordError(f"{path}: expected a JSON object, got {type(metrics).__name__}")
    return metrics


def load_run(run_dir: str | Path) -> RunRecord:
    """Read a run directory (finished or not). Raises FileNotFoundError without ``config.yaml``."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    return RunRecord(run_dir, read_config(run_dir), read_history(run_dir), read_metrics(run_dir))


def is_finished(run_dir: str | Path, cfg: RunConfig | None = None) -> bool:
    """True when ``metrics.json`` says the run finished and, given ``cfg``, was made with the same key.

    A damaged ``metrics.json`` counts as not finished (with a warning naming it), so the run is trained again
    (resumed from its checkpoint) instead of stopping every listing of runs."""
    try:
        metrics = read_metrics(run_dir)
    except RecordError as err:
        warnings.warn(str(err), stacklevel=2)
        return False
    if not metrics.get("finished"):
        return False
    return cfg is None or metrics.get("config_key") == cfg.key()


def torch_bytes(obj: Any) -> bytes:
    """Serialise with ``torch.save`` into memory (then write with :func:`atomic_write_bytes`)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
