"""What every experiment page shares: the notes above its tables, its finished runs, its verdict paragraph."""

from __future__ import annotations

import html

from ipslib.study.experiments import RunSpec
from ipslib.study.report import profile_note, settings_table
from ipslib.study.results import ExperimentResults

__all__ = ["notes", "missing_note", "finished_specs", "reduced_note", "verdict_paragraph", "settings_html"]


def missing_note(results: ExperimentResults) -> str:
    """The runs without a finished record, named (never silently dropped); ``""`` when every run finished."""
    if not results.missing:
        return ""
    names = ", ".join(f"`{name}`" for name in results.missing)
    return f"**Missing runs** (no finished record; see `outputs/{results.profile}/status.json`): {names}"


def notes(results: ExperimentResults) -> list[str]:
    """The Markdown paragraphs at the top of a page: what the profile is, then the missing runs if any."""
    missing = missing_note(results)
    return [profile_note(results), *([missing] if missing else [])]


def finished_specs(results: ExperimentResults) -> list[RunSpec]:
    """The runs of ``results`` (manifest order) whose record is finished."""
    finished = dict(zip(results.runs["key"], results.runs["finished"])) if len(results.runs) else {}
    return [spec for spec in results.specs if finished.get(spec.key)]


def reduced_note(profile: str) -> str:
    """A sentence (with its leading space) saying the runs are reduced in scale; ``""`` for ``paper``."""
    if profile == "paper":
        return ""
    return (
        f" These are **{profile}-profile** runs, reduced in scale from the dissertation's, so they test the "
        "mechanism, not its numbers."
    )


def verdict_paragraph(criterion: str, verdict: str, profile: str, note: str = "") -> str:
    """A page's verdict as shown: its criterion, the verdict, the reduced-scale note and any further note."""
    return f"{criterion} {verdict}{reduced_note(profile)}{note}"


def _rows_html(table) -> str:
    cells = "".join(
        f"<tr><td><code>{html.escape(str(key))}</code></td><td>{html.escape(str(row['this profile']))}</td>"
        f"<td>{html.escape(str(row['paper profile']))}</td></tr>"
        for key, row in table.iterrows()
    )
    head = "<tr><th>setting</th><th>this profile</th><th>paper profile</th></tr>"
    style = "width:100%;table-layout:fixed;word-wrap:break-word"
    return f'<table class="ipslib-settings" style="{style}">{head}{cells}</table>'


def settings_html(results: ExperimentResults) -> str:
    """The settings that differ from the paper profile's, then every setting folded away (HTML)."""
    table = settings_table(results)
    if table.empty:
        return "<p>No run in this profile.</p>"
    differ = table[table["differs"]]
    shown = _rows_html(differ) if len(differ) else "<p>Every shared setting equals the paper profile's.</p>"
    folded = f"<details><summary>All {len(table)} shared settings</summary>{_rows_html(table)}</details>"
    return f"<p>{len(differ)} of {len(table)} shared settings differ from the paper profile:</p>{shown}{folded}"
