"""The dataset registry: one entry per dataset, everything the rest of ipslib needs to know about it.

An entry names the dataset's configuration class (``ipslib.config.DATASETS``), its dataset class (imported
on first use, so that reading the registry imports no torch), whether its images are synthetic stand-ins,
and how its chance levels are found. Code that behaves differently per dataset asks the registry
(``entry(cfg.dataset)``) instead of comparing dataset names; adding a dataset means adding one entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ipslib.config import DATASETS, ConfigError, RunConfig

__all__ = ["DatasetEntry", "REGISTRY", "entry", "chance_levels"]


@dataclass(frozen=True)
class DatasetEntry:
    """What ipslib knows about one dataset.

    Attributes:
        name: the value of the ``dataset`` config key.
        dataset_class: ``"module:Class"`` of the dataset (``Class(data_config, split)``).
        synthetic: images are generated stand-ins, never to be reported as the real data.
        layout_streaming: canvases can be rendered patch by patch from their layout (``ipslib predict
            --mnist-index``).
        chance_rule: how the chance level is found (shown beside results).
        chance: ``(data_config) -> {task: accuracy of the best constant prediction}``.
    """

    name: str
    dataset_class: str
    synthetic: bool
    layout_streaming: bool
    chance_rule: str
    chance: Callable[[Any], dict[str, float]]

    @property
    def config_class(self) -> type:
        return DATASETS[self.name]

    def cls(self) -> type:
        module, _, name = self.dataset_class.partition(":")
        return getattr(importlib.import_module(module), name)

    def open(self, data: Any, split: str) -> Any:
        """The dataset object (its own API: ``layout``, ``boxes``, ``labels``...) for ``split``."""
        return self.cls()(data, split)

    def torch_view(self, data: Any, split: str) -> Any:
        """The torch ``Dataset`` whose items are ``(image, targets)``."""
        dataset = self.open(data, split)
        return dataset.torch() if hasattr(dataset, "torch") else dataset


def _mnist_chance(data: Any) -> dict[str, float]:
    from ipslib.data.chance import exact_chance_levels
    from ipslib.data.megapixel_mnist import MegapixelMNIST

    table = exact_chance_levels(MegapixelMNIST(data, "test").digits.labels)
    return {task: float(table.loc[task, "chance (%)"]) / 100 for task in table.index}


def _synthetic_traffic_chance(data: Any) -> dict[str, float]:
    return {"sign": float(max(data.class_probs))}


def _traffic_chance(data: Any) -> dict[str, float]:
    from ipslib.data.traffic_signs import TrafficSigns

    labels = np.asarray(TrafficSigns(data, "test").labels)
    return {"sign": float(np.bincount(labels).max() / len(labels))}


REGISTRY: dict[str, DatasetEntry] = {
    "megapixel_mnist": DatasetEntry(
        name="megapixel_mnist",
        dataset_class="ipslib.data.megapixel_mnist:MegapixelMNIST",
        synthetic=False,
        layout_streaming=True,
        chance_rule="exact under the generator's sampling rule, as on the chance-levels page",
        chance=_mnist_chance,
    ),
    "synthetic_traffic": DatasetEntry(
        name="synthetic_traffic",
        dataset_class="ipslib.data.synthetic_traffic:SyntheticTraffic",
        synthetic=True,
        layout_streaming=False,
        chance_rule="the largest class share of the generator",
        chance=_synthetic_traffic_chance,
    ),
    "traffic_signs": DatasetEntry(
        name="traffic_signs",
        dataset_class="ipslib.data.traffic_signs:TrafficSigns",
        synthetic=False,
        layout_streaming=False,
        chance_rule="the test split's majority class",
        chance=_traffic_chance,
    ),
}


def entry(name: str) -> DatasetEntry:
    """The registry entry of dataset ``name``; an unknown name is a ConfigError naming the valid ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"dataset={name!r} is not valid; choose one of {', '.join(map(repr, REGISTRY))}") from None


@lru_cache(maxsize=32)
def _chance_cached(name: str, data: Any) -> tuple[tuple[str, float], ...]:
    return tuple(entry(name).chance(data).items())


def chance_levels(config: RunConfig) -> dict[str, float]:
    """Accuracy of the best constant prediction per task (fractions) on the test split's distribution,
    cached per data config (the frozen data configs are hashable)."""
    return dict(_chance_cached(config.dataset, config.data))
