"""The ``ipslib`` command line. Each command group lives in ``ipslib.cli.<group>`` and exposes
``register(subparsers)``; heavy imports (torch) happen inside the command, so ``--help`` is instant.

Every expected failure ends as one line ``ipslib <command>: error: ...`` on stderr and exit code 2: a bad
config or params file, a damaged record or checkpoint, unreadable data, a busy run directory, a full disk
(:mod:`ipslib.system.errors`) and any other ``OSError`` (missing file, permission, a file where a folder
should be). Anything else is a bug and keeps its traceback. Exit codes: :data:`EXIT_CODES`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap
import warnings
from pathlib import Path

from ipslib.system.errors import IpslibError

COMMAND_MODULES = [
    "ipslib.cli.data",
    "ipslib.cli.train",
    "ipslib.cli.experiments",
    "ipslib.cli.notebooks",
    "ipslib.cli.predict",
]
DESCRIPTION = (
    "Iterative Patch Selection: train models, classify huge images, and re-run the dissertation's experiments "
    "into a Jupyter Book. `ipslib COMMAND --help` describes each command."
)
EXIT_CODES = {
    0: "success",
    1: "a run, notebook or book build failed (ipslib run, ipslib book); the printed summary names it",
    2: "bad usage or an expected error (bad config or params file, missing or damaged file, busy run directory, "
    "full disk), reported as one line `ipslib COMMAND: error: ...`",
    141: "the output pipe closed early (e.g. `ipslib runs --json | head`); nothing is reported",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ipslib")
    except PackageNotFoundError:  # run from a source tree without installing it
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    lines = [
        textwrap.fill(text, 88, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
        for code, text in EXIT_CODES.items()
    ]
    parser = argparse.ArgumentParser(
        prog="ipslib",
        description=textwrap.fill(DESCRIPTION, 88),
        epilog="exit codes:\n" + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ipslib {_version()}")
    parser.add_argument(
        "--root",
        dest="project_root",
        type=Path,
        metavar="DIR",
        help="the project folder (params/, book/, outputs/); default $IPSLIB_ROOT, else the checkout ipslib is "
        "installed from (pip install -e .)",
    )
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
            if args.project_root is not None:
                _set_root(args.project_root)
            code = int(args.handler(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here rather than at interpreter exit
            return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit-time flush must not fail again
        return 141
    except (IpslibError, OSError) as err:
        print(f"ipslib {args.command}: error: {error_text(err)}", file=sys.stderr)
        return 2


def _set_root(root: Path) -> None:
    """``--root DIR``: checked, then exported, so notebook kernels and training processes use it too."""
    from ipslib.config import ConfigError
    from ipslib.study.project import ROOT_VARIABLE, is_project

    folder = root.expanduser().resolve()
    if not is_project(folder):
        raise ConfigError(f"--root {root}: not an ipslib project (no params/_defaults.yaml there)")
    os.environ[ROOT_VARIABLE] = str(folder)


def error_text(err: BaseException) -> str:
    """The one-line message of an expected failure; an ``OSError`` names its file (``path: reason``)."""
    if isinstance(err, OSError) and not isinstance(err, IpslibError) and err.strerror:
        files = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
        return f"{files}: {err.strerror}" if files else err.strerror
    return " ".join(str(err).split()) or type(err).__name__  # one line, however the message was wrapped


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"ipslib: warning: {message}", file=sys.stderr)
