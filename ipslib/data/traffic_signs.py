"""Swedish Traffic Signs (Larsson & Felsberg 2011) as used by IPS and the dissertation: speed-limit classification.

Layout on disk, fetching and checksums: :mod:`ipslib.data.traffic_fetch` (:func:`fetch_traffic` is re-exported
here). An image that cannot be decoded (truncated, damaged) is a DataError naming the file, also mid-epoch.
``root`` defaults to ``$IPSLIB_DATA/traffic_signs`` (``IPSLIB_DATA`` defaults to ``~/.cache/ipslib``).
Annotation grammar, filter and subsets: :mod:`ipslib.data.traffic_annotations` (spec §9). The training split is
``config.train_set`` and the test split the other set (the author's seed-parity rule made explicit).
Classes: 0 no-sign, 1 = 50, 2 = 70, 3 = 80 km/h.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ipslib.config import TrafficSignsConfig, build
from ipslib.config.options import Split, choice_error
from ipslib.data.traffic_annotations import ANNOTATIONS, CLASS_NAMES, Item, class_counts, filter_entries, select_subset
from ipslib.data.traffic_fetch import BASE_URL, SETS, default_root, fetch_traffic, load_set, resolve_root
from ipslib.system.errors import DataError

__all__ = ["TrafficSigns", "fetch_traffic", "default_root", "CLASS_NAMES", "BASE_URL", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


class TrafficSigns(Dataset):
    """The filtered, subsetted speed-limit dataset of one split; items are ``(image, {"sign": label})``.

    Args:
        config: a :class:`~ipslib.config.TrafficSignsConfig` or a mapping of its fields.
        split: ``"train"`` (``config.train_set``) or ``"test"`` (the other set).
        check_images: with False only the annotation files are read (labels and counts without the images).

    Items: image float (3, image_height, image_width), ImageNet-normalised; targets ``{"sign": long scalar}``.
    """

    SYNTHETIC = False
    CLASS_NAMES = CLASS_NAMES

    def __init__(
        self, config: TrafficSignsConfig | Mapping[str, Any], split: str = "train", *, check_images: bool = True
    ) -> None:
        if not isinstance(config, TrafficSignsConfig):
            config = build(TrafficSignsConfig, dict(config), where="TrafficSigns")
        if message := choice_error("split", split, Split):
            raise ValueError(message)
        self.config, self.split = config, split
        self.set_name = config.train_set if split == "train" else SETS[1 - SETS.index(config.train_set)]
        self.root = resolve_root(config.root)
        set_dir = self.root / self.set_name
        if not (set_dir / ANNOTATIONS).is_file():
            raise FileNotFoundError(
                f"{set_dir / ANNOTATIONS}: annotation file not found; run "
                f"`ipslib data fetch traffic` or see ipslib.data.traffic_signs.fetch_traffic"
            )
        entries, self._images = load_set(set_dir, self.set_name, check_images=check_images)
        self._set_dir = set_dir
        items = filter_entries(entries)
        if split == "train" or config.subset_mode == "first_k":
            items = select_subset(items, config.subset_fraction, config.subset_mode, seed=config.data_seed)
        self.items: list[Item] = items
        self.transform = _build_transform(config, train=split == "train" and config.augment)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[int]:
        return [item.label for item in self.items]

    @property
    def files(self) -> list[Path]:
        """Image path of every item, in order."""
        return [self._path(item) for item in self.items]

    def _path(self, item: Item) -> Path:
        return self._images.get(item.file, self._set_dir / item.file)

    def class_counts(self) -> list[int]:
        """Items per class (no-sign, 50, 70, 80)."""
        return class_counts(self.items)

    def _open(self, i: int) -> Image.Image:
        path = self._path(self.items[i])
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, SyntaxError, ValueError) as err:  # truncated or damaged file (PIL raises OSError)
            if isinstance(err, FileNotFoundError):
                raise
            raise DataError(
                f"{path}: cannot decode the image ({type(err).__name__}: {err}); the file is truncated or damaged: "
                f"replace it from {BASE_URL}{self.set_name}/ (item {i} of the {self.split} split)"
            ) from None

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        item = self.items[i]
        image = self.transform(self._open(i))  # (3, H, W)
        return image, {"sign": torch.tensor(item.label, dtype=torch.long)}

    def display(self, i: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Resized image without augmentation, the labelled sign's box and the labels.

        Returns:
            image uint8 (H, W, 3); boxes int (n, 4) as (row, col, height, width) in resized pixels, n = 0 for
            no-sign; labels ``{"sign": int, "sign_name": str}``.
        """
        item = self.items[i]
        raw = self._open(i)
        height, width = self.config.image_height, self.config.image_width
        image = np.asarray(raw.resize((width, height), Image.BILINEAR), dtype=np.uint8)
        boxes = np.zeros((0, 4), dtype=np.int64)
        if item.sign is not None:
            sy, sx = height / raw.height, width / raw.width
            s = item.sign
            top, left = round(min(s.y_min, s.y_max) * sy), round(min(s.x_min, s.x_max) * sx)
            boxes = np.array(
                [[top, left, max(1, round(abs(s.y_max - s.y_min) * sy)), max(1, round(abs(s.x_max - s.x_min) * sx))]],
                dtype=np.int64,
            )
        return image, boxes, {"sign": item.label, "sign_name": CLASS_NAMES[item.label]}

    def __repr__(self) -> str:
        counts = "/".join(map(str, self.class_counts()))
        return (
            f"TrafficSigns(split={self.split!r}, set={self.set_name}, n={len(self)}, counts={counts}, "
            f"subset={self.config.subset_fraction} {self.config.subset_mode})"
        )


def _build_transform(config: TrafficSignsConfig, *, train: bool) -> v2.Compose:
    """Resize (bilinear); train only: ColorJitter 0.1 and a random shift of up to 100/1600 x 100/1200 of the image
    (±100 px at 1200x1600); then float and ImageNet normalisation (spec §9)."""
    steps: list[Any] = [
        v2.ToImage(),
        v2.Resize(
            (config.image_height, config.image_width), interpolation=v2.InterpolationMode.BILINEAR, antialias=True
        ),
    ]
    if train:
        steps += [v2.ColorJitter(0.1, 0.1, 0.1, 0.1), v2.RandomAffine(degrees=0, translate=(100 / 1600, 100 / 1200))]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(steps)
