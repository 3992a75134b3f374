"""Run configuration: one frozen dataclass per concern, composed into :class:`RunConfig`.

Every field has a unique name across all sections, so a run is described by one flat mapping
(``RunConfig.from_flat``, a params YAML, ``--set key=value``) and every object receives only its own
section. Derived values (patch count, embedding width, task list, input channels) are properties,
never inputs. Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the
key and what would be valid.
"""

from ipslib.config.base import ConfigError, TaskSpec, build, check_keys, load_yaml_mapping, yaml_number
from ipslib.config.data import (
    DATASETS,
    MNIST_TASKS,
    TRAFFIC_TASKS,
    MegapixelMNISTConfig,
    SyntheticTrafficConfig,
    TrafficSignsConfig,
)
from ipslib.config.model import AggregatorConfig, EncoderConfig, IPSConfig, RegulariserConfig, STKIMConfig, TrainConfig
from ipslib.config.run import SECTIONS, RunConfig

__all__ = [
    "ConfigError",
    "TaskSpec",
    "MegapixelMNISTConfig",
    "TrafficSignsConfig",
    "SyntheticTrafficConfig",
    "IPSConfig",
    "EncoderConfig",
    "AggregatorConfig",
    "RegulariserConfig",
    "STKIMConfig",
    "TrainConfig",
    "RunConfig",
    "DATASETS",
    "SECTIONS",
    "MNIST_TASKS",
    "TRAFFIC_TASKS",
    "build",
    "check_keys",
    "load_yaml_mapping",
    "yaml_number",
]
