"""The claims ledger and the verdict text of each chapter, from :mod:`ipslib.study.verdict`'s results.

``ledger(profile)`` tests every claim of every params file and returns one record per claim (what
``ipslib claims --profile P --json`` prints); ``ledger_table`` is the ledger page's table;
``verdict_table`` and ``verdict_markdown`` are a chapter's verdict section.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from ipslib.study import verdict
from ipslib.study.arms import profile_runs
from ipslib.study.experiments import load_experiments

__all__ = ["ledger", "ledger_table", "verdict_table", "verdict_markdown", "found_box", "counts", "RULES"]

RULES = (
    "An arm is every recorded run of its setting in this profile (all seeds). An arm has learned a task when "
    f"its train and test accuracy beat chance by more than {100 * verdict.LEARNED_FLOOR:g} points and two "
    "binomial standard errors; a comparison with an arm that did not learn is inconclusive. A verdict needs "
    f"{verdict.MIN_SEEDS} seeds per arm; the effect is the difference of the arm means in points with a 95 % "
    "Welch interval over seeds. A directional claim is supported when that interval lies on its side of 0 and "
    "contradicted when it lies on the other; a claim of no effect is supported only by equivalence (the 90 % "
    "interval inside its margin) and contradicted by a significant difference."
)


def _interval(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:+.1f}, {ci[1]:+.1f}]"


def verdict_table(evaluated: list[verdict.ClaimResult]) -> pd.DataFrame:
    """One row per claim and task: arm means and seeds, the effect with its 95 % interval, the verdict."""
    rows = []
    for i, item in enumerate(evaluated, start=1):
        for t in item.tasks:
            high, low = item.arms
            rows.append(
                {
                    "claim": i,
                    "task": t.task,
                    "chance (%)": 100 * t.chance,
                    "higher arm (%)": 100 * high.mean(t.task),
                    "lower arm (%)": 100 * low.mean(t.task),
                    "seeds": f"{high.n_seeds} / {low.n_seeds}",
                    "effect (points)": t.effect_pp,
                    "95 % interval": _interval(t.ci95),
                    "verdict": t.verdict,
                    "reason": t.reason,
                }
            )
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).set_index(["claim", "task"])
    return table.round({c: 1 for c in table.columns if "(%)" in c or "points" in c})


def _sentence(i: int, item: verdict.ClaimResult) -> str:
    claim = item.claim
    source = f" Source: {claim.source}." if claim.source else ""
    head = f"{i}. *{claim.text}*{source} **{item.verdict.capitalize()}**"
    if not item.tasks:
        return f"{head}: {item.reason}."
    high, low = item.arms
    parts = []
    for t in item.tasks:
        effect = "" if t.effect_pp != t.effect_pp else f"{t.effect_pp:+.1f} points {_interval(t.ci95)}".strip()
        parts.append(f"{t.task} {effect} ({t.verdict}{': ' + t.reason if t.reason else ''})")
    seeds = f"{high.n_seeds} and {low.n_seeds} seed(s)"
    return f"{head}: `{high.label}` against `{low.label}`, {seeds}; " + "; ".join(parts) + "."


def verdict_markdown(evaluated: list[verdict.ClaimResult], profile: str) -> str:
    """The chapter's verdict paragraph, computed from the claims' results."""
    if not evaluated:
        return "This chapter makes no comparative claim to test; see the tables above."
    summary = ", ".join(f"{n} {outcome}" for outcome, n in counts(evaluated).items() if n)
    scale = {
        "paper": "at the dissertation's settings",
        "cpu": "at the reduced cpu scale, so a verdict speaks to the direction of a claim, not to its numbers",
        "smoke": "on smoke runs, which train for seconds and test nothing about IPS",
        "gpu": "on the short gpu campaign (a few epochs), so a verdict speaks to the direction of a claim at most",
    }[profile]
    lines = [f"**Verdicts ({profile} profile, {scale}):** of {len(evaluated)} claim(s), {summary}. {RULES}", ""]
    lines += [_sentence(i, item) for i, item in enumerate(evaluated, start=1)]
    return "\n".join(lines)


def counts(evaluated: list[verdict.ClaimResult]) -> dict[str, int]:
    """How many claims have each outcome (every outcome listed, in a fixed order)."""
    return {o: sum(item.verdict == o for item in evaluated) for o in verdict.OUTCOMES}


def ledger(profile: str, root: Path | None = None) -> list[dict[str, Any]]:
    """Every claim of every params file tested on ``profile``: one record each (``ipslib claims --json``)."""
    runs = profile_runs(profile, root)
    records = []
    for name, experiment in load_experiments(root).items():
        specs = experiment.runs(profile)
        for i, claim in enumerate(experiment.claims, start=1):
            record = verdict.claim_record(
                verdict.evaluate(claim, specs, runs)
                if specs
                else verdict.ClaimResult(
                    claim, profile, "not testable here", "this profile runs no experiment of this chapter"
                )
            )
            records.append(
                {
                    "experiment": name,
                    "claim": i,
                    "title": experiment.title,
                    "dissertation": experiment.dissertation,
                    **record,
                }
            )
    return records


def ledger_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The ledger page's table: one row per claim, its strongest task summarised."""
    rows = []
    for r in records:
        tested = [t for t in r["tasks"] if t["ci95"] is not None] or r["tasks"]
        effects = "; ".join(_effect_text(t) for t in tested if t["effect_pp"] is not None)
        seeds = " / ".join(str(a["n_seeds"]) for a in r["arms"])
        rows.append(
            {
                "chapter": r["experiment"],
                "claim": r["text"],
                "source": r["source"],
                "effect (points) [95 %]": effects,
                "seeds": seeds,
                "verdict": r["verdict"],
                "register": ", ".join(r["register"]),
            }
        )
    return pd.DataFrame(rows)


def _effect_text(task: dict[str, Any]) -> str:
    interval = "" if task["ci95"] is None else " [" + ", ".join(f"{v:+.1f}" for v in task["ci95"]) + "]"
    return f"{task['task']} {task['effect_pp']:+.1f}{interval}"


def _found_line(item: verdict.ClaimResult) -> str:
    claim = html.escape(item.claim.text)
    tasks = [t for t in item.tasks if t.effect_pp == t.effect_pp]
    if not tasks:
        return f"<li>{claim} <b>{item.verdict}</b>: {html.escape(item.reason)}</li>"
    seeds = " and ".join(str(arm.n_seeds) for arm in item.arms)
    effects = "; ".join(f"{t.task} {t.effect_pp:+.1f} {_interval(t.ci95)}".strip() for t in tasks)
    return f"<li>{claim} <b>{item.verdict}</b>: {html.escape(effects)} points (95 % interval; {seeds} seed(s))</li>"


def found_box(evaluated: list[verdict.ClaimResult], profile: str) -> str:
    """The box at the top of a chapter: each claim with its verdict, effect and interval (HTML)."""
    if not evaluated:
        body = "<p>This chapter makes no comparative claim of the dissertation to test.</p>"
    else:
        body = "<ul>" + "".join(_found_line(item) for item in evaluated) + "</ul>"
        body += f"<p>Verdicts in the {html.escape(profile)} profile; the rules are under <i>Claims tested</i>.</p>"
    return f'<div class="admonition note"><p class="admonition-title">What we found</p>{body}</div>'


def ledger_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many claims of the ledger have each outcome (every outcome listed)."""
    return {o: sum(r["verdict"] == o for r in records) for o in verdict.OUTCOMES}


def ledger_summary(records: list[dict[str, Any]], profile: str) -> str:
    """The ledger page's opening sentence: the counts per outcome."""
    shown = ", ".join(f"**{n} {o}**" for o, n in ledger_counts(records).items() if n)
    return (
        f"{len(records)} claims tested on the **{profile}** profile's run records: {shown}. A claim the profile "
        "cannot pose says why; an inconclusive one says what is missing (seeds, an arm that did not learn, an "
        "interval that includes 0)."
    )


def ledger_html(records: list[dict[str, Any]]) -> str:
    """The ledger as an HTML table that wraps within the text column, linking each claim to its chapter and
    register items."""
    head = "".join(f"<th>{h}</th>" for h in ("chapter", "claim", "effect (points) [95 %]", "seeds", "verdict"))
    rows = []
    for record, row in zip(records, ledger_table(records).to_dict("records")):
        chapter = f'<a href="{record["experiment"]}.html">{html.escape(record["title"])}</a>'
        links = ", ".join(f'<a href="register.html#{r.lower()}">{r}</a>' for r in record["register"])
        source = html.escape(record["source"] or record["dissertation"])
        claim = f"{html.escape(record['text'])}<br><small>{source}{'; register ' + links if links else ''}</small>"
        why = f"<br><small>{html.escape(_short(record['reason']))}</small>" if record["reason"] else ""
        cells = [
            chapter,
            claim,
            html.escape(row["effect (points) [95 %]"]),
            row["seeds"],
            f"<b>{record['verdict']}</b>{why}",
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    style = "width:100%;table-layout:fixed;white-space:normal;word-wrap:break-word;font-size:0.85em"
    return f'<table class="ipslib-ledger" style="{style}"><tr>{head}</tr>{"".join(rows)}</table>'


def _short(reason: str, parts: int = 2) -> str:
    """The first ``parts`` clauses of a reason (the chapter gives all of them)."""
    clauses = reason.split("; ")
    more = len(clauses) - parts
    return "; ".join(clauses[:parts]) + (f"; … ({more} more on the chapter)" if more > 0 else "")
