"""The dissertation's published numbers and its author's run logs, as shipped in ``book/reference/``.

Sources: Riffi-Aslett (2024), Tables 2-11 (``paper_tables.csv``) and the run logs of the author's
repository ``MRiffiAslett/ips_MaxRiffiAslett`` at ``cdbd1db`` (``runs_final.csv``, ``runs_per_epoch.csv.gz``).
Accuracies in the tables are percentages; in the logs they are fractions.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ipslib.experiments import project_root

__all__ = ["reference_dir", "paper_tables", "run_logs", "run_log_epochs", "parse_match_key", "select",
           "SOURCE_TABLES", "SOURCE_LOGS"]

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


def _same(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def select(table: pd.DataFrame, criteria: Mapping[str, Any]) -> pd.DataFrame:
    """Rows of :func:`paper_tables` whose match key agrees with every criterion (numbers compared as numbers)."""
    keep = table["match"].map(lambda m: all(k in m and _same(m[k], v) for k, v in criteria.items()))
    return table[keep]
