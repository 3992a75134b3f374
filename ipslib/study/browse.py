"""Browse run records: a table of finished runs (``ipslib runs --metrics``) and one run's per-epoch history
(``ipslib runs --history RUN_DIR``, printed, or drawn into a PNG with ``--out``).

TensorBoard is not a dependency of ipslib; every run already writes its per-epoch record to ``history.csv``
(:mod:`ipslib.engine.records`), and these functions are its viewer: a text table in the terminal, a figure of
the loss and accuracy curves per task, and plain rows for ``--json``. Run directories come from a profile's
manifest (each distinct run once) or from folders the user names (a run directory, or a folder of them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ipslib.engine.records import CONFIG_FILE, HISTORY_FILE, load_run, read_history
from ipslib.system.errors import RecordError

__all__ = ["manifest_dirs", "folder_dirs", "metrics_rows", "metrics_text", "history_text", "history_figure"]


def manifest_dirs(profile: str, experiment: str | None = None) -> dict[Path, str]:
    """Run directory -> run name (the first experiment's) of every distinct run in ``profile``'s manifest."""
    from ipslib.study.experiments import manifest
    from ipslib.study.project import project_root

    root = project_root()
    dirs: dict[Path, str] = {}
    for row in manifest(profile, experiment):
        dirs.setdefault(root / row["run_dir"], row["name"])
    return dirs


def folder_dirs(folders: list[Path]) -> dict[Path, str]:
    """Run directory -> its folder name, for each folder that is a run directory or holds run directories."""
    dirs: dict[Path, str] = {}
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder of run directories")
        found = (
            [folder] if (folder / CONFIG_FILE).is_file() else sorted(p.parent for p in folder.glob(f"*/{CONFIG_FILE}"))
        )
        if not found:
            raise RecordError(f"{folder}: neither a run directory nor a folder of run directories (no {CONFIG_FILE})")
        dirs |= {d: d.name for d in found}
    return dirs


def _accuracies(block: dict[str, Any] | None) -> dict[str, float | None]:
    return {task: v.get("accuracy") for task, v in ((block or {}).get("test") or {}).items()}


def metrics_rows(dirs: dict[Path, str], *, finished_only: bool = True) -> list[dict[str, Any]]:
    """One row per run: key, name, dataset, epochs, last/best test accuracy per task, time, peak memory."""
    rows = []
    for run_dir, name in dirs.items():
        if not (run_dir / CONFIG_FILE).is_file():
            continue
        record = load_run(run_dir)
        metrics = record.metrics
        if finished_only and not metrics.get("finished"):
            continue
        efficiency = metrics.get("efficiency") or {}
        rows.append(
            {
                "run_dir": str(run_dir),
                "name": name,
                "key": metrics.get("config_key", record.config.key()),
                "dataset": record.config.dataset,
                "finished": bool(metrics.get("finished")),
                "epochs": metrics.get("epochs_done", len(record.history)),
                "last_test": _accuracies(metrics.get("last")),
                "best_test": _accuracies(metrics.get("best")),
                "best_epoch": (metrics.get("best") or {}).get("epoch"),
                "wall_seconds": metrics.get("wall_seconds"),
                "peak_memory_mb": efficiency.get("peak_memory_mb"),
                "device": efficiency.get("device"),
            }
        )
    return rows


def _pct(values: dict[str, float | None]) -> str:
    return " ".join(f"{t} {'-' if v is None else f'{100 * v:.1f}'}" for t, v in values.items())


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"


def metrics_text(rows: list[dict[str, Any]]) -> str:
    """The rows as a text table, accuracies in percent, followed by a count line."""
    lines = [f"{'key':<12}  {'ep':>3}  {'min':>6}  {'peak MB':>7}  last-epoch test acc %  |  best (epoch)  name"]
    for r in rows:
        memory = "-" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:.0f}"
        lines.append(
            f"{r['key']:<12}  {r['epochs']:>3}  {_minutes(r['wall_seconds']):>6}  {memory:>7}  {_pct(r['last_test'])}"
            f"  |  {_pct(r['best_test'])} ({r['best_epoch']})  {r['name']}"
        )
    lines.append(f"{len(rows)} finished run(s)")
    return "\n".join(lines)


def _history(run_dir: Path) -> pd.DataFrame:
    if not (run_dir / HISTORY_FILE).is_file():
        raise FileNotFoundError(f"{run_dir / HISTORY_FILE}: no such file (not a run directory, or no epoch finished)")
    history = read_history(run_dir)
    if history.empty:
        raise RecordError(f"{run_dir / HISTORY_FILE}: no epoch recorded yet")
    return history


def _tasks(history: pd.DataFrame) -> list[str]:
    parts = [c.split("/") for c in history.columns]
    return [p[1] for p in parts if len(p) == 3 and p[0] == "test" and p[2] == "accuracy"]


def history_text(run_dir: str | Path) -> str:
    """Per epoch: learning rate, seconds, train and test loss, test accuracy (%) per task."""
    history = _history(Path(run_dir))
    tasks = _tasks(history)
    head = f"{'epoch':>5}  {'lr':>9}  {'s':>6}  {'train loss':>10}  {'test loss':>9}  " + "  ".join(
        f"{t:>8}" for t in tasks
    )
    lines = [f"{run_dir}: test accuracy (%) per task", head]
    for _, row in history.iterrows():
        accs = "  ".join(f"{100 * row[f'test/{t}/accuracy']:>8.1f}" for t in tasks)
        lines.append(
            f"{int(row['epoch']):>5}  {row['lr']:>9.2e}  {row['epoch_seconds']:>6.1f}  {row['train/loss']:>10.4f}  "
            f"{row['test/loss']:>9.4f}  {accs}"
        )
    return "\n".join(lines)


def history_figure(run_dir: str | Path):
    """A Figure: train and test loss, and train (dashed) and test (solid) accuracy per task, per epoch."""
    from matplotlib.figure import Figure

    history = _history(Path(run_dir))
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss, acc = fig.subplots(1, 2)
    for split, style in (("train", "--"), ("test", "-")):
        loss.plot(history["epoch"], history[f"{split}/loss"], style, label=split)
        for i, task in enumerate(_tasks(history)):
            acc.plot(
                history["epoch"],
                100 * history[f"{split}/{task}/accuracy"],
                style,
                color=f"C{i}",
                label=task if split == "test" else None,
            )
    loss.set(xlabel="epoch", ylabel="loss", title="loss")
    acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy per task (dashed: train, solid: test)")
    loss.legend()
    acc.legend(fontsize=8)
    fig.suptitle(str(run_dir), fontsize=9)
    return fig
