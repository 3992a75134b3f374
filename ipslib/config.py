"""Run configuration: one frozen dataclass per concern, composed into :class:`RunConfig`.

Every field has a unique name across all sections, so a run is described by one flat mapping
(``RunConfig.from_flat``, a params YAML, ``--set key=value``) and every object receives only its own
section. Derived values (patch count, embedding width, task list, input channels) are properties,
never inputs. Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the
key and what would be valid.
"""
from __future__ import annotations

import hashlib
import re
import json
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "ConfigError", "TaskSpec", "MegapixelMNISTConfig", "TrafficSignsConfig", "SyntheticTrafficConfig",
    "IPSConfig", "EncoderConfig", "AggregatorConfig", "RegulariserConfig", "STKIMConfig", "TrainConfig",
    "RunConfig", "DATASETS", "build", "load_yaml_mapping",
]


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


MNIST_TASKS = {
    "majority": TaskSpec(10, "multiclass"),
    "max": TaskSpec(10, "multiclass"),
    "top": TaskSpec(10, "multiclass"),
    "multi": TaskSpec(10, "multilabel"),
}
TRAFFIC_TASKS = {"sign": TaskSpec(4, "multiclass")}


# ----------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class MegapixelMNISTConfig:
    """Megapixel MNIST (Katharopoulos & Fleuret 2019) with the dissertation's O2I scaling (spec §8).

    ``n_noise`` is a count, or ``"o2i_rule"`` for the dissertation's round(-7.14 * digit_size + 1000).
    ``thickness_mode="integer"`` draws ``int(noise_thickness)`` pixels as the author's code does;
    ``"antialiased"`` draws a true sub-pixel line width (both apply to Bézier noise only; ``"lines"`` is the
    original fixed recipe). ``data_seed`` must be >= 0. ``digit_source="sample"`` draws digits from the
    small sample of real MNIST digits shipped with ipslib (for smoke runs and tests) instead of all 70,000.
    """

    canvas_size: int = 1500
    digit_size: int = 28
    noise_size: int | None = None
    n_noise: int | str = 50
    noise_type: str = "bezier"
    noise_thickness: float = 1.0
    thickness_mode: str = "integer"
    n_train: int = 5000
    n_test: int = 1000
    data_seed: int = 0
    digit_source: str = "mnist"

    def __post_init__(self) -> None:
        _at_least("digit_size", self.digit_size, 1)
        _choice("digit_source", self.digit_source, ["mnist", "sample"])
        if self.canvas_size < 5 * self.digit_size:
            raise ConfigError(
                f"canvas_size={self.canvas_size} is too small for five non-overlapping digits of "
                f"digit_size={self.digit_size}; it must be >= 5 * digit_size = {5 * self.digit_size}")
        if self.noise_size is not None:
            _within("noise_size", self.noise_size, 1, self.canvas_size)
        if isinstance(self.n_noise, str):
            _choice("n_noise", self.n_noise, ["o2i_rule"])
        else:
            _at_least("n_noise", self.n_noise, 0)
        if self.n_noise == "o2i_rule" and self.noise_count < 0:
            raise ConfigError(f"n_noise='o2i_rule' gives a negative count for digit_size={self.digit_size}")
        _choice("noise_type", self.noise_type, ["bezier", "lines"])
        if not self.noise_thickness > 0:
            raise ConfigError(f"noise_thickness={self.noise_thickness!r} is out of range; it must be > 0")
        _choice("thickness_mode", self.thickness_mode, ["integer", "antialiased"])
        if self.thickness_mode == "integer" and int(self.noise_thickness) < 1:
            raise ConfigError(f"noise_thickness={self.noise_thickness!r} draws nothing with thickness_mode="
                              "'integer' (int(t) pixels); it must be >= 1, or use thickness_mode='antialiased'")
        _at_least("n_train", self.n_train, 0)
        _at_least("n_test", self.n_test, 0)
        _at_least("data_seed", self.data_seed, 0)  # numpy SeedSequence entropy must be non-negative

    @property
    def noise_px(self) -> int:
        """Side of a noise pattern on the canvas."""
        return self.digit_size if self.noise_size is None else self.noise_size

    @property
    def noise_count(self) -> int:
        if self.n_noise == "o2i_rule":
            return round(-7.14 * self.digit_size + 1000)
        return int(self.n_noise)

    @property
    def o2i(self) -> float:
        """Object-to-image ratio as a fraction: digit area / canvas area."""
        return self.digit_size ** 2 / self.canvas_size ** 2

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.canvas_size, self.canvas_size)

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return dict(MNIST_TASKS)

    def n_items(self, split: str) -> int:
        _choice("split", split, ["train", "test"])
        return self.n_train if split == "train" else self.n_test


@dataclass(frozen=True)
class TrafficSignsConfig:
    """Swedish Traffic Signs (Larsson & Felsberg 2011), speed-limit setting (spec §9).

    ``root`` empty means ``$IPSLIB_DATA/traffic_signs``. ``train_set`` makes the author's seed-parity
    split rule explicit: Set1 trains and Set2 tests, or the other way round.
    """

    root: str = ""
    subset_fraction: float = 0.25
    subset_mode: str = "first_k"
    train_set: str = "Set1"
    image_height: int = 1200
    image_width: int = 1600
    augment: bool = True
    data_seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.subset_fraction <= 1:
            raise ConfigError(f"subset_fraction={self.subset_fraction!r} is out of range; it must be in (0, 1]")
        _choice("subset_mode", self.subset_mode, ["first_k", "stratified_random"])
        _choice("train_set", self.train_set, ["Set1", "Set2"])
        _at_least("image_height", self.image_height, 1)
        _at_least("image_width", self.image_width, 1)
        _at_least("data_seed", self.data_seed, 0)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.image_height, self.image_width)

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return dict(TRAFFIC_TASKS)


@dataclass(frozen=True)
class SyntheticTrafficConfig:
    """Generated road scenes with one speed-limit sign (or none): an offline stand-in, never the real data.

    ``class_probs`` are the shares of no-sign, 50, 70, 80 (default: the real 25 % subset's shares).
    ``sign_min_size``/``sign_max_size`` bound the sign diameter in pixels; the defaults give an O2I (box area
    over image area, :attr:`o2i_range`) of 0.053 %-0.40 % at 1200x1600.
    """

    image_height: int = 1200
    image_width: int = 1600
    n_train: int = 200
    n_test: int = 100
    class_probs: tuple[float, ...] = (0.66, 0.10, 0.16, 0.08)
    sign_min_size: int = 32
    sign_max_size: int = 88
    occlusion_prob: float = 0.2
    blur_prob: float = 0.2
    n_distractors: int = 6
    data_seed: int = 0

    def __post_init__(self) -> None:
        _at_least("image_height", self.image_height, 32)
        _at_least("image_width", self.image_width, 32)
        _at_least("n_train", self.n_train, 0)
        _at_least("n_test", self.n_test, 0)
        if len(self.class_probs) != 4 or min(self.class_probs) < 0 or abs(sum(self.class_probs) - 1) > 1e-6:
            raise ConfigError(f"class_probs={self.class_probs!r} must be 4 non-negative shares summing to 1 "
                              "(no-sign, 50, 70, 80)")
        _at_least("sign_min_size", self.sign_min_size, 8)
        if not self.sign_min_size <= self.sign_max_size <= min(self.image_height, self.image_width):
            raise ConfigError(f"sign_max_size={self.sign_max_size} must be in [sign_min_size, image side]")
        _within("occlusion_prob", self.occlusion_prob, 0, 1)
        _within("blur_prob", self.blur_prob, 0, 1)
        _at_least("n_distractors", self.n_distractors, 0)
        _at_least("data_seed", self.data_seed, 0)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.image_height, self.image_width)

    @property
    def o2i_range(self) -> tuple[float, float]:
        """Smallest and largest sign box area (diameter squared) over the image area, as fractions."""
        area = self.image_height * self.image_width
        return self.sign_min_size ** 2 / area, self.sign_max_size ** 2 / area

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return dict(TRAFFIC_TASKS)

    def n_items(self, split: str) -> int:
        _choice("split", split, ["train", "test"])
        return self.n_train if split == "train" else self.n_test


DATASETS: dict[str, type] = {
    "megapixel_mnist": MegapixelMNISTConfig,
    "traffic_signs": TrafficSignsConfig,
    "synthetic_traffic": SyntheticTrafficConfig,
}


# ---------------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class IPSConfig:
    """Patch grid and iterative selection (spec §1). ``patch_stride`` None means = ``patch_size``.

    ``dedup_blank`` encodes identical patches once during the no-grad selection (exact in eval mode).
    """

    patch_size: int = 50
    patch_stride: int | None = None
    memory_size: int = 100
    iter_size: int = 100
    shuffle: bool = True
    shuffle_style: str = "batch"
    use_pos: bool = True
    dedup_blank: bool = True

    def __post_init__(self) -> None:
        _at_least("patch_size", self.patch_size, 1)
        if self.patch_stride is not None:
            _at_least("patch_stride", self.patch_stride, 1)
        _at_least("memory_size", self.memory_size, 1)
        _at_least("iter_size", self.iter_size, 1)
        _choice("shuffle_style", self.shuffle_style, ["batch", "instance"])

    @property
    def stride(self) -> int:
        return self.patch_size if self.patch_stride is None else self.patch_stride


@dataclass(frozen=True)
class EncoderConfig:
    """Patch encoder (spec §2). ``n_res_blocks`` ResNet stages are kept; ``proj_dim`` adds Linear(C → proj_dim).

    ``weights``: ``none``, ``imagenet_v1``, ``imagenet_v2`` (torchvision weights API) or ``file`` (a local
    state dict at ``weights_path``). ``freeze`` None means frozen for ResNet-50 and trainable otherwise.
    """

    arch: str = "resnet18"
    n_res_blocks: int = 2
    weights: str = "none"
    weights_path: str = ""
    freeze: bool | None = None
    freeze_bn: bool = False
    proj_dim: int | None = None

    def __post_init__(self) -> None:
        _choice("arch", self.arch, ["resnet18", "resnet50"])
        _choice("n_res_blocks", self.n_res_blocks, [1, 2, 3, 4])
        _choice("weights", self.weights, ["none", "imagenet_v1", "imagenet_v2", "file"])
        if self.weights == "file" and not self.weights_path:
            raise ConfigError("weights='file' needs weights_path (a torch state-dict file)")
        if self.weights == "imagenet_v2" and self.arch == "resnet18":
            raise ConfigError("weights='imagenet_v2' exists only for arch='resnet50'; use 'imagenet_v1'")
        if self.proj_dim is not None:
            _at_least("proj_dim", self.proj_dim, 1)

    @property
    def trunk_dim(self) -> int:
        width = 64 * 2 ** (self.n_res_blocks - 1)
        return width * (4 if self.arch == "resnet50" else 1)

    @property
    def embed_dim(self) -> int:
        """D, the width of a patch embedding."""
        return self.trunk_dim if self.proj_dim is None else self.proj_dim

    @property
    def frozen(self) -> bool:
        return self.arch == "resnet50" if self.freeze is None else self.freeze


@dataclass(frozen=True)
class AggregatorConfig:
    """Cross-attention aggregation (spec §3): H heads of width D_k = D_v, MLP of width D_inner."""

    n_heads: int = 8
    head_dim: int = 16
    mlp_dim: int = 512
    attn_dropout: float = 0.1
    dropout: float = 0.1

    def __post_init__(self) -> None:
        _at_least("n_heads", self.n_heads, 1)
        _at_least("head_dim", self.head_dim, 1)
        _at_least("mlp_dim", self.mlp_dim, 1)
        _within("attn_dropout", self.attn_dropout, 0, 1)
        _within("dropout", self.dropout, 0, 1)


@dataclass(frozen=True)
class RegulariserConfig:
    """Diversity and semantic losses (spec §4). A weight of 0 switches that loss off.

    ``diversity_target``: ``head_outputs`` (author's code), ``head_attention`` (paper Eq. 10),
    ``branch_attention`` (ACMIL). ``semantic_heads``: ``shared`` (author's code) or ``per_head``
    (paper Eq. 12). ``double_forward`` repeats the author's second transformer call.
    """

    diversity_weight: float = 0.0
    semantic_weight: float = 0.0
    diversity_target: str = "head_outputs"
    semantic_heads: str = "shared"
    double_forward: bool = False

    def __post_init__(self) -> None:
        _at_least("diversity_weight", self.diversity_weight, 0)
        _at_least("semantic_weight", self.semantic_weight, 0)
        _choice("diversity_target", self.diversity_target, ["head_outputs", "head_attention", "branch_attention"])
        _choice("semantic_heads", self.semantic_heads, ["shared", "per_head"])

    @property
    def enabled(self) -> bool:
        return self.diversity_weight > 0 or self.semantic_weight > 0


@dataclass(frozen=True)
class STKIMConfig:
    """Stochastic top-K instance masking (spec §5). ``stkim_k = 0`` or ``stkim_p = 0`` switches it off.

    ``seed_selection``: the author's masking of selection scores (Bernoulli, also at test time by default);
    ``acmil_aggregation``: ACMIL's masking of aggregation logits (exactly floor(K·P), training only).
    ``stkim_sampling`` and ``stkim_in_eval`` None take the chosen mode's own behaviour.
    """

    stkim_k: int = 0
    stkim_p: float = 0.0
    stkim_mode: str = "seed_selection"
    stkim_sampling: str | None = None
    stkim_in_eval: bool | None = None

    def __post_init__(self) -> None:
        _at_least("stkim_k", self.stkim_k, 0)
        _within("stkim_p", self.stkim_p, 0, 1)
        _choice("stkim_mode", self.stkim_mode, ["seed_selection", "acmil_aggregation"])
        if self.stkim_sampling is not None:
            _choice("stkim_sampling", self.stkim_sampling, ["bernoulli", "exact_fraction"])

    @property
    def active(self) -> bool:
        return self.stkim_k > 0 and self.stkim_p > 0

    @property
    def sampling(self) -> str:
        if self.stkim_sampling is not None:
            return self.stkim_sampling
        return "bernoulli" if self.stkim_mode == "seed_selection" else "exact_fraction"

    @property
    def in_eval(self) -> bool:
        if self.stkim_in_eval is not None:
            return self.stkim_in_eval
        return self.stkim_mode == "seed_selection"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping (spec §6-§7). ``sub_batch_size`` None means = ``batch_size``."""

    epochs: int = 3
    batch_size: int = 16
    sub_batch_size: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_epochs: float = 10.0
    min_lr_ratio: float = 1e-3
    train_seed: int = 0
    device: str = "auto"
    amp: str = "none"
    num_workers: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        _at_least("epochs", self.epochs, 1)
        _at_least("batch_size", self.batch_size, 1)
        if self.sub_batch_size is not None:
            _within("sub_batch_size", self.sub_batch_size, 1, self.batch_size)
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr!r} is out of range; it must be > 0")
        _at_least("weight_decay", self.weight_decay, 0)
        _at_least("warmup_epochs", self.warmup_epochs, 0)
        _within("min_lr_ratio", self.min_lr_ratio, 0, 1)
        _choice("device", self.device.split(":")[0], ["auto", "cpu", "cuda"])
        _choice("amp", self.amp, ["none", "bf16"])
        _at_least("num_workers", self.num_workers, 0)
        _at_least("threads", self.threads, 0)


# ------------------------------------------------------------------------------------- building blocks
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
    floaty = annotation is float or (typing.get_origin(annotation) in (typing.Union, types.UnionType)
                                     and float in typing.get_args(annotation))
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


def _to_dict(obj: Any) -> dict[str, Any]:
    """Field values in plain YAML/JSON types, numbers normalised to their annotated type."""
    hints = typing.get_type_hints(type(obj))
    out = {}
    for f in fields(obj):
        value = _coerce(getattr(obj, f.name), hints[f.name])
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


SECTIONS = {
    "ips": IPSConfig, "encoder": EncoderConfig, "aggregator": AggregatorConfig,
    "regulariser": RegulariserConfig, "stkim": STKIMConfig, "train": TrainConfig,
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
    def from_flat(cls, params: Mapping[str, Any] | None = None, /, *, where: str = "config",
                  **kwargs: Any) -> "RunConfig":
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
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for dataset={dataset!r}; "
                              f"valid keys: dataset, {', '.join(sorted(owners))}")
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
        flat: dict[str, Any] = {"dataset": self.dataset, **_to_dict(self.data)}
        for name in SECTIONS:
            flat.update(_to_dict(getattr(self, name)))
        return flat

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with some flat keys changed (validated like :meth:`from_flat`)."""
        return RunConfig.from_flat({**self.to_flat(), **changes})

    def key(self, *, exclude: typing.Iterable[str] = ("device", "num_workers", "threads")) -> str:
        """Short stable hash of the settings that define the result (not where or how fast it runs)."""
        flat = {k: v for k, v in self.to_flat().items() if k not in set(exclude)}
        return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "RunConfig":
        return cls.from_flat({**load_yaml_mapping(path), **overrides}, where=str(path))


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
    return {key: _yaml_number(value) for key, value in loaded.items()}


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _yaml_number(value: Any) -> Any:
    """YAML 1.1 reads ``3e-4`` (no dot) as a string; read it as the number everybody means."""
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [_yaml_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _yaml_number(v) for k, v in value.items()}
    return value

