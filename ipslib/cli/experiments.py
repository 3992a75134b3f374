"""``ipslib runs`` (the manifest), ``ipslib run`` (train + execute notebooks) and ``ipslib book``."""

from __future__ import annotations

import argparse
import json

from ipslib.study.experiments import PROFILES


def _profile(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    parser.add_argument("--profile", choices=PROFILES, default=default, help=f"experiment profile (default {default})")


def _runs(args: argparse.Namespace) -> int:
    from ipslib.study.experiments import manifest

    rows = manifest(args.profile, args.experiment)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        print(f"{'done' if row['finished'] else 'todo'}  {row['key']}  {row['name']}")
    done = sum(r["finished"] for r in rows)
    print(f"{len(rows)} runs ({len({r['key'] for r in rows})} distinct), {done} finished")
    return 0


def _run(args: argparse.Namespace) -> int:
    from ipslib.study.runner import run_all

    names = None if args.experiment == "all" else [args.experiment]
    try:
        status = run_all(args.profile, names=names, jobs=args.jobs, force=args.force)
    except KeyError as err:
        print(f"ipslib run: error: {err.args[0]}")
        return 2
    failed = [name for name, entry in status.items() if entry["failed"] or entry["status"] != "ok"]
    if failed:
        print(f"failed: {', '.join(failed)} (details in outputs/{args.profile}/status.json)")
    return 1 if failed else 0


def _book(args: argparse.Namespace) -> int:
    from ipslib.study.book import build

    try:
        build(args.profile, jobs=args.jobs, force=args.force, run=not args.no_run)
    except RuntimeError as err:
        print(f"ipslib book: error: {err}")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    runs = sub.add_parser("runs", help="print the manifest of runs for a profile")
    _profile(runs)
    runs.add_argument("--experiment", help="only this experiment (a params/<name>.yaml)")
    runs.add_argument("--json", action="store_true", help="machine-readable manifest with resolved configs")
    runs.set_defaults(handler=_runs)

    run = sub.add_parser("run", help="train the missing runs of an experiment and execute its notebook")
    run.add_argument("experiment", help="a params/<name>.yaml name, or 'all'")
    _profile(run)
    run.add_argument("--jobs", type=int, default=1, help="runs trained in parallel (threads are shared)")
    run.add_argument("--force", action="store_true", help="retrain runs that already have results")
    run.set_defaults(handler=_run)

    book = sub.add_parser("book", help="run what is missing for a profile, then build the HTML book")
    _profile(book)
    book.add_argument("--jobs", type=int, default=1)
    book.add_argument("--force", action="store_true", help="retrain every run and re-execute every notebook")
    book.add_argument("--no-run", action="store_true", help="only build from the outputs that exist")
    book.set_defaults(handler=_book)
