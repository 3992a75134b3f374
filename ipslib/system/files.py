"""Files written whole or not at all, their md5 digests, and the data folder.

Every writer goes through :func:`atomic_write_chunks`: the data goes to a new temporary file in the target's
directory (so the final rename stays on one file system), created with the mode a plain ``open`` gives
(``0o666`` less the umask, applied by the kernel, so no process-wide ``os.umask`` call is needed), flushed
and fsynced, then moved over the target with ``os.replace``. A reader sees the old file or the new one,
never a half-written one, and on any error (also ``KeyboardInterrupt``) the temporary file is removed and
an existing target is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "atomic_write_chunks",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "file_md5",
    "data_root",
    "DATA_ENV",
]

DATA_ENV = "IPSLIB_DATA"
"""Environment variable naming the data folder (default ``~/.cache/ipslib``)."""
_DEFAULT_DATA = "~/.cache/ipslib"
_TEMP_ATTEMPTS = 100
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, empty hidden file beside ``path`` (``.<name>.<random>.tmp``) opened for writing."""
    for _ in range(_TEMP_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, _OPEN_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: could not create a temporary file for {path.name} (all names taken)")


def atomic_write_chunks(path: str | os.PathLike, chunks: Iterable[bytes]) -> Path:
    """Write the byte chunks one after another to ``path``, atomically (see the module docstring).

    The chunks are consumed once, as they come, so a download or an archive member can be streamed to disk
    without holding it in memory. Missing parent folders are created.

    Args:
        path: the file to create or replace.
        chunks: bytes-like pieces, e.g. ``iter(lambda: response.read(1 << 20), b"")``.
    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    return atomic_write_chunks(path, (data,))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, default: Callable[[Any], Any] | None = None) -> Path:
    """Write ``obj`` as indented JSON (keys in insertion order, a final newline) to ``path`` atomically.

    Args:
        path: the file to create or replace.
        obj: anything :func:`json.dumps` accepts; the target is untouched when it does not.
        default: called for objects JSON cannot encode (e.g. ``str``), as in :func:`json.dumps`.
    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=default) + "\n")


def file_md5(path: str | os.PathLike | BinaryIO) -> str:
    """The md5 hex digest of a file, read in chunks (never whole).

    Args:
        path: a file path, or a file object already open for binary reading (e.g. a ``gzip.open`` file,
            whose decompressed content is digested; an ``io.BytesIO`` is digested from its buffer).
    Returns:
        32 lowercase hex digits.
    """
    if isinstance(path, (str, os.PathLike)):
        with open(path, "rb") as handle:
            return file_md5(handle)
    return hashlib.file_digest(path, _md5).hexdigest()


def _md5() -> Any:
    return hashlib.md5(usedforsecurity=False)  # a checksum, so FIPS builds allow it


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$IPSLIB_DATA`` if set and not empty, else ``~/.cache/ipslib``.

    ``~`` is expanded. Datasets live in subfolders (``mnist/``, ``traffic_signs/``).
    """
    if root is None or str(root) == "":
        root = os.environ.get(DATA_ENV) or _DEFAULT_DATA
    return Path(root).expanduser()
