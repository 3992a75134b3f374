"""Building blocks of the configuration: the error type, range checks, type-checked construction from a
mapping, and YAML reading that names the file in every error."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "TaskSpec", "build", "to_dict", "load_yaml_mapping", "yaml_number", "check_keys"]


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names it and the valid choices."""


def _choice(name: str, value: Any, choices: typing.Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, choices))}")


def _at_least(name: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{name}={value!r} is out of range; it must be >= {low}")


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is out of range; it must be in [{low}, {high}]")


@dataclass(frozen=True)
class TaskSpec:
    """One prediction task: ``kind`` is ``multiclass`` (softmax, CE) or ``multilabel`` (sigmoid, BCE)."""

    n_classes: int
    kind: str


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is tuple:
        (item, *_rest) = typing.get_args(annotation)
        return isinstance(value, (tuple, list)) and all(_type_ok(v, item) for v in value)
    return isinstance(value, annotation)


def _coerce(value: Any, annotation: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    floaty = annotation is float or (
        typing.get_origin(annotation) in (typing.Union, types.UnionType) and float in typing.get_args(annotation)
    )
    if floaty and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def build(cls: type, mapping: Mapping[str, Any], *, where: str = "config") -> Any:
    """Build a config dataclass from a mapping, rejecting unknown keys and wrong types with clear errors."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(names)}")
    values = {}
    for name, value in mapping.items():
        if not _type_ok(value, hints[name]):
            raise ConfigError(f"{where}: {name}={value!r} has the wrong type; expected {hints[name]}")
        values[name] = _coerce(value, hints[name])
    return cls(**values)


def to_dict(obj: Any) -> dict[str, Any]:
    """Field values in plain YAML/JSON types, numbers normalised to their annotated type."""
    hints = typing.get_type_hints(type(obj))
    out = {}
    for f in fields(obj):
        value = _coerce(getattr(obj, f.name), hints[f.name])
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def check_keys(raw: Any, valid: typing.Collection[str], where: str) -> dict[str, Any]:
    """``raw`` as a mapping whose keys are all in ``valid``; otherwise a ConfigError naming ``where``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(sorted(valid))}")
    unknown = set(raw) - set(valid)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid keys: {', '.join(sorted(valid))}"
        )
    return dict(raw)


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(loaded).__name__}")
    return {key: yaml_number(value) for key, value in loaded.items()}


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def yaml_number(value: Any) -> Any:
    """YAML 1.1 reads ``3e-4`` (no dot) as a string; read it as the number everybody means."""
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [yaml_number(v) for v in value]
    if isinstance(value, dict):
        return {k: yaml_number(v) for k, v in value.items()}
    return value
