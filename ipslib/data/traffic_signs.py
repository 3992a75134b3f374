"""Swedish Traffic Signs (Larsson & Felsberg 2011) as used by IPS and the dissertation: speed-limit classification.

Layout on disk (what :func:`fetch_traffic` produces, and what users who place the files by hand provide)::

    <root>/Set1/annotations.txt   <root>/Set1/<images of Set1Part0.zip, directly or in one subfolder>
    <root>/Set2/annotations.txt   <root>/Set2/<images of Set2Part0.zip, directly or in one subfolder>

``root`` defaults to ``$IPSLIB_DATA/traffic_signs`` (``IPSLIB_DATA`` defaults to ``~/.cache/ipslib``).
Annotation grammar, filter and subsets: :mod:`ipslib.data.traffic_annotations` (spec §9). The training split is
``config.train_set`` and the test split the other set (the author's seed-parity rule made explicit).
Classes: 0 no-sign, 1 = 50, 2 = 70, 3 = 80 km/h.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ipslib.config import TrafficSignsConfig, build
from ipslib.config.options import Split, TrainSet, choice_error, choices
from ipslib.data.traffic_annotations import (
    ANNOTATIONS,
    CLASS_NAMES,
    KNOWN_MD5,
    Entry,
    Item,
    class_counts,
    filter_entries,
    read_annotations,
    select_subset,
)
from ipslib.system.files import atomic_write_chunks, data_root, file_md5

__all__ = ["TrafficSigns", "fetch_traffic", "default_root", "CLASS_NAMES", "BASE_URL", "IMAGENET_MEAN", "IMAGENET_STD"]

BASE_URL = "https://www.cvl.isy.liu.se/research/trafficSigns/swedishSignsSummer/"
SETS = choices(TrainSet)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def default_root() -> Path:
    """``$IPSLIB_DATA/traffic_signs``; ``IPSLIB_DATA`` defaults to ``~/.cache/ipslib`` (:func:`data_root`)."""
    return data_root() / "traffic_signs"


def _resolve_root(root: str | os.PathLike | None) -> Path:
    return Path(root).expanduser() if root else default_root()


def _image_index(set_dir: Path) -> dict[str, Path]:
    """File name -> path for the images directly in ``set_dir`` or one folder down (direct ones win)."""
    index: dict[str, Path] = {}
    if not set_dir.is_dir():
        return index
    subdirs = sorted(p for p in set_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in [*reversed(subdirs), set_dir]:
        index.update({p.name: p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES})
    return index


def _load_set(set_dir: Path, set_name: str, *, check_images: bool) -> tuple[list[Entry], dict[str, Path]]:
    """Parse a set's annotations (warning on an unknown md5) and check that every image is present."""
    path = set_dir / ANNOTATIONS
    entries = read_annotations(path)
    digest = file_md5(path)
    if digest != KNOWN_MD5.get(set_name):
        warnings.warn(
            f"{path}: md5 {digest} differs from the published {set_name} annotations "
            f"({KNOWN_MD5.get(set_name)}); loading it anyway, but results may not be comparable",
            stacklevel=3,
        )
    images = _image_index(set_dir)
    if check_images:
        for entry in entries:
            if entry.file not in images:
                raise FileNotFoundError(
                    f"{set_dir / entry.file}: image not found (referenced by {path} line "
                    f"{entry.line}; images may lie in {set_dir} or one folder below it)"
                )
    return entries, images


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
        self.root = _resolve_root(config.root)
        set_dir = self.root / self.set_name
        if not (set_dir / ANNOTATIONS).is_file():
            raise FileNotFoundError(
                f"{set_dir / ANNOTATIONS}: annotation file not found; run "
                f"`ipslib data fetch traffic` or see ipslib.data.traffic_signs.fetch_traffic"
            )
        entries, self._images = _load_set(set_dir, self.set_name, check_images=check_images)
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
        with Image.open(self._path(self.items[i])) as image:
            return image.convert("RGB")

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


# ---------------------------------------------------------------------------------------------- fetching
def _download(url: str, dest: Path) -> None:
    """Fetch ``url`` to ``dest`` over https with the default (verifying) certificate checks."""
    with urllib.request.urlopen(url, timeout=60) as response:
        atomic_write_chunks(dest, iter(lambda: response.read(1 << 20), b""))


def _manual_help(root: Path) -> str:
    return (
        f"To install by hand, download from {BASE_URL} the files Set1/annotations.txt, Set1/Set1Part0.zip, "
        f"Set2/annotations.txt and Set2/Set2Part0.zip, then place each set's annotations.txt in "
        f"{root}/SetN/ and unzip SetNPart0.zip into {root}/SetN/ (the images may sit directly there or in "
        f"one subfolder); `ipslib data fetch traffic` then only verifies the folder."
    )


def _extract(archive: Path, dest_parent: Path, name: str) -> Path:
    """Unzip into a temporary folder next to the target and return the folder holding the images."""
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest_parent))
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.namelist():
            target = (scratch / member).resolve()
            if not target.is_relative_to(scratch.resolve()):
                raise ValueError(f"{archive}: unsafe member path {member!r}")
        zipped.extractall(scratch)
    children = [p for p in scratch.iterdir() if not p.name.startswith("__MACOSX")]
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return scratch


def _install_set(root: Path, set_name: str) -> None:
    """Download one set to a temporary folder, check the annotations' md5, then move it into place."""
    set_dir = root / set_name
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{set_name}-download-", dir=root))
    try:
        annotations, archive = scratch / ANNOTATIONS, scratch / f"{set_name}Part0.zip"
        for url, dest in (
            (f"{BASE_URL}{set_name}/{ANNOTATIONS}", annotations),
            (f"{BASE_URL}{set_name}/{archive.name}", archive),
        ):
            try:
                _download(url, dest)
            except (urllib.error.URLError, OSError) as err:
                raise ConnectionError(f"could not download {url} ({err}). {_manual_help(root)}") from err
        digest = file_md5(annotations)
        if digest != KNOWN_MD5[set_name]:
            raise ValueError(
                f"{BASE_URL}{set_name}/{ANNOTATIONS}: md5 {digest}, expected {KNOWN_MD5[set_name]}; "
                f"the published file changed. {_manual_help(root)}"
            )
        images = _extract(archive, scratch, f"{set_name}Part0")
        set_dir.mkdir(exist_ok=True)
        target = set_dir / f"{set_name}Part0"
        if target.exists():
            raise FileExistsError(f"{target}: already exists; remove it or complete {set_dir} by hand")
        images.rename(target)
        annotations.rename(set_dir / ANNOTATIONS)  # last: a set counts as present once this file exists
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fetch_traffic(root: str | os.PathLike | None = None) -> Path:
    """Make sure ``root`` holds both sets; download what is missing, verify what is there.

    A set whose ``annotations.txt`` is present is only verified (parsed, md5 compared with a warning, every
    referenced image present); a missing set is downloaded from :data:`BASE_URL` over https, checked against
    the published md5 and moved into place atomically.

    Returns:
        the root folder.
    Raises:
        ConnectionError: the download failed (the message explains how to place the files by hand).
        FileNotFoundError / ValueError: a missing image or a malformed annotation line, naming file and line.
    """
    root = _resolve_root(root)
    for set_name in SETS:
        if not (root / set_name / ANNOTATIONS).is_file():
            _install_set(root, set_name)
        _load_set(root / set_name, set_name, check_images=True)
    return root
