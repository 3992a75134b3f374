"""Run configuration: one frozen dataclass per concern, composed into :class:`RunConfig`.

Every field has a unique name across all sections, so a run is described by one flat mapping
(``RunConfig.from_flat``, a params YAML, ``--set key=value``) and every object receives only its own
section. Derived values (patch count, embedding width, task list, input channels) are properties,
never inputs. Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the
key and what would be valid. Every set of valid option strings is a ``Literal`` type in
:mod:`ipslib.config.options`, read with :func:`choices` wherever the strings are checked or offered.
"""

from ipslib.config.base import ConfigError, TaskSpec, build, check_keys, check_options, load_yaml_mapping, yaml_number
from ipslib.config.data import (
    DATASETS,
    MNIST_TASKS,
    TRAFFIC_TASKS,
    MegapixelMNISTConfig,
    SyntheticTrafficConfig,
    TrafficSignsConfig,
)
from ipslib.config.model import AggregatorConfig, EncoderConfig, IPSConfig, RegulariserConfig, STKIMConfig, TrainConfig
from ipslib.config.options import (
    Amp,
    Arch,
    DatasetName,
    DeviceKind,
    DigitSource,
    DiversityTarget,
    ModelArchitecture,
    NoiseRule,
    NoiseType,
    SelectionMode,
    SemanticHeads,
    ShuffleStyle,
    Split,
    STKIMMode,
    STKIMSampling,
    SubsetMode,
    TaskKind,
    ThicknessMode,
    TrainSet,
    Weights,
    choices,
)
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
    "check_options",
    "choices",
    "Amp",
    "Arch",
    "DatasetName",
    "DeviceKind",
    "DigitSource",
    "DiversityTarget",
    "ModelArchitecture",
    "NoiseRule",
    "NoiseType",
    "SelectionMode",
    "SemanticHeads",
    "ShuffleStyle",
    "Split",
    "STKIMMode",
    "STKIMSampling",
    "SubsetMode",
    "TaskKind",
    "ThicknessMode",
    "TrainSet",
    "Weights",
    "load_yaml_mapping",
    "yaml_number",
]
