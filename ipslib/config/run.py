"""The run configuration: one dataset section and the model/training sections, in one flat key space."""

from __future__ import annotations

import functools
import hashlib
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ipslib.config.base import ConfigError, TaskSpec, build, check_options, load_yaml_mapping, to_dict
from ipslib.config.data import DATASETS, MegapixelMNISTConfig
from ipslib.config.grid import check_grid
from ipslib.config.memory import check_all_selection
from ipslib.config.model import AggregatorConfig, EncoderConfig, IPSConfig, RegulariserConfig, STKIMConfig, TrainConfig
from ipslib.config.options import DatasetName, choices

__all__ = ["SECTIONS", "DEFAULT_FREE_KEYS", "RunConfig"]


SECTIONS = {
    "ips": IPSConfig,
    "encoder": EncoderConfig,
    "aggregator": AggregatorConfig,
    "regulariser": RegulariserConfig,
    "stkim": STKIMConfig,
    "train": TrainConfig,
}


DEFAULT_FREE_KEYS = frozenset({"selection", "selection_seed", "architecture", "downsample_size", "compile_mode"})
"""Keys added after runs were recorded: :meth:`RunConfig.key` hashes them only when they differ from their
default (which reproduces the behaviour from before they existed)."""


@functools.cache
def _default_free_values() -> dict[str, Any]:
    """Default value of each key of :data:`DEFAULT_FREE_KEYS` (read from the section dataclasses)."""
    found = {}
    for section_cls in SECTIONS.values():
        for f in fields(section_cls):
            if f.name in DEFAULT_FREE_KEYS:
                found[f.name] = f.default
    missing = DEFAULT_FREE_KEYS - set(found)
    if missing:
        raise RuntimeError(f"DEFAULT_FREE_KEYS names no config field: {', '.join(sorted(missing))}")
    return found


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs. Build with :meth:`from_flat`; save with :meth:`to_flat`."""

    dataset: DatasetName = "megapixel_mnist"
    data: Any = field(default_factory=MegapixelMNISTConfig)
    ips: IPSConfig = field(default_factory=IPSConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    aggregator: AggregatorConfig = field(default_factory=AggregatorConfig)
    regulariser: RegulariserConfig = field(default_factory=RegulariserConfig)
    stkim: STKIMConfig = field(default_factory=STKIMConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_options(self)  # dataset
        if not isinstance(self.data, DATASETS[self.dataset]):
            raise ConfigError(f"data must be a {DATASETS[self.dataset].__name__} for dataset={self.dataset!r}")
        height, width = self.data.image_shape[1:]
        if self.ips.patch_size > min(height, width):
            raise ConfigError(f"patch_size={self.ips.patch_size} is larger than the image ({height}x{width})")
        if self.aggregator.n_heads * self.aggregator.head_dim <= 0:
            raise ConfigError("n_heads * head_dim must be positive")
        if self.ips.use_pos and self.embed_dim % 2:
            raise ConfigError(f"use_pos=True needs an even embedding width; got {self.embed_dim}")
        if self.encoder.arch == "resnet50" and self.encoder.proj_dim is None:
            raise ConfigError("arch='resnet50' needs proj_dim (the dissertation projects 2048 -> D)")
        check_grid(self)  # the grid covers the image; memory_size < N
        self._check_controls()

    def _check_controls(self) -> None:
        """The control arms' combinations (issue 16); ``selection='all'`` within ``memory_budget_mb``."""
        ips, stkim = self.ips, self.stkim
        if stkim.active and stkim.stkim_mode == "seed_selection" and ips.selection != "ips":
            raise ConfigError(
                f"stkim_mode='seed_selection' masks selection scores, which selection={ips.selection!r} does not "
                "compute; use selection='ips' or stkim_mode='acmil_aggregation'"
            )
        if ips.architecture == "downsampled":
            if stkim.active:
                raise ConfigError("STKIM masks patches; architecture='downsampled' has none (set stkim_k=0)")
            if self.regulariser.enabled or self.regulariser.double_forward:
                raise ConfigError(
                    "the regularisers act on attention over patches; architecture='downsampled' attends over one "
                    "embedding (set diversity_weight=0, semantic_weight=0, double_forward=false)"
                )
        if ips.selection == "all" and ips.architecture == "ips":
            check_all_selection(
                self.encoder,
                in_channels=self.in_channels,
                patch_size=self.ips.patch_size,
                n_patches=self.n_patches,
                batch_size=self.train.batch_size,
                budget_mb=ips.memory_budget_mb,
            )

    # derived values
    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return self.data.tasks

    @property
    def in_channels(self) -> int:
        return self.data.image_shape[0]

    @property
    def embed_dim(self) -> int:
        return self.encoder.embed_dim

    @property
    def grid_shape(self) -> tuple[int, int]:
        """Rows and columns of the patch grid; remainder pixels are dropped (spec §1.1)."""
        height, width = self.data.image_shape[1:]
        p, s = self.ips.patch_size, self.ips.stride
        return ((height - p) // s + 1, (width - p) // s + 1)

    @property
    def n_patches(self) -> int:
        rows, cols = self.grid_shape
        return rows * cols

    # flat form
    @classmethod
    def from_flat(
        cls, params: Mapping[str, Any] | None = None, /, *, where: str = "config", **kwargs: Any
    ) -> RunConfig:
        """Build from one flat mapping of field names; ``dataset`` picks the data section."""
        params = {**(params or {}), **kwargs}
        dataset = params.pop("dataset", "megapixel_mnist")
        if dataset not in choices(DatasetName):
            raise ConfigError(
                f"{where}: dataset={dataset!r} is not valid; choose one of {', '.join(map(repr, choices(DatasetName)))}"
            )
        owners: dict[str, str] = {name.name: "data" for name in fields(DATASETS[dataset])}
        for section, section_cls in SECTIONS.items():
            owners.update({f.name: section for f in fields(section_cls)})
        unknown = sorted(set(params) - set(owners))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)} for dataset={dataset!r}; "
                f"valid keys: dataset, {', '.join(sorted(owners))}"
            )
        grouped: dict[str, dict[str, Any]] = {name: {} for name in ["data", *SECTIONS]}
        for key, value in params.items():
            grouped[owners[key]][key] = value
        try:
            parts = {name: build(section_cls, grouped[name], where=where) for name, section_cls in SECTIONS.items()}
            data = build(DATASETS[dataset], grouped["data"], where=where)
            return cls(dataset=dataset, data=data, **parts)
        except ConfigError as err:
            message = str(err)
            raise ConfigError(message if message.startswith(where) else f"{where}: {message}") from None

    def to_flat(self) -> dict[str, Any]:
        flat: dict[str, Any] = {"dataset": self.dataset, **to_dict(self.data)}
        for name in SECTIONS:
            flat.update(to_dict(getattr(self, name)))
        return flat

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some flat keys changed (validated like :meth:`from_flat`)."""
        return RunConfig.from_flat({**self.to_flat(), **changes})

    def key(self, *, exclude: typing.Iterable[str] = ("device", "num_workers", "memory_budget_mb")) -> str:
        """Short stable hash of the settings that define the result (not where or how fast it runs).

        ``threads`` is part of it: CPU kernels split their sums by thread count, so 1 and 2 threads give
        different weights (same key, same numbers; tests/test_reliability.py).

        Keys of :data:`DEFAULT_FREE_KEYS` are left out while they hold their default, so adding a key
        with a default that reproduces the old behaviour keeps every existing config's key.
        """
        skip, defaults = set(exclude), _default_free_values()
        flat = {
            k: v
            for k, v in self.to_flat().items()
            if k not in skip and not (k in defaults and v == defaults[k] and type(v) is type(defaults[k]))
        }
        return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> RunConfig:
        return cls.from_flat({**load_yaml_mapping(path), **overrides}, where=str(path))
