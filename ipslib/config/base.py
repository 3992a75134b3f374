"""Building blocks of the configuration: the error type, range checks, type-checked construction from a
mapping, and YAML reading that names the file in every error.

Every float a config holds must be finite: :func:`build` refuses NaN and infinities (``.nan``, ``.inf`` in
YAML) in any float field or tuple of floats, naming the key, and the range checks refuse NaN, which no
comparison would catch. No field gives ``inf`` a meaning (a budget without limit is a large number)."""

from __future__ import annotations

import functools
import math
import numbers
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from ipslib.config.options import TaskKind
from ipslib.system.errors import IpslibError

__all__ = [
    "ConfigError",
    "TaskSpec",
    "build",
    "to_dict",
    "load_yaml_mapping",
    "yaml_number",
    "check_keys",
    "check_options",
    "literal_values",
]


class ConfigError(IpslibError, ValueError):
    """A configuration value or key is invalid; the message names it and the valid choices."""


def _choice(name: str, value: Any, choices: typing.Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, choices))}")


def _at_least(name: str, value: float, low: float) -> None:
    if not value >= low:  # also NaN
        raise ConfigError(f"{name}={value!r} is out of range; it must be >= {low}")


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:  # also NaN
        raise ConfigError(f"{name}={value!r} is out of range; it must be in [{low}, {high}]")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field annotations of a dataclass (``from __future__ import annotations`` makes them strings)."""
    return typing.get_type_hints(cls)


def literal_values(annotation: Any) -> tuple[Any, ...] | None:
    """The values of a ``Literal`` annotation, also of one inside a union (``X | None``, ``int | Literal[...]``);
    None when the annotation holds no Literal."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        found = [v for arg in typing.get_args(annotation) for v in literal_values(arg) or ()]
        return tuple(found) or None
    return None


def check_options(obj: Any, *, where: str = "") -> None:
    """Every ``Literal``-typed field of the dataclass ``obj`` holds one of the annotation's values.

    A field typed as a union (``STKIMSampling | None``, ``int | NoiseRule``) may also hold a value of its
    other members; anything else is a ConfigError naming the field and its valid values."""
    for name, annotation in _hints(type(obj)).items():
        values = literal_values(annotation)
        if values is None:
            continue
        value = getattr(obj, name)
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        others = [a for a in typing.get_args(annotation) if typing.get_origin(a) is not Literal] if union else []
        if any(value == v and type(value) is type(v) for v in values) or any(_type_ok(value, a) for a in others):
            continue
        alternatives = " or ".join("None" if a is type(None) else a.__name__ for a in others)
        raise ConfigError(
            f"{where + ': ' if where else ''}{name}={value!r} is not valid; choose one of "
            f"{', '.join(map(repr, values))}{f' (or {alternatives})' if alternatives else ''}"
        )


@dataclass(frozen=True)
class TaskSpec:
    """One prediction task: ``kind`` is ``multiclass`` (softmax, CE) or ``multilabel`` (sigmoid, BCE)."""

    n_classes: int
    kind: TaskKind

    def __post_init__(self) -> None:
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, numbers.Integral):
            raise ConfigError(f"TaskSpec: n_classes={self.n_classes!r} has the wrong type; expected an int >= 1")
        if self.n_classes < 1:
            raise ConfigError(f"TaskSpec: n_classes={self.n_classes!r} is out of range; it must be >= 1")
        check_options(self, where="TaskSpec")


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if origin is Literal:  # the type only: which value is valid is checked by check_options in __post_init__
        return any(type(value) is type(v) for v in typing.get_args(annotation))
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
    hints = _hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(names)}")
    values = {}
    for name, value in mapping.items():
        if not _type_ok(value, hints[name]):
            raise ConfigError(f"{where}: {name}={value!r} has the wrong type; expected {hints[name]}")
        if not _finite(value):
            raise ConfigError(f"{where}: {name}={value!r} is not a finite number; give a finite value")
        values[name] = _coerce(value, hints[name])
    return cls(**values)


def _finite(value: Any) -> bool:
    """False for a float NaN or infinity, also inside a tuple or list (ints and other values pass)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (tuple, list)):
        return all(_finite(v) for v in value)
    return True


def to_dict(obj: Any) -> dict[str, Any]:
    """Field values in plain YAML/JSON types, numbers normalised to their annotated type."""
    hints = _hints(type(obj))
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
