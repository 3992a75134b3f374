"""Log checks of the discrepancy register: a printed cell of the dissertation beside the author's run logs.

A check (an entry of an item's ``log_checks`` in ``book/reference/register.yaml``) selects one cell of
``paper_tables.csv`` by equality on its columns (``printed``), the run logs of ``runs_final.csv`` (or of
``runs_per_epoch.csv.gz`` at ``epoch``) by equality on theirs (``logs``; logs that are byte-identical copies
of another, ``duplicate_of``, are left out) and a ``metric`` column; the logs' value is one value or the mean
± the population standard deviation over the logs, as the dissertation reports its repeats.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from ipslib.config import ConfigError
from ipslib.study.project import project_root
from ipslib.study.reference import same_value

__all__ = ["CHECK_KEYS", "log_check"]

CHECK_KEYS = {"label", "printed", "logs", "metric", "epoch"}


@functools.lru_cache(maxsize=4)
def _csv(path: Path) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        return pd.read_csv(path, low_memory=False)


def _matching(table: pd.DataFrame, selector: dict[str, Any]) -> pd.DataFrame:
    for key, wanted in selector.items():
        if key not in table.columns:
            raise KeyError(key)
        table = table[[same_value(v, wanted) for v in table[key]]]
    return table


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def log_check(check: dict[str, Any], item_id: str = "", root: Path | None = None) -> str:
    """A printed cell beside the run logs that match the check: one value, or mean ± population std."""
    base = (project_root() if root is None else root) / "book" / "reference"
    here = f"register item {item_id} log check {check['label']!r}"
    try:
        printed = _matching(_csv(base / "paper_tables.csv"), check["printed"])
        if len(printed) != 1:
            raise ConfigError(f"{here}: matches {len(printed)} printed cells, not one")
        logs = _csv(base / ("runs_per_epoch.csv.gz" if "epoch" in check else "runs_final.csv"))
        rows = _matching(logs[logs["duplicate_of"].isna()], {**check["logs"], **_epoch(check)})
        values = 100 * rows[check["metric"]].astype(float)
    except KeyError as err:
        raise ConfigError(f"{here}: no column {err} in book/reference") from None
    if values.dropna().empty:
        raise ConfigError(f"{here}: matches no run log with a value of {check['metric']}")
    if len(values) == 1:
        row = rows.iloc[0]
        epoch = check.get("epoch", row.get("last_epoch"))
        state = ", interrupted" if str(row.get("complete")) == "False" else ""
        logged = f"{_number(values.iloc[0])} % (1 log, epoch {int(epoch)}{state})"
    else:
        logged = f"{values.mean():.2f} ± {values.std(ddof=0):.2f} % ({len(values)} logs, population std)"
    return f"{check['label']}: printed {printed.iloc[0]['value']}; logs {logged}"


def _epoch(check: dict[str, Any]) -> dict[str, Any]:
    return {"epoch": check["epoch"]} if "epoch" in check else {}
