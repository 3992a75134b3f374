"""The run configuration: one dataset section and the model/training sections, in one flat key space."""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ipslib.config.base import ConfigError, TaskSpec, _choice, build, load_yaml_mapping, to_dict
from ipslib.config.data import DATASETS, MegapixelMNISTConfig
from ipslib.config.model import AggregatorConfig, EncoderConfig, IPSConfig, RegulariserConfig, STKIMConfig, TrainConfig

__all__ = ["SECTIONS", "RunConfig"]


SECTIONS = {
    "ips": IPSConfig,
    "encoder": EncoderConfig,
    "aggregator": AggregatorConfig,
    "regulariser": RegulariserConfig,
    "stkim": STKIMConfig,
    "train": TrainConfig,
}


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs. Build with :meth:`from_flat`; save with :meth:`to_flat`."""

    dataset: str = "megapixel_mnist"
    data: Any = field(default_factory=MegapixelMNISTConfig)
    ips: IPSConfig = field(default_factory=IPSConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    aggregator: AggregatorConfig = field(default_factory=AggregatorConfig)
    regulariser: RegulariserConfig = field(default_factory=RegulariserConfig)
    stkim: STKIMConfig = field(default_factory=STKIMConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        _choice("dataset", self.dataset, DATASETS)
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
        if dataset not in DATASETS:
            raise ConfigError(f"{where}: dataset={dataset!r} is not valid; choose one of {', '.join(DATASETS)}")
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

    def key(self, *, exclude: typing.Iterable[str] = ("device", "num_workers", "threads")) -> str:
        """Short stable hash of the settings that define the result (not where or how fast it runs)."""
        flat = {k: v for k, v in self.to_flat().items() if k not in set(exclude)}
        return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> RunConfig:
        return cls.from_flat({**load_yaml_mapping(path), **overrides}, where=str(path))
