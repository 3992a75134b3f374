"""What every experiment page shares: the notes above its tables, its finished runs, its verdict paragraph."""

from __future__ import annotations

from ipslib.study.experiments import RunSpec
from ipslib.study.report import profile_note
from ipslib.study.results import ExperimentResults

__all__ = ["notes", "missing_note", "finished_specs", "reduced_note", "verdict_paragraph"]


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
