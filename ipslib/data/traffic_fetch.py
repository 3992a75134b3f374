"""The Swedish Traffic Signs folder on disk: where it is, fetching it and verifying it (spec §9).

Layout (what :func:`fetch_traffic` produces, and what users who place the files by hand provide)::

    <root>/Set1/annotations.txt   <root>/Set1/<images of Set1Part0.zip, directly or in one subfolder>
    <root>/Set2/annotations.txt   <root>/Set2/<images of Set2Part0.zip, directly or in one subfolder>

Downloads are checked against :data:`~ipslib.data.traffic_annotations.KNOWN_MD5`: the annotation files
always (their published md5 sums are known), each image archive (``Set1Part0.zip``, ``Set2Part0.zip``)
when its entry holds a digest. An archive whose entry is None is installed with a warning that gives its
md5; recording that value as its ``KNOWN_MD5`` entry checks every later download against it. Every zip
member's CRC is verified on extraction either way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

from ipslib.config.options import TrainSet, choices
from ipslib.data.traffic_annotations import ANNOTATIONS, KNOWN_MD5, Entry, read_annotations
from ipslib.system.errors import DataError
from ipslib.system.files import atomic_write_chunks, data_root, file_md5

__all__ = ["fetch_traffic", "default_root", "resolve_root", "load_set", "check_archive", "BASE_URL", "SETS"]

BASE_URL = "https://www.cvl.isy.liu.se/research/trafficSigns/swedishSignsSummer/"
SETS = choices(TrainSet)
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def default_root() -> Path:
    """``$IPSLIB_DATA/traffic_signs``; ``IPSLIB_DATA`` defaults to ``~/.cache/ipslib`` (:func:`data_root`)."""
    return data_root() / "traffic_signs"


def resolve_root(root: str | os.PathLike | None) -> Path:
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


def load_set(set_dir: Path, set_name: str, *, check_images: bool) -> tuple[list[Entry], dict[str, Path]]:
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
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.namelist():
                target = (scratch / member).resolve()
                if not target.is_relative_to(scratch.resolve()):
                    raise DataError(f"{archive}: unsafe member path {member!r}")
            zipped.extractall(scratch)  # checks every member's CRC
    except (zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{archive.name}: not a valid zip archive ({err}); the download is damaged") from None
    children = [p for p in scratch.iterdir() if not p.name.startswith("__MACOSX")]
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return scratch


def check_archive(archive: Path, url: str) -> None:
    """Compare the archive's md5 with its :data:`KNOWN_MD5` entry: a mismatch is a DataError; an unknown
    value (None) a warning that gives the digest to record there."""
    digest, known = file_md5(archive), KNOWN_MD5.get(archive.name)
    if known is None:
        warnings.warn(
            f"{url}: no published md5 is known for {archive.name}, so only its zip CRCs are checked; its md5 is "
            f"{digest}: record it as KNOWN_MD5[{archive.name!r}] in ipslib/data/traffic_annotations.py to check "
            "later downloads against it",
            stacklevel=3,
        )
    elif digest != known:
        raise DataError(f"{url}: md5 {digest}, expected {known} (KNOWN_MD5[{archive.name!r}]); the download is damaged")


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
            raise DataError(
                f"{BASE_URL}{set_name}/{ANNOTATIONS}: md5 {digest}, expected {KNOWN_MD5[set_name]}; "
                f"the published file changed. {_manual_help(root)}"
            )
        check_archive(archive, f"{BASE_URL}{set_name}/{archive.name}")
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
    root = resolve_root(root)
    for set_name in SETS:
        if not (root / set_name / ANNOTATIONS).is_file():
            _install_set(root, set_name)
        load_set(root / set_name, set_name, check_images=True)
    return root
