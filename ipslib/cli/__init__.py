"""The ``ipslib`` command line. Each command group lives in ``ipslib.cli.<group>`` and exposes
``register(subparsers)``; heavy imports (torch) happen inside the command, so ``--help`` is instant."""

from __future__ import annotations

import argparse
import importlib
import sys

from ipslib.config import ConfigError

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
        return int(args.handler(args) or 0)
    except (ConfigError, FileNotFoundError) as err:
        print(f"ipslib {args.command}: error: {err}", file=sys.stderr)
        return 2
