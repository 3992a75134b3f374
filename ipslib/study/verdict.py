"""Computed verdicts: each dissertation claim of a params file tested against every recorded run of its arms.

A params file lists its claims under ``claims:`` (format: :mod:`ipslib.study.claims`); each names two arms
by their settings and the direction the dissertation reports (``expect: higher``) or that it reports no
effect (``expect: similar``). The rules, per task, on the last-epoch accuracies (the dissertation's
convention), each stated on the pages:

* **An arm** is every finished run of the profile with the arm's setting, all seeds
  (:mod:`ipslib.study.arms`); its samples are its runs.
* **Learned**: an arm has learned a task when its mean train *and* mean test accuracy beat the task's
  chance level by more than :data:`LEARNED_FLOOR` (5 points) and two binomial standard errors of a chance
  classifier on that split. A comparison with an arm that did not learn is *inconclusive* and names it.
* **Seeds**: a verdict needs at least :data:`MIN_SEEDS` runs per arm; with fewer it is *inconclusive*, and an
  arm whose runs are not trained yet makes the task *inconclusive* too (the claim is posed, the evidence missing).
* **Effect**: the difference of the arm means in points with a 95 % Welch interval over seeds (sample
  standard deviations, :mod:`ipslib.study.statistics`).
* ``expect: higher`` is *supported* when the interval lies above 0, *contradicted* when it lies below 0,
  *inconclusive* otherwise. ``expect: similar`` is *supported* when the 90 % interval lies inside
  ±``margin`` points (two one-sided tests at 5 %), *contradicted* when the 95 % interval excludes 0 and the
  equivalence test fails, *inconclusive* otherwise.

A claim is *supported* when every task it tests is supported, *contradicted* when a task is contradicted and
none supported (for ``similar``: when any task is contradicted), *mixed* when tasks disagree, *inconclusive*
otherwise, and *not testable here* when the profile cannot pose it (its reason is stated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ipslib.config import ConfigError
from ipslib.data.registry import chance_levels  # re-exported: the chance level of each task, per dataset
from ipslib.study.arms import Arm, ProfileRuns, profile_runs, setting_key
from ipslib.study.claims import Claim
from ipslib.study.reference import same_value
from ipslib.study.statistics import beats_chance, tost_equivalent, welch_interval

if TYPE_CHECKING:
    from ipslib.study.experiments import RunSpec

__all__ = [
    "LEARNED_FLOOR",
    "MIN_SEEDS",
    "TaskVerdict",
    "ClaimResult",
    "chance_levels",
    "evaluate",
    "evaluate_all",
    "claim_record",
]

LEARNED_FLOOR = 0.05
"""An arm has learned a task only when it beats chance by more than this (5 points), on train and test."""
MIN_SEEDS = 3
"""Runs per arm a supported or contradicted verdict needs."""
OUTCOMES = ("supported", "contradicted", "mixed", "inconclusive", "not testable here")


@dataclass(frozen=True)
class TaskVerdict:
    task: str
    chance: float
    learned: tuple[bool, bool]
    effect_pp: float
    ci95: tuple[float, float] | None
    verdict: str
    reason: str = ""


@dataclass
class ClaimResult:
    claim: Claim
    profile: str
    verdict: str
    reason: str = ""
    arms: tuple[Arm, ...] = ()
    settings: tuple[dict[str, Any], ...] = ()
    tasks: list[TaskVerdict] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return self.verdict


def _select(specs: list[RunSpec], selector: dict[str, Any]) -> list[RunSpec]:
    chosen = specs
    for key, wanted in selector.items():
        values = [s.flat.get(key) for s in chosen]
        present = [v for v in values if v is not None]
        target = (max(present) if wanted == "max" else min(present)) if wanted in ("max", "min") and present else wanted
        chosen = [s for s, v in zip(chosen, values) if same_value(v, target)]
    return chosen


def _n_items(config: Any, split: str) -> int:
    n = getattr(config.data, f"n_{split}", None)
    if n is not None:
        return int(n)
    try:  # the real traffic signs: count the split's images when the data are here
        from ipslib.data.registry import entry

        return len(entry(config.dataset).open(config.data, split))
    except (FileNotFoundError, OSError):
        return 0


def _learned(arm: Arm, task: str, chance: float, config: Any) -> bool:
    if not arm.n_seeds:
        return False
    return all(
        beats_chance(arm.mean(task, split), chance, _n_items(config, split), floor=LEARNED_FLOOR)
        for split in ("train", "test")
    )


def _task_verdict(claim: Claim, arms: tuple[Arm, Arm], task: str, chance: float, config: Any) -> TaskVerdict:
    high, low = arms
    learned = (_learned(high, task, chance, config), _learned(low, task, chance, config))
    effect = 100 * (high.mean(task) - low.mean(task))
    interval = welch_interval(high.test.get(task, ()), low.test.get(task, ()))
    ci = None if interval is None else (100 * interval.low, 100 * interval.high)

    def result(verdict: str, reason: str = "") -> TaskVerdict:
        return TaskVerdict(task, chance, learned, effect, ci, verdict, reason)

    if not high.n_seeds or not low.n_seeds:  # runs not trained yet: the claim is posed here, the evidence is missing
        missing = high if not high.n_seeds else low
        return result("inconclusive", f"arm `{missing.label}` has no finished run yet")
    for arm, ok in zip(arms, learned):
        if not ok:
            return result(
                "inconclusive",
                f"arm `{arm.label}` did not learn {task} (train "
                f"{100 * arm.mean(task, 'train'):.1f} %, test {100 * arm.mean(task):.1f} % against "
                f"chance {100 * chance:.1f} %)",
            )
    if min(high.n_seeds, low.n_seeds) < MIN_SEEDS:
        return result("inconclusive", f"{high.n_seeds} and {low.n_seeds} seed(s); {MIN_SEEDS} per arm needed")
    if claim.expect == "similar":
        if tost_equivalent(high.test[task], low.test[task], claim.margin / 100):
            return result("supported", f"equivalent within ±{claim.margin:g} points")
        if interval.excludes_zero:
            return result("contradicted", "the 95 % interval excludes 0 and equivalence fails")
        return result("inconclusive", f"neither equivalent within ±{claim.margin:g} points nor different")
    if interval.excludes_zero:
        return result("supported" if interval.low > 0 else "contradicted")
    return result("inconclusive", f"the 95 % interval [{ci[0]:.1f}, {ci[1]:.1f}] includes 0")


def _combine(claim: Claim, tasks: list[TaskVerdict]) -> tuple[str, str]:
    verdicts = [t.verdict for t in tasks]
    if all(v == "not testable here" for v in verdicts):
        return "not testable here", tasks[0].reason if tasks else "no task to test"
    n_sup, n_con = verdicts.count("supported"), verdicts.count("contradicted")
    counts = f"supported on {n_sup}, contradicted on {n_con}, inconclusive on {len(verdicts) - n_sup - n_con} task(s)"
    if n_sup == len(verdicts):
        return "supported", ""
    if n_con and (claim.expect == "similar" or not n_sup):
        return "contradicted", counts
    if n_sup and n_con:
        return "mixed", counts
    reasons = sorted({t.reason for t in tasks if t.verdict == "inconclusive" and t.reason})
    return "inconclusive", counts + ("; " + "; ".join(reasons) if reasons else "")


def _resolve(claim: Claim, specs: list[RunSpec]) -> tuple[RunSpec, RunSpec] | str:
    pool = _select(specs, claim.within)
    high, low = _select(pool, claim.higher), _select(pool, claim.lower)
    if not high or not low:
        return "this profile has no run for one of the two arms"
    n_settings = max(len({setting_key(s.flat) for s in high}), len({setting_key(s.flat) for s in low}))
    if n_settings > 1:
        raise ConfigError(
            f"claim {claim.text!r}: an arm matches {n_settings} settings; narrow its selector "
            "(or `within`) to one setting"
        )
    if setting_key(high[0].flat) == setting_key(low[0].flat):
        return "this profile runs only one of the two arms"
    return high[0], low[0]


def evaluate(claim: Claim, specs: list[RunSpec], runs: ProfileRuns | None = None) -> ClaimResult:
    """Test one claim on one profile: ``specs`` are the experiment's runs there, ``runs`` every run of the
    profile grouped by setting (loaded when not given)."""
    profile = specs[0].profile if specs else ""
    resolved = claim.for_profile(profile) if specs else "this profile has no run of this experiment"
    if isinstance(resolved, str):
        return ClaimResult(claim, profile, "not testable here", resolved)
    picked = _resolve(resolved, specs)
    if isinstance(picked, str):
        return ClaimResult(resolved, profile, "not testable here", picked)
    runs = runs or profile_runs(profile, specs[0].root)
    arms = tuple(runs.arm(spec) for spec in picked)
    config = picked[0].config
    unknown = [t for t in resolved.tasks if t not in config.tasks]
    if unknown:
        raise ConfigError(f"claim {claim.text!r}: task(s) {', '.join(unknown)} not among {', '.join(config.tasks)}")
    try:
        levels = chance_levels(config)
    except (FileNotFoundError, OSError) as err:  # the real traffic signs are not here: no chance level, no verdict
        return ClaimResult(
            resolved,
            profile,
            "not testable here",
            f"the chance level needs the test data ({err})",
            arms,
            tuple(s.varied for s in picked),
        )
    tasks = [_task_verdict(resolved, arms, t, levels[t], config) for t in resolved.tasks or tuple(config.tasks)]
    verdict, reason = _combine(resolved, tasks)
    return ClaimResult(resolved, profile, verdict, reason, arms, tuple(s.varied for s in picked), tasks)


def evaluate_all(results: Any) -> list[ClaimResult]:
    """Every claim of ``results.experiment`` (an :class:`~ipslib.study.results.ExperimentResults`)."""
    runs = profile_runs(results.profile, results.experiment.root) if results.specs else None
    return [evaluate(c, results.specs, runs) for c in results.experiment.claims]


def claim_record(item: ClaimResult) -> dict[str, Any]:
    """One claim's verdict as plain data (``ipslib claims --json``)."""
    arms = []
    for arm, settings in zip(item.arms, item.settings):
        arms.append(
            {
                "label": arm.label,
                "settings": settings,
                "run_keys": list(arm.run_keys),
                "n_seeds": arm.n_seeds,
                "seeds": list(arm.seeds),
            }
        )
    tasks = []
    for t in item.tasks:
        per_arm = [
            {
                "label": a.label,
                "test_mean": _pct(a.mean(t.task)),
                "test_sd": _pct(a.sd(t.task)),
                "train_mean": _pct(a.mean(t.task, "train")),
                "chance": _pct(t.chance),
                "learned": ok,
            }
            for a, ok in zip(item.arms, t.learned)
        ]
        tasks.append(
            {
                "task": t.task,
                "arms": per_arm,
                "effect_pp": _round(t.effect_pp),
                "ci95": None if t.ci95 is None else [_round(t.ci95[0]), _round(t.ci95[1])],
                "verdict": t.verdict,
                "reason": t.reason,
            }
        )
    claim = item.claim
    return {
        "text": claim.text,
        "source": claim.source,
        "expect": claim.expect,
        "margin": claim.margin,
        "register": list(claim.register),
        "profile": item.profile,
        "verdict": item.verdict,
        "reason": item.reason,
        "arms": arms,
        "tasks": tasks,
    }


def _pct(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(100 * value, 2)


def _round(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 2)
