"""The discrepancy register: ``book/reference/register.yaml`` with each item's outcome computed, never typed.

Every item (P1-P19 text versus code, F1-F10 fork versus the original IPS, T1-T13 text versus the logs; the
spec's §11 in its order) says what differs, what ipslib does, where it is tested and which conclusion of
the dissertation it bears on. Its outcome follows :data:`RULE`:

* an item that claims of the params files name (``register: [P5, ...]``) takes the verdicts of those claims
  in the profile: **yes** when every one is supported, **no** when any is contradicted, otherwise
  **untested** with each claim's reason (basis ``claims``);
* an item with a conclusion at stake that no claim tests is **untested**, with the reason it cannot be
  tested here (basis ``not testable here``);
* an item on which no conclusion rests (an implementation detail, a printed value) is **untested** with
  basis ``no conclusion at stake``; its unit tests, analyses and log checks say how it was checked.

``register_table(profile)`` checks every reference first: a chapter must be a params file, a test a
function of a test file, an analysis an importable name, a log check must match one printed cell and at
least one run log, and every register id a claim names must exist. A broken reference is an error naming
the item.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ipslib.config import ConfigError, check_keys
from ipslib.study.experiments import load_experiments
from ipslib.study.ledger import ledger
from ipslib.study.logcheck import CHECK_KEYS, log_check
from ipslib.study.project import project_root
from ipslib.study.verdict import MIN_SEEDS

__all__ = [
    "RULE",
    "OUTCOMES",
    "GROUPS",
    "load_register",
    "item_outcome",
    "claim_reason",
    "register_table",
]

RULE = (
    "An item that claims of the params files name takes its outcome from their verdicts in this profile: "
    "**yes** when every one is supported, **no** when any is contradicted, otherwise **untested** with "
    "each claim's reason. An item with a conclusion at stake that no claim tests is **untested** "
    "(*not testable here*, with the reason). An item on which no conclusion rests, an implementation "
    "detail or a printed value, is **untested** with the basis *no conclusion at stake*; its unit tests, "
    "analyses and log checks say how it was checked."
)
OUTCOMES = ("yes", "no", "untested")
GROUPS = ("P", "F", "T")
_ITEM_KEYS = {
    "id",
    "topic",
    "says",
    "shows",
    "where",
    "ipslib",
    "conclusion",
    "tested_in",
    "not_testable",
    "log_checks",
}
_TESTED_KEYS = {"chapters", "tests", "analyses"}


def _path(root: Path | None) -> Path:
    return (project_root() if root is None else root) / "book" / "reference" / "register.yaml"


def _check_numbering(items: list[dict[str, Any]], where: Path) -> None:
    ids = [item["id"] for item in items]
    for group in GROUPS:
        numbers = [int(i[1:]) for i in ids if re.fullmatch(rf"{group}\d+", i)]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ConfigError(f"{where}: the {group} items must be numbered {group}1, {group}2, ... without gaps")
    stray = [i for i in ids if not re.fullmatch(r"[PFT]\d+", i)]
    if stray:
        raise ConfigError(f"{where}: ids {', '.join(map(str, stray))} are not P, F or T followed by a number")


def _parse_item(raw: Any, where: Path, n: int) -> dict[str, Any]:
    item = check_keys(raw, _ITEM_KEYS, f"{where} items[{n}]")
    for key in ("id", "topic", "says", "shows", "ipslib"):
        if not item.get(key):
            raise ConfigError(f"{where} items[{n}]: missing {key!r}")
    here = f"register item {item['id']}"
    tested = check_keys(item.get("tested_in") or {}, _TESTED_KEYS, f"{here} tested_in")
    checks = item.get("log_checks") or []
    for check in checks:
        check_keys(check, CHECK_KEYS, f"{here} log_checks")
        if not {"label", "printed", "logs", "metric"} <= set(check):
            raise ConfigError(f"{here}: a log check needs label, printed, logs and metric")
    return {
        **item,
        "group": item["id"][0],
        "where": item.get("where", ""),
        "conclusion": item.get("conclusion", ""),
        "not_testable": item.get("not_testable", ""),
        "chapters": list(tested.get("chapters") or []),
        "tests": list(tested.get("tests") or []),
        "analyses": list(tested.get("analyses") or []),
        "log_checks": list(checks),
    }


def load_register(root: Path | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The register's groups (P, F, T: title, spec section, column headings) and its items, validated."""
    where = _path(root)
    raw = yaml.safe_load(where.read_text())
    groups = raw.get("groups") or {}
    if list(groups) != list(GROUPS):
        raise ConfigError(f"{where}: groups must be {', '.join(GROUPS)} in that order")
    items = [_parse_item(entry, where, n) for n, entry in enumerate(raw.get("items") or [])]
    _check_numbering(items, where)
    return groups, items


@functools.lru_cache(maxsize=64)
def _test_names(path: Path, mtime: float) -> frozenset[str]:
    names = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {f"{node.name}::{f.name}" for f in node.body if isinstance(f, ast.FunctionDef)}
    return frozenset(names)


def _check_references(item: dict[str, Any], chapters: set[str], root: Path) -> None:
    here = f"register item {item['id']}"
    for name in item["chapters"]:
        if name not in chapters:
            raise ConfigError(f"{here}: chapter {name!r} is not a params file (params/{name}.yaml)")
    for ref in item["tests"]:
        file, _, name = ref.partition("::")
        path = root / file
        if not (name and path.is_file() and name in _test_names(path, path.stat().st_mtime)):
            raise ConfigError(f"{here}: test {ref!r} does not exist (tests/test_x.py::test_name)")
    for ref in item["analyses"]:
        module, _, name = ref.rpartition(".")
        try:
            getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            raise ConfigError(f"{here}: analysis {ref!r} is not an importable name") from None


def _check_consistency(item: dict[str, Any], links: list[dict[str, Any]]) -> None:
    here = f"register item {item['id']}"
    if links and not item["conclusion"]:
        raise ConfigError(f"{here}: claims test it, so it must name the conclusion it bears on")
    missing = sorted({r["experiment"] for r in links} - set(item["chapters"]))
    if missing:
        raise ConfigError(f"{here}: tested_in.chapters lacks {', '.join(missing)}, whose claims name it")
    if item["conclusion"] and not links and not item["not_testable"]:
        raise ConfigError(f"{here}: a conclusion is at stake and no claim tests it; say why (not_testable)")
    checked = item["tests"] or item["analyses"] or item["log_checks"] or item["chapters"]
    if not checked and not item["not_testable"]:
        raise ConfigError(f"{here}: nothing tests it; say why (not_testable)")


def claim_reason(record: dict[str, Any]) -> str:
    """One claim's verdict with its reason in a few words, from the ledger record's structure."""
    verdict = record["verdict"]
    if verdict in ("supported", "contradicted"):
        seeds = " and ".join(str(a["n_seeds"]) for a in record.get("arms", []))
        return f"{verdict} ({seeds} seeds)" if seeds else verdict
    if verdict == "not testable here":
        return f"{verdict}: {record.get('reason', '')}".rstrip(": ")
    parts = []
    seeds = [a["n_seeds"] for a in record.get("arms", [])]
    if seeds and min(seeds) < MIN_SEEDS:
        parts.append(f"{' and '.join(map(str, seeds))} seed(s) per arm, {MIN_SEEDS} needed")
    unlearned = [t["task"] for t in record.get("tasks", []) if not all(a["learned"] for a in t["arms"])]
    if unlearned:
        parts.append("an arm did not learn " + ", ".join(unlearned))
    if not parts and record.get("reason"):
        parts.append(record["reason"])
    return f"{verdict}: " + "; ".join(parts) if parts else verdict


def _count_text(verdicts: list[str]) -> str:
    counts = {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}
    return f"{len(verdicts)} claim(s): " + ", ".join(f"{n} {v}" for v, n in counts.items())


def item_outcome(item: dict[str, Any], links: list[dict[str, Any]]) -> tuple[str, str, str]:
    """``(outcome, basis, reason)`` of one item given the ledger records of the claims that name it."""
    if links:
        verdicts = [r["verdict"] for r in links]
        if all(v == "supported" for v in verdicts):
            outcome = "yes"
        elif "contradicted" in verdicts:
            outcome = "no"
        else:
            outcome = "untested"
        return outcome, "claims", _count_text(verdicts)
    if item.get("conclusion"):
        return "untested", "not testable here", item.get("not_testable", "")
    checks = [
        (len(item.get("tests", [])), "unit test(s)"),
        (len(item.get("analyses", [])), "analysis function(s)"),
        (len(item.get("log_checks", [])), "log check(s)"),
    ]
    how = ", ".join(f"{n} {what}" for n, what in checks if n)
    tail = f"; checked by {how}." if how else f". {item.get('not_testable', '')}".rstrip(". ") + "."
    return "untested", "no conclusion at stake", "No conclusion of the dissertation rests on it" + tail


def _links(records: list[dict[str, Any]], ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    links: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for record in records:
        for rid in record.get("register", []):
            if rid not in ids:
                raise ConfigError(
                    f"params/{record['experiment']}.yaml claim {record['claim']}: register id {rid!r} is not an "
                    "item of book/reference/register.yaml"
                )
            links[rid].append(record)
    return links


def _claims_of(links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"experiment": r["experiment"], "claim": r["claim"], "text": r["text"], "verdict": r["verdict"]}
        | {"reason": claim_reason(r)}
        for r in links
    ]


def register_table(
    profile: str, *, root: Path | None = None, records: list[dict[str, Any]] | None = None
) -> pd.DataFrame:
    """One row per register item with its references checked and its outcome in ``profile`` computed.

    ``records``: the claims ledger to use (default ``ledger(profile)``)."""
    root = project_root() if root is None else root
    groups, items = load_register(root)
    chapters = set(load_experiments(root))
    records = ledger(profile, root) if records is None else records
    links = _links(records, {item["id"] for item in items})
    rows = []
    for item in items:
        _check_references(item, chapters, root)
        _check_consistency(item, links[item["id"]])
        outcome, basis, reason = item_outcome(item, links[item["id"]])
        checks = [log_check(c, item["id"], root) for c in item["log_checks"]]
        rows.append(
            {
                **{k: item[k] for k in ("id", "group", "topic", "says", "shows", "where", "ipslib", "conclusion")},
                "group_title": groups[item["group"]]["title"],
                **{k: item[k] for k in ("chapters", "tests", "analyses", "not_testable")},
                "log_checks": checks,
                "claims": _claims_of(links[item["id"]]),
                "outcome": outcome,
                "basis": basis,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows).set_index("id", drop=False)
