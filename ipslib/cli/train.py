"""``ipslib train PARAMS.yaml [--set key=value ...] --out RUN_DIR``: train one configuration.

The run directory receives ``config.yaml``, ``history.csv``, ``metrics.json`` and ``checkpoint.pt``
(see :mod:`ipslib.engine.records`). Rerunning the same command resumes an interrupted run and skips a
finished one; a directory made with another configuration is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from ipslib.config import ConfigError, RunConfig, load_yaml_mapping, yaml_number

__all__ = ["register", "parse_sets", "load_config", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one configuration into a run directory",
        description="Train one configuration into a run directory (resumable).",
    )
    parser.add_argument("params", type=Path, help="params YAML: a mapping of flat config keys")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (VALUE is parsed as YAML); repeatable",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run directory")
    parser.add_argument("--force", action="store_true", help="discard a previous run in RUN_DIR and retrain")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    parser.add_argument(
        "--stop-after-epoch", type=int, default=None, metavar="N", help="stop after epoch N (the run stays resumable)"
    )
    parser.add_argument(
        "--wait", action="store_true", help="if another process trains in RUN_DIR, wait for it instead of failing"
    )
    parser.set_defaults(handler=run)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["lr=0.001", "shuffle=false"]`` -> ``{"lr": 0.001, "shuffle": False}`` (values parsed as YAML)."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {key}: value {text!r} is not valid YAML ({err})") from None
        overrides[key] = yaml_number(value)  # YAML 1.1 reads 3e-4 (no dot) as a string
    return overrides


def load_config(params: Path, sets: list[str]) -> RunConfig:
    """The params file with the ``--set`` overrides applied; errors name the offending key.

    An empty params file is refused: it would silently train every default (a 1500 x 1500 canvas for minutes).
    """
    overrides = parse_sets(sets)
    base = load_yaml_mapping(params)
    if not base:
        raise ConfigError(
            f"{params}: the params file sets no keys; write the settings to train (at least `dataset: "
            "megapixel_mnist` to train every default, a 1500 x 1500 canvas), e.g. params/examples/mnist_smoke.yaml"
        )
    where = f"{params}" + (f" with --set {', '.join(overrides)}" if overrides else "")
    return RunConfig.from_flat({**base, **overrides}, where=where)


def run(args: argparse.Namespace) -> int:
    from ipslib.engine import training as engine

    cfg = load_config(args.params, args.sets)
    say = (lambda message: None) if args.quiet else print
    metrics = engine.train(
        cfg,
        args.out,
        progress=False if args.quiet else None,
        force=args.force,
        log=say,
        stop_after_epoch=args.stop_after_epoch,
        wait=args.wait,
    )
    if not args.quiet and metrics.get("last"):
        test = metrics["last"]["test"]
        accs = ", ".join(f"{task} {v['accuracy']:.3f}" for task, v in test.items() if v["accuracy"] is not None)
        state = "finished" if metrics.get("finished") else f"stopped after epoch {metrics['last']['epoch']}"
        print(f"{args.out}: {state}; last-epoch test accuracy: {accs}")
    return 0
