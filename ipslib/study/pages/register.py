"""The discrepancy-register page: counts, the outcome rule and one table per group, as HTML that wraps.

The tables have four columns (item, what differs, where tested, outcome) of fixed shares of the text
column, with ``white-space: normal`` and wrapping inside long names, so that nothing overflows the column.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd

from ipslib.study.register import OUTCOMES, RULE, load_register

__all__ = ["summary", "intro", "group_html", "WIDTHS"]

WIDTHS = (10, 44, 22, 24)
"""Shares of the text column (%) of the columns item, what differs, where tested, outcome."""
_CELL = "white-space: normal; overflow-wrap: anywhere; word-break: break-word; vertical-align: top; text-align: left"
_SMALL = "font-size: 0.85em"
_BASES = {"claims": "by claims", "not testable here": "not testable", "no conclusion at stake": "no conclusion"}
"""The bases of an outcome and their column names in the summary."""


def summary(table: pd.DataFrame, groups: dict[str, Any] | None = None) -> pd.DataFrame:
    """Per group: items, their outcomes and the basis of each outcome; a total row."""
    groups = groups or load_register()[0]
    rows = {}
    for group, part in table.groupby("group", sort=False):
        counts = {"items": len(part)}
        counts |= {o: int((part["outcome"] == o).sum()) for o in OUTCOMES}
        counts |= {label: int((part["basis"] == b).sum()) for b, label in _BASES.items()}
        rows[f"{group}: {groups[group]['short']}"] = counts
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.loc["all"] = frame.sum()
    frame.index.name = "group"
    return frame


def intro(table: pd.DataFrame, profile: str) -> str:
    """The opening paragraph: what the page holds, the counts in ``profile`` and the outcome rule."""
    n = {o: int((table["outcome"] == o).sum()) for o in OUTCOMES}
    groups = ", ".join(f"{(table['group'] == g).sum()} {g}" for g in table["group"].unique())
    return (
        f"All {len(table)} items of the register ({groups}). **Outcome** answers one question: does the "
        f"dissertation's conclusion survive the discrepancy? In the **{profile}** profile: {n['yes']} yes, "
        f"{n['no']} no, {n['untested']} untested. {RULE}"
    )


def _text(value: str) -> str:
    """Escaped text with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(value), quote=False))


def _td(content: str, small: bool = False) -> str:
    return f'<td style="{_CELL}{"; " + _SMALL if small else ""}">{content}</td>'


def _differs(row: pd.Series, heads: dict[str, str]) -> str:
    parts = [
        f"<p><b>{_text(heads['says'])}:</b> {_text(row['says'])}</p>",
        f"<p><b>{_text(heads['shows'])}:</b> {_text(row['shows'])}"
        + (f" <i>({_text(row['where'])})</i>" if row["where"] else "")
        + "</p>",
    ]
    if row["log_checks"]:
        checks = "".join(f"<li>{_text(c)}</li>" for c in row["log_checks"])
        parts.append(f"<p><b>computed from the logs</b> (book/reference):</p><ul>{checks}</ul>")
    parts.append(f"<p><b>ipslib:</b> {_text(row['ipslib'])}</p>")
    if row["conclusion"]:
        parts.append(f"<p><b>conclusion at stake:</b> {_text(row['conclusion'])}</p>")
    return "".join(parts)


def _chapter(name: str) -> str:
    return f'<a href="{html.escape(name)}.html">{html.escape(name)}</a>'


def _where_tested(row: pd.Series) -> str:
    parts = []
    if row["chapters"]:
        parts.append("<p><b>chapters:</b> " + ", ".join(_chapter(c) for c in row["chapters"]) + "</p>")
    if row["tests"]:
        parts.append(
            "<p><b>tests:</b> "
            + "; ".join(f"<code>{_text(t.removeprefix('tests/'))}</code>" for t in row["tests"])
            + "</p>"
        )
    if row["analyses"]:
        parts.append("<p><b>analyses:</b> " + "; ".join(f"<code>{_text(a)}</code>" for a in row["analyses"]) + "</p>")
    if row["log_checks"]:
        parts.append(f"<p><b>log checks:</b> {len(row['log_checks'])}</p>")
    if row["not_testable"]:
        parts.append(f"<p><b>not testable here:</b> {_text(row['not_testable'])}</p>")
    return "".join(parts) or "—"


def _outcome(row: pd.Series) -> str:
    parts = [f"<p><b>{row['outcome']}</b><br><i>{_text(row['basis'])}</i></p>"]
    if row["basis"] != "not testable here":
        parts.append(f"<p>{_text(row['reason'])}</p>")
    by_reason: dict[str, dict[str, list[str]]] = {}
    for c in row["claims"]:
        by_reason.setdefault(c["reason"], {}).setdefault(c["experiment"], []).append(str(c["claim"]))
    items = []
    for reason, chapters in by_reason.items():
        where = "; ".join(f"{_chapter(name)} claim {', '.join(n)}" for name, n in chapters.items())
        items.append(f"<li>{where}: {_text(reason)}</li>")
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    return "".join(parts)


def group_html(table: pd.DataFrame, group: str, groups: dict[str, Any] | None = None) -> str:
    """The table of one group (``P``, ``F`` or ``T``) as HTML that wraps within the text column."""
    heads = (groups or load_register()[0])[group]
    cols = "".join(f'<col style="width: {w}%">' for w in WIDTHS)
    header = "".join(f'<th style="{_CELL}">{h}</th>' for h in ("item", "what differs", "where tested", "outcome"))
    body = []
    for _, row in table[table["group"] == group].iterrows():
        item = f"<b>{row['id']}</b><br>{_text(row['topic'])}"
        cells = (item, _differs(row, heads), _where_tested(row), _outcome(row))
        body.append(f'<tr id="register-{row["id"]}">' + "".join(_td(c, i >= 2) for i, c in enumerate(cells)) + "</tr>")
    return (
        '<table class="register" style="width: 100%; table-layout: fixed; border-collapse: collapse; '
        f'white-space: normal"><colgroup>{cols}</colgroup><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
