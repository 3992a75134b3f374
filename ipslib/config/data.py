"""Dataset configurations: megapixel MNIST, the Swedish traffic signs and the synthetic traffic stand-in."""

from __future__ import annotations

from dataclasses import dataclass

from ipslib.config.base import ConfigError, TaskSpec, _at_least, _choice, _within, check_options
from ipslib.config.options import (
    DatasetName,
    DigitSource,
    NoiseRule,
    NoiseType,
    Split,
    SubsetMode,
    ThicknessMode,
    TrainSet,
    choices,
)

__all__ = [
    "MNIST_TASKS",
    "TRAFFIC_TASKS",
    "MegapixelMNISTConfig",
    "TrafficSignsConfig",
    "SyntheticTrafficConfig",
    "DATASETS",
]


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
    n_noise: int | NoiseRule = 50
    noise_type: NoiseType = "bezier"
    noise_thickness: float = 1.0
    thickness_mode: ThicknessMode = "integer"
    n_train: int = 5000
    n_test: int = 1000
    data_seed: int = 0
    digit_source: DigitSource = "mnist"

    def __post_init__(self) -> None:
        check_options(self)  # digit_source, n_noise's rule name, noise_type, thickness_mode
        _at_least("digit_size", self.digit_size, 1)
        if self.canvas_size < 5 * self.digit_size:
            raise ConfigError(
                f"canvas_size={self.canvas_size} is too small for five non-overlapping digits of "
                f"digit_size={self.digit_size}; it must be >= 5 * digit_size = {5 * self.digit_size}"
            )
        if self.noise_size is not None:
            _within("noise_size", self.noise_size, 1, self.canvas_size)
        if not isinstance(self.n_noise, str):
            _at_least("n_noise", self.n_noise, 0)
        if self.n_noise == "o2i_rule" and self.noise_count < 0:
            raise ConfigError(f"n_noise='o2i_rule' gives a negative count for digit_size={self.digit_size}")
        if not self.noise_thickness > 0:
            raise ConfigError(f"noise_thickness={self.noise_thickness!r} is out of range; it must be > 0")
        if self.thickness_mode == "integer" and int(self.noise_thickness) < 1:
            raise ConfigError(
                f"noise_thickness={self.noise_thickness!r} draws nothing with thickness_mode="
                "'integer' (int(t) pixels); it must be >= 1, or use thickness_mode='antialiased'"
            )
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
        return self.digit_size**2 / self.canvas_size**2

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.canvas_size, self.canvas_size)

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return dict(MNIST_TASKS)

    def n_items(self, split: Split) -> int:
        _choice("split", split, choices(Split))
        return self.n_train if split == "train" else self.n_test


@dataclass(frozen=True)
class TrafficSignsConfig:
    """Swedish Traffic Signs (Larsson & Felsberg 2011), speed-limit setting (spec §9).

    ``root`` empty means ``$IPSLIB_DATA/traffic_signs``. ``train_set`` makes the author's seed-parity
    split rule explicit: Set1 trains and Set2 tests, or the other way round.
    """

    root: str = ""
    subset_fraction: float = 0.25
    subset_mode: SubsetMode = "first_k"
    train_set: TrainSet = "Set1"
    image_height: int = 1200
    image_width: int = 1600
    augment: bool = True
    data_seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.subset_fraction <= 1:
            raise ConfigError(f"subset_fraction={self.subset_fraction!r} is out of range; it must be in (0, 1]")
        check_options(self)  # subset_mode, train_set
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
            raise ConfigError(
                f"class_probs={self.class_probs!r} must be 4 non-negative shares summing to 1 (no-sign, 50, 70, 80)"
            )
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
        return self.sign_min_size**2 / area, self.sign_max_size**2 / area

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return dict(TRAFFIC_TASKS)

    def n_items(self, split: Split) -> int:
        _choice("split", split, choices(Split))
        return self.n_train if split == "train" else self.n_test


DATASETS: dict[str, type] = dict(
    zip(choices(DatasetName), (MegapixelMNISTConfig, TrafficSignsConfig, SyntheticTrafficConfig), strict=True)
)
"""Dataset name (the ``dataset`` key, :data:`~ipslib.config.options.DatasetName`) -> its data config class."""
