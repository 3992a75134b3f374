"""The dissertation's published numbers and its author's run logs, as shipped in ``book/reference/``.

Sources: Riffi-Aslett (2024), Tables 2-11 (``paper_tables.csv``) and the run logs of the author's
repository ``MRiffiAslett/ips_MaxRiffiAslett`` at ``cdbd1db`` (``runs_final.csv``, ``runs_per_epoch.csv.gz``).
Accuracies in the tables are percentages; in the logs they are fractions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ipslib.study.project import project_root

__all__ = [
    "reference_dir",
    "paper_tables",
    "run_logs",
    "run_log_epochs",
    "parse_match_key",
    "REFERENCE_KEYS",
    "NOT_SETTINGS",
    "cell_settings",
    "same_value",
    "SOURCE_TABLES",
    "SOURCE_LOGS",
]

SOURCE_TABLES = "Riffi-Aslett (2024), {table}"
SOURCE_LOGS = "author's run logs (MRiffiAslett/ips_MaxRiffiAslett@cdbd1db, results library)"


def reference_dir(root: Path | None = None) -> Path:
    return (project_root() if root is None else root) / "book" / "reference"


def parse_match_key(key: str) -> dict[str, str]:
    """``"experiment=x;digit_size=28"`` → ``{"experiment": "x", "digit_size": "28"}``."""
    if not isinstance(key, str) or not key:
        return {}
    return dict(part.split("=", 1) for part in key.split(";") if "=" in part)


_WEIGHTS = {"V1": "imagenet_v1", "V2": "imagenet_v2"}
REFERENCE_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "train_size": ("n_train", int),
    "digit_size": ("digit_size", int),
    "noise_count": ("n_noise", int),
    "canvas_size": ("canvas_size", int),
    "patch_size": ("patch_size", int),
    "stkim_K": ("stkim_k", int),
    "stkim_P": ("stkim_p", float),
    "diversity_weight": ("diversity_weight", float),
    "subset_pct": ("subset_fraction", lambda v: float(v) / 100),
    "backbone": ("arch", str),
    "backbone_weights": ("weights", lambda v: _WEIGHTS.get(v, v)),
}
"""Settings named in the tables' match keys -> (our flat config key, conversion of the printed value)."""
NOT_SETTINGS = ("experiment", "subfolder")
"""Match-key parts that name where the author's logs lie, not a setting."""


def cell_settings(match: dict[str, str], where: str = "paper_tables.csv") -> dict[str, Any]:
    """A parsed match key in our flat keys and values (``experiment`` and ``subfolder`` left out)."""
    unknown = sorted(set(match) - set(REFERENCE_KEYS) - set(NOT_SETTINGS))
    if unknown:
        raise ValueError(
            f"{where}: match key part(s) {', '.join(unknown)} have no translation; known: "
            f"{', '.join([*REFERENCE_KEYS, *NOT_SETTINGS])} (add it to reference.REFERENCE_KEYS)"
        )
    return {REFERENCE_KEYS[k][0]: REFERENCE_KEYS[k][1](v) for k, v in match.items() if k in REFERENCE_KEYS}


@functools.lru_cache(maxsize=4)
def _paper_tables(path: str, mtime_ns: int) -> pd.DataFrame:  # the file's time in the key: an edit is read
    table = pd.read_csv(path)
    table["match"] = table["match_key"].map(parse_match_key)
    return table


def paper_tables(root: Path | None = None) -> pd.DataFrame:
    """Tables 2-11 in long format, with the parsed ``match_key`` in column ``match``."""
    path = reference_dir(root) / "paper_tables.csv"
    return _paper_tables(str(path), path.stat().st_mtime_ns).copy()


def run_logs() -> pd.DataFrame:
    """One row per run log of the author (settings, last/best-epoch metrics, efficiency)."""
    return pd.read_csv(reference_dir() / "runs_final.csv")


def run_log_epochs() -> pd.DataFrame:
    """One row per (run log, epoch): per-task train/validation loss and accuracy."""
    return pd.read_csv(reference_dir() / "runs_per_epoch.csv.gz")


def same_value(a: Any, b: Any) -> bool:
    """Settings compared as numbers where both are numbers (``"28"`` equals ``28.0``), else as text;
    missing values (None or NaN) equal only each other."""
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)
