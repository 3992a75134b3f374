"""``outputs/<profile>/status.json``: what the last execution of each experiment did (the book's status page).

Several ``ipslib run`` processes may share an outputs folder, so every read-modify-write of the file holds
its lock (``.status.json.lock`` beside it, :func:`ipslib.system.files.exclusive_lock`): each process
changes only its own experiments' entries and none is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipslib.study.project import project_root
from ipslib.system.errors import RecordError
from ipslib.system.files import atomic_write_json, exclusive_lock

__all__ = ["status_path", "read_status", "update_status", "rekey_profile"]


def status_path(profile: str) -> Path:
    return project_root() / "outputs" / profile / "status.json"


def read_status(profile: str) -> dict[str, Any]:
    """The status entries by experiment name; ``{}`` before the first execution.

    Raises:
        RecordError: the file is not a JSON object (damaged), naming it.
    """
    path = status_path(profile)
    if not path.is_file():
        return {}
    try:
        status = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise RecordError(f"{path}: not valid JSON ({err}); delete it to start a new record of executions") from None
    if not isinstance(status, dict):
        raise RecordError(f"{path}: expected a JSON object of experiments, got {type(status).__name__}")
    return status


def update_status(profile: str, experiment: str, entry: Callable[[dict[str, Any]], dict[str, Any]]) -> dict:
    """Replace one experiment's entry by ``entry(previous entry or {})``, under the file's lock; returns it."""
    path = status_path(profile)
    with exclusive_lock(path.with_name(f".{path.name}.lock"), what=str(path)):
        status = read_status(profile)
        status[experiment] = entry(dict(status.get(experiment, {})))
        atomic_write_json(path, status)
        return status[experiment]


def rekey_profile(profile: str, folders: list[Path] | None = None) -> list[Any]:
    """Migrate the run records of ``outputs/<profile>/runs`` to the current config keys
    (:func:`ipslib.engine.migrate.rekey_runs`) and rename the keys of ``train_seconds`` in the profile's
    ``status.json``; with ``folders``, migrate those folders of run directories instead (status untouched).

    Returns:
        the :class:`~ipslib.engine.migrate.Rekeyed` runs that changed.
    """
    from ipslib.engine.migrate import rekey_runs

    own = not folders
    folders = folders or [project_root() / "outputs" / profile / "runs"]
    changed = [r for folder in folders if Path(folder).is_dir() for r in rekey_runs(folder)]
    renamed = {r.old_key: r.new_key for r in changed if r.old_key}
    path = status_path(profile)
    if own and renamed and path.is_file():
        with exclusive_lock(path.with_name(f".{path.name}.lock"), what=str(path)):
            status = read_status(profile)
            for entry in status.values():
                seconds = entry.get("train_seconds") or {}
                entry["train_seconds"] = {renamed.get(k, k): v for k, v in seconds.items()}
            atomic_write_json(path, status)
    return changed
