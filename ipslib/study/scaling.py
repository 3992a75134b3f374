"""How a params file's settings meet the dissertation's printed cells: its ``reference:`` block and each
profile's ``scaling:`` (the format is documented in :mod:`ipslib.study.experiments`).

``parse_reference`` and ``parse_scaling`` validate what a params file says (errors name the file, the key and
what would be valid); ``apply_scaling`` turns the settings of a printed cell (the dissertation's values) into
the values a profile's runs carry at its scale.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ipslib.config import DATASETS, ConfigError
from ipslib.config.run import SECTIONS
from ipslib.study.reference import same_value

__all__ = ["flat_keys", "parse_reference", "parse_scaling", "apply_scaling", "setting_text"]

_REFERENCE_KEYS = ("tables", "implied")
_SCALAR = (str, int, float, bool, type(None))


@functools.cache
def flat_keys() -> frozenset[str]:
    """Every flat config key of any dataset (``dataset``, the data sections' and the model sections' fields)."""
    names = {"dataset"}
    for cls in [*DATASETS.values(), *SECTIONS.values()]:
        names |= {f.name for f in fields(cls)}
    return frozenset(names)


def _check_settings(raw: Any, where: str, what: str) -> dict[str, Any]:
    """A mapping of flat config keys to scalar values."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{where}: {what} must be a non-empty mapping of flat config keys to values; got {raw!r}")
    unknown = sorted(set(map(str, raw)) - flat_keys())
    if unknown:
        raise ConfigError(
            f"{where}: {what} names unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(flat_keys()))}"
        )
    bad = {k: v for k, v in raw.items() if not isinstance(v, _SCALAR)}
    if bad:
        raise ConfigError(f"{where}: {what} values must be single values (number, text, true/false); got {bad!r}")
    return dict(raw)


def _table_entry(entry: Any, where: str) -> dict[str, str | None]:
    if isinstance(entry, str) and entry.startswith("Table "):
        return {"table": entry, "panel": None}
    if (
        isinstance(entry, Mapping)
        and set(entry) <= {"table", "panel"}
        and str(entry.get("table", "")).startswith("Table ")
    ):
        panel = entry.get("panel")
        return {"table": str(entry["table"]), "panel": None if panel is None else str(panel)}
    raise ConfigError(
        f"{where}: reference.tables entries must be 'Table N' or {{table: 'Table N', panel: <panel>}}; got {entry!r}"
    )


def parse_reference(raw: Any, where: str) -> dict[str, Any] | None:
    """The ``reference:`` block as ``{"tables": [{"table", "panel"}], "implied": {experiment: settings}}``."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - set(_REFERENCE_KEYS):
        raise ConfigError(f"{where}: reference must be a mapping with keys {', '.join(_REFERENCE_KEYS)}; got {raw!r}")
    tables = raw.get("tables") or []
    if not isinstance(tables, list):
        raise ConfigError(f"{where}: reference.tables must be a list such as [Table 8]; got {tables!r}")
    implied = raw.get("implied") or {}
    if not isinstance(implied, Mapping):
        raise ConfigError(
            f"{where}: reference.implied must map an experiment of the tables' match keys to its settings; "
            f"got {implied!r}"
        )
    return {
        "tables": [_table_entry(entry, where) for entry in tables],
        "implied": {
            str(name): _check_settings(values, where, f"reference.implied.{name}") for name, values in implied.items()
        },
    }


def parse_scaling(raw: Any, where: str, profile: str) -> dict[str, dict[Any, Any]]:
    """A profile's ``scaling:``: flat key -> {the dissertation's value: this profile's value or settings}."""
    if raw is None:
        return {}
    example = "e.g. scaling: {digit_size: {28: 14, 56: 28}, n_train: {1000: 1000}}"
    if profile == "paper":
        raise ConfigError(
            f"{where}: scaling is not valid in the paper profile, which holds the dissertation's own settings; "
            "declare it in smoke or cpu"
        )
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(
            f"{where}: scaling must map flat config keys to {{paper value: this profile's value}} "
            f"({example}); got {raw!r}"
        )
    scaling: dict[str, dict[Any, Any]] = {}
    for key, mapping in raw.items():
        if key not in flat_keys():
            raise ConfigError(
                f"{where}: scaling.{key} is not a flat config key; valid keys: {', '.join(sorted(flat_keys()))}"
            )
        if not isinstance(mapping, Mapping) or not mapping:
            raise ConfigError(
                f"{where}: scaling.{key} must be a non-empty mapping of the dissertation's values to this "
                f"profile's ({example}); got {mapping!r}"
            )
        for paper_value, value in mapping.items():
            if isinstance(value, Mapping):
                _check_settings(value, where, f"scaling.{key}.{paper_value}")
            elif not isinstance(value, _SCALAR):
                raise ConfigError(
                    f"{where}: scaling.{key}.{paper_value} must be one value or a mapping of settings; got {value!r}"
                )
        scaling[str(key)] = dict(mapping)
    return scaling


_NONE = object()


def _lookup(mapping: dict[Any, Any], value: Any) -> Any:
    for paper_value, target in mapping.items():
        if same_value(paper_value, value):
            return target
    return _NONE


def apply_scaling(settings: dict[str, Any], scaling: dict[str, dict[Any, Any]]) -> tuple[dict[str, Any], list[str]]:
    """``settings`` (the dissertation's values) at a profile's scale, and the keys without a counterpart.

    A key the scaling does not list keeps its value; a listed key takes the value its mapping gives (or the
    settings a mapping value gives); a listed key whose value the mapping does not list has no counterpart at
    this scale and is returned in the second item."""
    scaled: dict[str, Any] = {}
    outside: list[str] = []
    for key, value in settings.items():
        if key not in scaling:
            scaled.setdefault(key, value)
            continue
        target = _lookup(scaling[key], value)
        if target is _NONE:
            outside.append(key)
        elif isinstance(target, Mapping):
            scaled.update(target)
        else:
            scaled[key] = target
    return scaled, outside


def _text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def setting_text(settings: dict[str, Any], scaled: dict[str, Any]) -> str:
    """``key=value`` per setting of a cell, ``key=paper→ours`` where ``scaled`` (its settings here) differs."""
    added = ", ".join(f"{k}={_text(v)}" for k, v in scaled.items() if k not in settings)
    parts = []
    for key, value in settings.items():
        if key not in scaled:
            parts.append(f"{key}={_text(value)}→{added or '–'}")
        elif same_value(value, scaled[key]):
            parts.append(f"{key}={_text(value)}")
        else:
            parts.append(f"{key}={_text(value)}→{_text(scaled[key])}")
    return ", ".join(parts) or "default"
