"""The expected failures of ipslib: each message names the file or key at fault and what would be valid.

The command line (:func:`ipslib.cli.main`) turns any :class:`IpslibError` (and any ``OSError``) into one line
``ipslib <command>: error: ...`` and exit code 2; anything else is a bug and keeps its traceback. Each class
also derives from the built-in exception a caller would catch without knowing ipslib (``ValueError`` for bad
content, ``OSError`` for a full disk, ``RuntimeError`` for a busy run directory).
"""

from __future__ import annotations

import errno

__all__ = ["IpslibError", "DataError", "RecordError", "CheckpointError", "LockHeld", "DiskFull", "NonFiniteError"]


class IpslibError(Exception):
    """An expected failure (bad input, damaged file, busy folder); the message says what and where."""


class DataError(IpslibError, ValueError):
    """A data file (image, array, annotation, archive) is missing pieces, malformed or out of range."""


class RecordError(IpslibError, ValueError):
    """A run record (``metrics.json``, ``config.yaml``, ``status.json``) cannot be read."""


class CheckpointError(RecordError):
    """A checkpoint cannot be loaded: damaged (content hash mismatch), truncated, or not an ipslib checkpoint."""


class LockHeld(IpslibError, RuntimeError):
    """Another living process holds the lock of a run directory or shared record; the message names its PID."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class DiskFull(IpslibError, OSError):
    """A write ran out of space; the message names the file, the space needed (where known) and the space free."""

    def __init__(self, message: str, filename: str) -> None:
        super().__init__(errno.ENOSPC, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NonFiniteError(IpslibError, FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; the message names the epoch and step."""
