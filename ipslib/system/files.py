"""Files written whole or not at all, their md5 digests, and the data folder.

Every writer goes through :func:`atomic_write_chunks`: the data goes to a new temporary file in the target's
directory (so the final rename stays on one file system), created with the mode a plain ``open`` gives
(``0o666`` less the umask, applied by the kernel, so no process-wide ``os.umask`` call is needed), flushed
and fsynced, then moved over the target with ``os.replace``. A reader sees the old file or the new one,
never a half-written one, and on any error (also ``KeyboardInterrupt``) the temporary file is removed and
an existing target is left as it was. A full disk raises :class:`~ipslib.system.errors.DiskFull` naming the
file, the space it needs (where known) and the space free; a kill leaves at most a ``.<name>.<random>.tmp``
file, which :func:`remove_stale_temps` clears on the next start.

:func:`exclusive_lock` serialises processes: one holder at a time per lock file (``fcntl.flock``), the holder's
PID written inside so that a refused process can name it; the kernel drops the lock of a process that dies,
so a lock left by a dead process is simply taken over.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ipslib.system.errors import DiskFull, LockHeld

__all__ = [
    "atomic_write_chunks",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "file_md5",
    "data_root",
    "DATA_ENV",
    "exclusive_lock",
    "remove_stale_temps",
    "human_size",
]

DATA_ENV = "IPSLIB_DATA"
"""Environment variable naming the data folder (default ``~/.cache/ipslib``)."""
_DEFAULT_DATA = "~/.cache/ipslib"
_TEMP_ATTEMPTS = 100
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, empty hidden file beside ``path`` (``.<name>.<random>.tmp``) opened for writing."""
    for _ in range(_TEMP_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, _OPEN_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: could not create a temporary file for {path.name} (all names taken)")


def atomic_write_chunks(path: str | os.PathLike, chunks: Iterable[bytes], *, size: int | None = None) -> Path:
    """Write the byte chunks one after another to ``path``, atomically (see the module docstring).

    The chunks are consumed once, as they come, so a download or an archive member can be streamed to disk
    without holding it in memory. Missing parent folders are created.

    Args:
        path: the file to create or replace.
        chunks: bytes-like pieces, e.g. ``iter(lambda: response.read(1 << 20), b"")``.
        size: the total number of bytes, when known (named in the message of a full disk).
    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    Raises:
        DiskFull: no space left (the target is untouched).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    written = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                written += handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in _NO_SPACE:
            raise _disk_full(path, written, size) from None
        raise
    return path


def _disk_full(path: Path, written: int, size: int | None) -> DiskFull:
    try:
        free = f"{human_size(shutil.disk_usage(path.parent).free)} free"
    except OSError:
        free = "free space unknown"
    need = f"it needs {human_size(size)}" if size is not None else f"it needed more than {human_size(written)}"
    return DiskFull(f"{path}: no space left on the device ({need}; {free} in {path.parent})", str(path))


def human_size(n_bytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"`` (binary units, one decimal)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n_bytes) < 1024 or unit == "TiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    return atomic_write_chunks(path, (data,), size=len(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(
    path: str | os.PathLike, obj: Any, *, default: Callable[[Any], Any] | None = None, strict: bool = False
) -> Path:
    """Write ``obj`` as indented JSON (keys in insertion order, a final newline) to ``path`` atomically.

    Args:
        path: the file to create or replace.
        obj: anything :func:`json.dumps` accepts; the target is untouched when it does not.
        default: called for objects JSON cannot encode (e.g. ``str``), as in :func:`json.dumps`.
        strict: refuse NaN and infinities (ValueError) instead of writing the non-JSON ``NaN``/``Infinity``.
    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    text = json.dumps(obj, indent=2, sort_keys=False, default=default, allow_nan=not strict)
    return atomic_write_text(path, text + "\n")


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


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files (``.<name>.<random>.tmp``) that killed writers left in ``folder``.

    Call it only while no other process writes there (e.g. under the folder's :func:`exclusive_lock`).
    Returns the files removed.
    """
    folder = Path(folder)
    stale = (
        [p for p in folder.glob(".*.tmp") if _TEMP_NAME.fullmatch(p.name) and p.is_file()] if folder.is_dir() else []
    )
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, *, wait: bool = True, what: str = "") -> Iterator[int | None]:
    """Hold the lock file ``path`` for the ``with`` block: one process at a time (Linux/macOS ``flock``).

    The holder's PID is written into the file; on leaving, the file is removed. A lock left behind by a
    process that died is taken over (the kernel released it); the context value is that dead process's PID,
    or None.

    Args:
        wait: block until the lock is free; with False a held lock raises at once.
        what: what the lock protects, for the message (default: the lock file's folder).
    Raises:
        LockHeld: ``wait=False`` and a living process holds it (the message names its PID).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, wait, what or str(path.parent))
    try:
        previous = _read_pid(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield previous
    finally:
        path.unlink(missing_ok=True)  # before unlocking: a waiter then finds the file gone and opens a new one
        os.close(fd)


def _acquire(path: Path, wait: bool, what: str) -> int:
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            holder = f"process {pid}" if pid is not None else "another process"
            raise LockHeld(f"{what} is in use by {holder} (lock file {path}); wait for it to end", pid) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:  # else the previous holder removed the file after we opened it: lock the new one
            return fd
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
