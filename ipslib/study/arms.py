"""Arms: every recorded run of one setting in a profile, whichever experiment trained it, all its seeds.

Two runs have the same *setting* when their flat configs agree on every key except the training seed and the
keys that only say where or how fast a run goes (``device``, ``num_workers``, ``threads``). A claim names an arm
through one of its experiment's runs; the arm then holds every finished run of the profile's manifest with that
setting, so a baseline trained for another chapter with another seed counts, and no seed is ever chosen.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipslib.engine.records import EXECUTION_KEYS, is_finished, read_metrics
from ipslib.study.experiments import RunSpec, load_experiments

__all__ = ["NOT_SETTINGS", "setting_key", "arm_label", "Arm", "ProfileRuns", "profile_runs"]

NOT_SETTINGS = ("train_seed", *EXECUTION_KEYS)
"""Flat config keys that do not define a setting: the seed and where/how fast a run executes."""


def setting_key(flat: dict[str, Any]) -> str:
    """A short hash of the run's settings (its flat config without :data:`NOT_SETTINGS`)."""
    kept = {k: v for k, v in sorted(flat.items()) if k not in NOT_SETTINGS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def arm_label(spec: RunSpec) -> str:
    """The run's varied settings as ``key=value,...`` (its seed left out), or its name when nothing varies."""
    label = ",".join(f"{k}={v}" for k, v in spec.varied.items() if k != "train_seed")
    return label or spec.name.split("/", 1)[-1].split("/seed=")[0]


@dataclass(frozen=True)
class Arm:
    """The finished runs of one setting: per task, one test and one train accuracy per run (fractions)."""

    label: str
    setting: str
    run_keys: tuple[str, ...]
    seeds: tuple[int, ...]
    test: dict[str, tuple[float, ...]] = field(default_factory=dict)
    train: dict[str, tuple[float, ...]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    """Run keys of the setting in the manifest without a finished record."""

    @property
    def n_seeds(self) -> int:
        return len(self.run_keys)

    def mean(self, task: str, split: str = "test") -> float:
        values = (self.test if split == "test" else self.train).get(task, ())
        return sum(values) / len(values) if values else math.nan

    def sd(self, task: str, split: str = "test") -> float:
        """Sample standard deviation over the arm's runs (ddof = 1); NaN with fewer than two runs."""
        values = (self.test if split == "test" else self.train).get(task, ())
        if len(values) < 2:
            return math.nan
        mean = sum(values) / len(values)
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


@dataclass
class ProfileRuns:
    """Every run of a profile's manifest, grouped by setting."""

    profile: str
    by_setting: dict[str, list[RunSpec]]

    def arm(self, spec: RunSpec, label: str = "") -> Arm:
        """The arm of ``spec``'s setting: all finished runs of the profile with it (each run key once)."""
        unique = {s.key: s for s in self.by_setting.get(setting_key(spec.flat), [spec])}
        done = [s for s in unique.values() if is_finished(s.run_dir, s.config)]
        done.sort(key=lambda s: (s.config.train.train_seed, s.key))
        test: dict[str, list[float]] = defaultdict(list)
        train: dict[str, list[float]] = defaultdict(list)
        for s in done:
            last = read_metrics(s.run_dir)["last"]
            for task in s.config.tasks:
                test[task].append(float(last["test"][task]["accuracy"]))
                train[task].append(float(last["train"][task]["accuracy"]))
        return Arm(
            label=label or arm_label(spec),
            setting=setting_key(spec.flat),
            run_keys=tuple(s.key for s in done),
            seeds=tuple(s.config.train.train_seed for s in done),
            test={t: tuple(v) for t, v in test.items()},
            train={t: tuple(v) for t, v in train.items()},
            missing=tuple(sorted(k for k, s in unique.items() if s not in done)),
        )


def profile_runs(profile: str, root: Path | None = None) -> ProfileRuns:
    """Group every run of every experiment of ``profile`` by setting."""
    groups: dict[str, list[RunSpec]] = defaultdict(list)
    for experiment in load_experiments(root).values():
        for spec in experiment.runs(profile):
            groups[setting_key(spec.flat)].append(spec)
    return ProfileRuns(profile, dict(groups))
