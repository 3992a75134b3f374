"""Swedish Traffic Signs annotations: the file grammar, the speed-limit filter and the subset rules (spec §9).

Pure functions over text, no images and no torch, so the class composition of any annotation file can be
checked without the image files. The grammar and the filter follow the dissertation's loader
(``traffic_dataset.py``, itself the IPS/ATS loader plus a subset filter):

* one line per image, ``<file>:<sign>;<sign>;...`` (a file annotated twice must get the same label both times,
  else the lines are an error naming both); a sign is
  ``VISIBILITY, x_max, y_max, x_min, y_min, TYPE, NAME`` (note: the *max* corner comes first);
  numbers may carry trailing junk (``"512.3l"`` reads as 512.3); entries starting with ``MISC_SIGNS`` are skipped;
* an image without (non-MISC) signs is class 0 (no sign); otherwise only 50_SIGN/70_SIGN/80_SIGN count, sorted
  by visibility (VISIBLE < BLURRED < SIDE_ROAD < OCCLUDED) then by area, largest first; the image is dropped when
  none is left or the first is not VISIBLE, and labelled by the first otherwise;
* subsets: ``first_k`` keeps the first int(f * count_c) images of each class in file order (what produced the
  dissertation's numbers, applied to train and test); ``stratified_random`` draws int(f * count_c) per class
  with a seed (what the dissertation text describes, applied to train only; see spec P13).

Reference: F. Larsson and M. Felsberg, "Using Fourier Descriptors and Spatial Models for Traffic Sign
Recognition", SCIA 2011.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ipslib.config import SubsetMode, choices
from ipslib.system.errors import DataError

__all__ = [
    "CLASS_NAMES",
    "SPEED_SIGNS",
    "VISIBILITY_ORDER",
    "KNOWN_MD5",
    "Sign",
    "Entry",
    "Item",
    "parse_annotations",
    "read_annotations",
    "label_signs",
    "filter_entries",
    "select_subset",
    "class_counts",
]

CLASS_NAMES = ("no-sign", "50", "70", "80")
SPEED_SIGNS = {"50_SIGN": 1, "70_SIGN": 2, "80_SIGN": 3}
VISIBILITY_ORDER = {"VISIBLE": 0, "BLURRED": 1, "SIDE_ROAD": 2, "OCCLUDED": 3}
KNOWN_MD5: dict[str, str | None] = {
    "Set1": "9106a905a86209c95dc9b51d12f520d6",  # Set1/annotations.txt
    "Set2": "09debbc67f6cd89c1e2a2688ad1d03ca",  # Set2/annotations.txt
    "Set1Part0.zip": None,  # image archives: not published; fetch_traffic warns with the digest to record here
    "Set2Part0.zip": None,
}
"""md5 of each published file (see :mod:`ipslib.data.traffic_fetch`): a digest is checked, None is recorded."""
ANNOTATIONS = "annotations.txt"

_LEADING_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass(frozen=True)
class Sign:
    """One annotated sign, in the pixel coordinates of the raw image."""

    visibility: str
    x_max: float
    y_max: float
    x_min: float
    y_min: float
    sign_type: str
    name: str

    @property
    def area(self) -> float:
        return (self.x_max - self.x_min) * (self.y_max - self.y_min)


@dataclass(frozen=True)
class Entry:
    """One annotation line: an image file and its signs (MISC_SIGNS removed)."""

    file: str
    signs: tuple[Sign, ...]
    line: int


@dataclass(frozen=True)
class Item:
    """An accepted image: its class (0 no-sign, 1 = 50, 2 = 70, 3 = 80) and the sign that gave it."""

    file: str
    label: int
    sign: Sign | None
    line: int


def _number(text: str, where: str) -> float:
    match = _LEADING_NUMBER.match(text)
    if match is None:
        raise DataError(f"{where}: {text.strip()!r} is not a number")
    return float(match.group(0))


def _parse_sign(text: str, where: str) -> Sign | None:
    parts = [part.strip() for part in text.split(",")]
    if parts[0] == "MISC_SIGNS":
        return None
    if len(parts) != 7:
        raise DataError(
            f"{where}: sign {text.strip()!r} has {len(parts)} fields; expected 7 "
            "(VISIBILITY, x_max, y_max, x_min, y_min, TYPE, NAME) or MISC_SIGNS"
        )
    if parts[0] not in VISIBILITY_ORDER:
        raise DataError(f"{where}: unknown visibility {parts[0]!r}; expected one of {', '.join(VISIBILITY_ORDER)}")
    x_max, y_max, x_min, y_min = (_number(p, where) for p in parts[1:5])
    return Sign(parts[0], x_max, y_max, x_min, y_min, parts[5], parts[6])


def parse_annotations(text: str, *, source: str = ANNOTATIONS) -> list[Entry]:
    """Parse the text of an annotations file; blank lines are skipped.

    Raises:
        DataError (a ValueError): "<source> line N: ..." for a line without ``file:`` or a malformed sign;
            "<source> lines N and K: ..." for one image annotated twice with different labels.
    """
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{source} line {number}"
        file, sep, rest = raw.partition(":")
        if not sep or not file.strip():
            raise DataError(f"{where}: expected '<image file>:<sign>;<sign>;...', got {raw.strip()[:80]!r}")
        signs = (_parse_sign(part, where) for part in rest.split(";") if part.strip())
        entries.append(Entry(file.strip(), tuple(s for s in signs if s is not None), number))
    _check_duplicates(entries, source)
    return entries


def _label_name(entry: Entry) -> str:
    labelled = label_signs(entry.signs)
    return "dropped by the filter" if labelled is None else f"class {CLASS_NAMES[labelled[0]]}"


def _check_duplicates(entries: list[Entry], source: str) -> None:
    """Identical repeated lines are kept as the author's loader keeps them; conflicting ones are an error."""
    first: dict[str, Entry] = {}
    for entry in entries:
        seen = first.setdefault(entry.file, entry)
        if seen is not entry and label_signs(seen.signs) != label_signs(entry.signs):
            raise DataError(
                f"{source} lines {seen.line} and {entry.line}: {entry.file} is annotated twice with different "
                f"labels ({_label_name(seen)} vs {_label_name(entry)}); keep the right line and delete the other"
            )


def read_annotations(path: str | Path) -> list[Entry]:
    """Parse an annotations file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    return parse_annotations(path.read_text(encoding="utf-8", errors="replace"), source=str(path))


def label_signs(signs: Sequence[Sign]) -> tuple[int, Sign | None] | None:
    """Class and deciding sign of one image, or None when the filter drops the image."""
    if not signs:
        return 0, None
    speed = sorted((s for s in signs if s.name in SPEED_SIGNS), key=lambda s: (VISIBILITY_ORDER[s.visibility], -s.area))
    if not speed or speed[0].visibility != "VISIBLE":
        return None
    return SPEED_SIGNS[speed[0].name], speed[0]


def filter_entries(entries: Iterable[Entry]) -> list[Item]:
    """Accepted images in file order."""
    items = []
    for entry in entries:
        labelled = label_signs(entry.signs)
        if labelled is not None:
            items.append(Item(entry.file, labelled[0], labelled[1], entry.line))
    return items


def class_counts(items: Iterable[Item]) -> list[int]:
    counts = [0] * len(CLASS_NAMES)
    for item in items:
        counts[item.label] += 1
    return counts


def select_subset(items: Sequence[Item], fraction: float, mode: SubsetMode, *, seed: int = 0) -> list[Item]:
    """Keep int(fraction * count_c) items of each class c, in file order.

    ``first_k`` keeps the first ones (the author's rule); ``stratified_random`` draws them with ``seed``.
    A fraction of 1 keeps everything.
    """
    if mode not in choices(SubsetMode):
        raise ValueError(f"mode={mode!r} is not valid; choose one of {', '.join(map(repr, choices(SubsetMode)))}")
    if fraction >= 1:
        return list(items)
    by_class: dict[int, list[int]] = {}
    for position, item in enumerate(items):
        by_class.setdefault(item.label, []).append(position)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in sorted(by_class):
        positions = by_class[label]
        target = int(fraction * len(positions))
        if mode == "first_k":
            keep.extend(positions[:target])
        else:
            keep.extend(rng.choice(positions, size=target, replace=False).tolist())
    return [items[p] for p in sorted(keep)]
