"""Claims of the dissertation as a params file states them (``claims:``), parsed and validated.

Each claim names two arms of the experiment by their settings and the direction the dissertation reports;
:mod:`ipslib.study.verdict` tests them against the run records. See that module for the file format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ipslib.config import ConfigError, RunConfig, check_keys

__all__ = ["Claim", "parse_claims"]

_CLAIM_KEYS = {
    "text",
    "source",
    "higher",
    "lower",
    "within",
    "expect",
    "tasks",
    "margin",
    "register",
    "smoke",
    "cpu",
    "paper",
}
_ARM_KEYS = ("higher", "lower", "within")
_EXPECT = ("higher", "similar")
DEFAULT_MARGIN = 5.0
"""Equivalence margin of ``expect: similar`` claims, in accuracy points, unless a claim states its own."""


@dataclass(frozen=True)
class Claim:
    """One comparative claim of the dissertation, as a params file states it.

    Attributes:
        text: the claim in words; source: where the dissertation makes it (section, table).
        higher, lower: the two arms, as selectors (flat config keys to values, ``max`` or ``min``).
        within: a selector restricting both arms. expect: ``higher`` (a direction) or ``similar`` (no effect).
        tasks: the tasks tested (default: every task of the dataset).
        margin: equivalence margin of a ``similar`` claim, in points.
        register: ids of the discrepancy-register items the claim bears on (``P11``, ``F1``, ...).
        overrides: per profile, a mapping replacing the arm selectors where that profile's grid differs, or a
            string saying why the claim cannot be tested in that profile.
    """

    text: str
    higher: dict[str, Any]
    lower: dict[str, Any]
    source: str = ""
    within: dict[str, Any] = field(default_factory=dict)
    expect: str = "higher"
    tasks: tuple[str, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    margin: float = DEFAULT_MARGIN
    register: tuple[str, ...] = ()

    def for_profile(self, profile: str) -> Claim | str:
        override = self.overrides.get(profile)
        if override is None:
            return self
        if isinstance(override, str):
            return override
        return dataclasses.replace(
            self,
            higher=dict(override.get("higher", self.higher)),
            lower=dict(override.get("lower", self.lower)),
            within=dict(override.get("within", self.within)),
            overrides={},
        )


@lru_cache(maxsize=1)
def _flat_keys() -> frozenset[str]:
    """Every flat config key of every dataset (claims of traffic files select on subset_fraction etc.)."""
    from ipslib.config.data import DATASETS

    keys: set[str] = set()
    for name, data_class in DATASETS.items():
        keys |= set(RunConfig(dataset=name, data=data_class()).to_flat())
    return frozenset(keys)


def _check_selectors(item: dict[str, Any], overrides: dict[str, Any], here: str) -> None:
    selectors = [(f"{here}.{name}", name, item.get(name)) for name in _ARM_KEYS]
    for profile, override in overrides.items():
        if isinstance(override, str):
            continue
        if not isinstance(override, dict) or set(override) - set(_ARM_KEYS):
            raise ConfigError(
                f"{here}.{profile}: must be a reason (text) or a mapping with keys {', '.join(_ARM_KEYS)}"
            )
        selectors += [(f"{here}.{profile}.{name}", name, override[name]) for name in override]
    valid_keys = _flat_keys()
    for label, name, selector in selectors:
        selector = selector or {}
        if not isinstance(selector, dict) or (name != "within" and not selector):
            raise ConfigError(f"{label}: must be a non-empty mapping of config keys to values")
        bad = set(selector) - valid_keys
        if bad:
            raise ConfigError(f"{label}: {', '.join(sorted(bad))} is not a config key")


def _parse_one(item: Any, here: str) -> Claim:
    item = check_keys(item, _CLAIM_KEYS, here)
    for required in ("text", "higher", "lower"):
        if required not in item:
            raise ConfigError(f"{here}: missing key {required!r}")
    overrides = {p: item[p] for p in ("smoke", "cpu", "paper") if p in item}
    _check_selectors(item, overrides, here)
    expect = item.get("expect", "higher")
    if expect not in _EXPECT:
        raise ConfigError(f"{here}.expect={expect!r} is not valid; choose one of {', '.join(_EXPECT)}")
    tasks = item.get("tasks") or ()
    if isinstance(tasks, str) or not all(isinstance(t, str) for t in tasks):
        raise ConfigError(f"{here}.tasks must be a list of task names")
    margin = item.get("margin", DEFAULT_MARGIN)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 < margin < 100:
        raise ConfigError(f"{here}.margin={margin!r} is not valid; it must be a number of points in (0, 100)")
    register = item.get("register") or ()
    if isinstance(register, str) or not all(isinstance(r, str) for r in register):
        raise ConfigError(f"{here}.register must be a list of register ids such as [P11, F1]")
    return Claim(
        text=str(item["text"]),
        higher=dict(item["higher"]),
        lower=dict(item["lower"]),
        source=str(item.get("source", "")),
        within=dict(item.get("within") or {}),
        expect=expect,
        tasks=tuple(tasks),
        overrides=overrides,
        margin=float(margin),
        register=tuple(register),
    )


def parse_claims(raw: Any, where: str) -> tuple[Claim, ...]:
    """Validate a params file's ``claims:`` list (keys are checked against the flat config keys)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: claims must be a list of mappings, got {type(raw).__name__}")
    return tuple(_parse_one(item, f"{where} claims[{i}]") for i, item in enumerate(raw))
