"""Computed verdicts: each dissertation claim of a params file tested against our run records.

A params file lists its claims under ``claims:``; each names two arms of the experiment by their settings
and the direction the dissertation reports::

    claims:
      - text: "More training canvases raise accuracy at the smallest O2I ratio."
        source: "§4.1, Table 10"
        higher: {n_train: max}        # the arm the dissertation finds better
        lower: {n_train: min}
        within: {digit_size: min}     # optional: restrict both arms
        expect: higher                # or `similar` (no difference claimed)
        tasks: [majority]             # optional: default every task of the dataset

A claim may replace its arms in one profile (``cpu: {higher: ..., lower: ...}``) where that profile's grid
differs, or give a reason it cannot be tested there (``cpu: "no ImageNet weights here"``).

A selector maps flat config keys to a value, or to ``max``/``min`` (the largest or smallest value among
this profile's runs that pass ``within``). Each arm must resolve to one setting (its repeats pooled).

The test, per task, uses the last-epoch test accuracy (the dissertation's convention):

* **learned**: an arm is above chance when its mean exceeds the chance level by more than two binomial
  standard errors of a chance classifier on the test split and by at least 5 percentage points; when
  neither arm is, the comparison says nothing and the task is *not testable here*.
* **difference**: z = (higher - lower) / sqrt(se_h² + se_l²), where an arm's standard error is the
  binomial one of its mean over n_test x repeats test images, or the repeats' spread / sqrt(repeats)
  when that is larger. ``expect: higher`` is *supported* when z > 2, *reversed* when z < -2, and shows
  *no clear difference* otherwise; ``expect: similar`` is supported when |z| <= 2.

A claim is *confirmed* when every testable task supports it, *not confirmed* when none does, *partly
confirmed* otherwise, and *not testable here* when no task is testable or an arm has no finished run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from ipslib.config import ConfigError, RunConfig
from ipslib.data.registry import chance_levels  # re-exported: the chance level of each task, per dataset
from ipslib.study.claims import Claim, parse_claims
from ipslib.study.reference import same_value

if TYPE_CHECKING:
    from ipslib.study.experiments import RunSpec

__all__ = [
    "Claim",
    "ClaimResult",
    "parse_claims",
    "chance_levels",
    "evaluate",
    "evaluate_all",
    "verdict_table",
    "verdict_markdown",
    "Z_THRESHOLD",
]

Z_THRESHOLD = 2.0
LEARNED_FLOOR = 0.05
"""An arm counts as above chance only when it also beats chance by this much (5 percentage points)."""


@dataclass
class ClaimResult:
    claim: Claim
    outcome: str
    tasks: pd.DataFrame
    reason: str = ""
    higher_name: str = ""
    lower_name: str = ""


def _setting(spec: RunSpec) -> tuple:
    """The run's settings without its training seed: repeats of one setting share it."""
    return tuple(sorted((k, repr(v)) for k, v in spec.flat.items() if k != "train_seed"))


def _select(specs: list[RunSpec], selector: dict[str, Any]) -> list[RunSpec]:
    chosen = specs
    for key, wanted in selector.items():
        values = [s.flat.get(key) for s in chosen]
        present = [v for v in values if v is not None]
        if wanted in ("max", "min") and present:
            target = max(present) if wanted == "max" else min(present)
        else:
            target = wanted
        chosen = [s for s, v in zip(chosen, values) if same_value(v, target)]
    return chosen


def _n_test(config: RunConfig) -> int:
    n = getattr(config.data, "n_test", None)
    if n is not None:
        return int(n)
    from ipslib.data.traffic_signs import TrafficSigns

    try:
        return len(TrafficSigns(config.data, "test"))
    except (FileNotFoundError, OSError):  # no data here: the spread over repeats alone decides
        return 0


def _describe(specs: list[RunSpec]) -> str:
    return specs[0].name.split("/")[1] if specs and "/" in specs[0].name else (specs[0].name if specs else "")


def _arm_stats(specs: list[RunSpec], runs: pd.DataFrame, task: str) -> tuple[float, float, int] | None:
    keys = {s.key for s in specs}
    done = runs[runs["key"].isin(keys) & runs["finished"]] if len(runs) else runs
    column = f"last_test_{task}"
    if done.empty or column not in done:
        return None
    values = done.drop_duplicates("key")[column].astype(float).to_numpy()
    return float(values.mean()), float(values.std(ddof=0)), len(values)


def evaluate(claim: Claim, specs: list[RunSpec], runs: pd.DataFrame) -> ClaimResult:
    """Test one claim on one profile's runs (``runs``: :attr:`ExperimentResults.runs`)."""
    if specs:
        resolved = claim.for_profile(specs[0].profile)
        if isinstance(resolved, str):
            return ClaimResult(claim, "not testable here", pd.DataFrame(), resolved)
        claim = resolved
    pool = _select(specs, claim.within)
    high, low = _select(pool, claim.higher), _select(pool, claim.lower)
    settings_high, settings_low = {_setting(s) for s in high}, {_setting(s) for s in low}
    empty = pd.DataFrame()
    if not high or not low:
        return ClaimResult(claim, "not testable here", empty, "this profile has no run for one of the two arms")
    if len(settings_high) > 1 or len(settings_low) > 1:
        raise ConfigError(
            f"claim {claim.text!r}: an arm matches {max(len(settings_high), len(settings_low))} "
            "settings; narrow its selector (or `within`) to one setting"
        )
    if settings_high == settings_low:
        return ClaimResult(claim, "not testable here", empty, "this profile runs only one of the two arms")
    config = high[0].config
    tasks = claim.tasks or tuple(config.tasks)
    unknown = [t for t in tasks if t not in config.tasks]
    if unknown:
        raise ConfigError(f"claim {claim.text!r}: task(s) {', '.join(unknown)} not among {', '.join(config.tasks)}")
    n_test = _n_test(config)
    rows = []
    for task in tasks:
        a, b = _arm_stats(high, runs, task), _arm_stats(low, runs, task)
        if a is None or b is None:
            rows.append({"task": task, "result": "not testable here (an arm has no finished run)"})
            continue
        c = chance_levels(config)[task]
        row: dict[str, Any] = {"task": task, "chance (%)": 100 * c}
        margin = Z_THRESHOLD * math.sqrt(c * (1 - c) / n_test) if n_test else 0.0
        learned = max(a[0], b[0]) - c > max(margin, LEARNED_FLOOR)

        def se(stats: tuple[float, float, int]) -> float:
            mean, std, n = stats
            binomial = math.sqrt(max(mean * (1 - mean), 1e-12) / max(n_test * n, 1)) if n_test else 0.0
            return max(binomial, std / math.sqrt(n)) if n > 1 else binomial

        spread = math.hypot(se(a), se(b))
        z = (a[0] - b[0]) / spread if spread > 0 else math.copysign(math.inf, a[0] - b[0])
        if not learned:
            result = "not testable here (neither arm above chance)"
        elif claim.expect == "similar":
            result = "supported" if abs(z) <= Z_THRESHOLD else "differs"
        else:
            result = "supported" if z > Z_THRESHOLD else ("reversed" if z < -Z_THRESHOLD else "no clear difference")
        rows.append(
            {
                **row,
                "higher arm (%)": 100 * a[0],
                "lower arm (%)": 100 * b[0],
                "difference (pp)": 100 * (a[0] - b[0]),
                "z": z,
                "repeats": min(a[2], b[2]),
                "result": result,
            }
        )
    table = pd.DataFrame(rows).set_index("task")
    tested = table[~table["result"].str.startswith("not testable")]
    if tested.empty:
        outcome = "not testable here"
    elif (tested["result"] == "supported").all():
        outcome = "confirmed"
    elif (tested["result"] == "supported").any():
        outcome = "partly confirmed"
    else:
        outcome = "not confirmed"
    return ClaimResult(claim, outcome, table, higher_name=_describe(high), lower_name=_describe(low))


def evaluate_all(results: Any) -> list[ClaimResult]:
    """Every claim of ``results.experiment`` (an :class:`~ipslib.study.results.ExperimentResults`)."""
    return [evaluate(c, results.specs, results.runs) for c in results.experiment.claims]


def verdict_table(evaluated: list[ClaimResult]) -> pd.DataFrame:
    """One row per claim and task: both arms' means, the difference, z and the per-task result."""
    frames = []
    for i, item in enumerate(evaluated, start=1):
        if item.tasks.empty:
            continue
        frame = item.tasks.reset_index()
        frame.insert(0, "claim", i)
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True).set_index(["claim", "task"])
    return table.round({c: 1 for c in table.columns if c.endswith("(%)") or c.endswith("(pp)")} | {"z": 2})


def _sentence(i: int, item: ClaimResult) -> str:
    claim = item.claim
    source = f" Source: {claim.source}." if claim.source else ""
    mark = " (one seed)" if _single_seed(item) else ""
    head = f"{i}. *{claim.text}*{source} **{item.outcome.capitalize()}{mark}**"
    if item.reason:
        return f"{head}: {item.reason}."
    arms = f"`{item.higher_name}` against `{item.lower_name}`"
    parts = []
    for task, row in item.tasks.iterrows():
        if str(row["result"]).startswith("not testable"):
            parts.append(f"{task}: {row['result']}")
        else:
            parts.append(
                f"{task} {row['higher arm (%)']:.1f} vs {row['lower arm (%)']:.1f} % "
                f"(z = {row['z']:.1f}, {row['result']})"
            )
    return f"{head}: {arms}; " + "; ".join(parts) + "."


def _single_seed(item: ClaimResult) -> bool:
    """True when the claim was tested (some task compared) with one training seed per arm."""
    if item.tasks.empty or "repeats" not in item.tasks:
        return False
    tested = item.tasks["repeats"].dropna()
    return len(tested) > 0 and int(tested.min()) == 1


def verdict_markdown(evaluated: list[ClaimResult], profile: str) -> str:
    """The chapter's verdict paragraph, computed from the claims' results."""
    if not evaluated:
        return "This chapter makes no comparative claim to test; see the tables above."
    counts = pd.Series([e.outcome for e in evaluated]).value_counts()
    summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    scale = {
        "paper": "at the dissertation's settings",
        "cpu": ("at the reduced cpu scale, so each verdict speaks to the direction of the claim, not to its numbers"),
        "smoke": "on smoke runs, which train for seconds and test nothing about IPS",
    }[profile]
    lines = [
        f"**Verdict ({profile} profile, {scale}):** of {len(evaluated)} claim(s), {summary}. "
        f"A difference counts when it exceeds {Z_THRESHOLD:g} standard errors (binomial over the test "
        "images, or the spread over repeats when larger); a task counts only when one arm beats "
        f"chance by more than two standard errors and {100 * LEARNED_FLOOR:g} points.",
        "",
    ]
    if any(_single_seed(e) for e in evaluated):
        lines[0] += (
            " A verdict marked *one seed* compares single training runs: its standard error covers "
            "the sampling of the test images, not the variation from one training seed to another, "
            "which this profile does not measure for that claim; read it as weak evidence."
        )
    lines += [_sentence(i, item) for i, item in enumerate(evaluated, start=1)]
    return "\n".join(lines)
