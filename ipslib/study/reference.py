"""The dissertation's published numbers and its author's run logs, as shipped in ``book/reference/``.

Sources: Riffi-Aslett (2024), Tables 2-11 (``paper_tables.csv``) and the run logs of the author's
repository ``MRiffiAslett/ips_MaxRiffiAslett`` at ``cdbd1db`` (``runs_final.csv``, ``runs_per_epoch.csv.gz``).
Accuracies in the tables are percentages; in the logs they are fractions.
"""

from __future__ import annotations

import functools
import math
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
    "same_value",
    "SOURCE_TABLES",
    "SOURCE_LOGS",
]

SOURCE_TABLES = "Riffi-Aslett (2024), {table}"
SOURCE_LOGS = "author's run logs (MRiffiAslett/ips_MaxRiffiAslett@cdbd1db, results library)"


def reference_dir() -> Path:
    return project_root() / "book" / "reference"


def parse_match_key(key: str) -> dict[str, str]:
    """``"experiment=x;digit_size=28"`` → ``{"experiment": "x", "digit_size": "28"}``."""
    if not isinstance(key, str) or not key:
        return {}
    return dict(part.split("=", 1) for part in key.split(";") if "=" in part)


@functools.lru_cache(maxsize=1)
def _paper_tables(path: str) -> pd.DataFrame:
    table = pd.read_csv(path)
    table["match"] = table["match_key"].map(parse_match_key)
    return table


def paper_tables() -> pd.DataFrame:
    """Tables 2-11 in long format, with the parsed ``match_key`` in column ``match``."""
    return _paper_tables(str(reference_dir() / "paper_tables.csv")).copy()


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
