"""The ``ipslib`` command line. Each command group lives in ``ipslib.cli.<group>`` and exposes
``register(subparsers)``; heavy imports (torch) happen inside the command, so ``--help`` is instant.

Every expected failure ends as one line ``ipslib <command>: error: ...`` on stderr and exit code 2: a bad
config or params file, a damaged record or checkpoint, unreadable data, a busy run directory, a full disk
(:mod:`ipslib.system.errors`) and any other ``OSError`` (missing file, permission, a file where a folder
should be). Anything else is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from ipslib.system.errors import IpslibError

COMMAND_MODULES = ["ipslib.cli.data", "ipslib.cli.train", "ipslib.cli.experiments", "ipslib.cli.predict"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ipslib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", UserWarning)  # every damaged file is named, not only the first
            warnings.showwarning = _show_warning
            return int(args.handler(args) or 0)
    except (IpslibError, OSError) as err:
        print(f"ipslib {args.command}: error: {error_text(err)}", file=sys.stderr)
        return 2


def error_text(err: BaseException) -> str:
    """The one-line message of an expected failure; an ``OSError`` names its file (``path: reason``)."""
    if isinstance(err, OSError) and not isinstance(err, IpslibError) and err.strerror:
        files = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
        return f"{files}: {err.strerror}" if files else err.strerror
    return " ".join(str(err).split()) or type(err).__name__  # one line, however the message was wrapped


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"ipslib: warning: {message}", file=sys.stderr)
