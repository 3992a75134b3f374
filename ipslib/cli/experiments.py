"""``ipslib runs`` (the manifest), ``ipslib run`` (train + execute notebooks) and ``ipslib book``."""

from __future__ import annotations

import argparse
import json

from ipslib.study.experiments import PROFILES


def _profile(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    parser.add_argument("--profile", choices=PROFILES, default=default, help=f"experiment profile (default {default})")


def _runs(args: argparse.Namespace) -> int:
    from ipslib.study.experiments import manifest

    if args.rekey is not None:
        return _rekey(args)
    rows = manifest(args.profile, args.experiment)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        print(f"{'done' if row['finished'] else 'todo'}  {row['key']}  {row['name']}")
    done = sum(r["finished"] for r in rows)
    print(f"{len(rows)} runs ({len({r['key'] for r in rows})} distinct), {done} finished")
    return 0


def _rekey(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ipslib.study.status import rekey_profile

    changed = rekey_profile(args.profile, [Path(f) for f in args.rekey] or None)
    for r in changed:
        print(f"{r.old_dir} -> {r.new_dir.name}" if r.new_dir != r.old_dir else f"{r.old_dir}: key {r.new_key}")
    print(f"{len(changed)} run(s) rekeyed")
    return 0


def _claims(args: argparse.Namespace) -> int:
    from ipslib.study.ledger import ledger

    records = ledger(args.profile)
    if args.experiment:
        records = [r for r in records if r["experiment"] == args.experiment]
    if args.json:
        print(json.dumps(records, indent=1))
        return 0
    for r in records:
        print(f"{r['verdict']:<17} {r['experiment']}: {r['text']}")
    counts = {v: sum(r["verdict"] == v for r in records) for v in dict.fromkeys(r["verdict"] for r in records)}
    print(f"{len(records)} claims: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
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


def _cells(args: argparse.Namespace) -> int:
    from collections import Counter

    from ipslib.study.cells import profile_cells

    cells = profile_cells(args.profile, args.experiment)  # a bad params file or name: ConfigError, reported by main
    if args.json:
        print(json.dumps([cell.to_dict() for cell in cells], indent=1, default=str))
        return 0
    for cell in cells:
        print(f"{cell.status:<17} {cell.page:<18} {cell.table} | {cell.row_labels} | {cell.column} = {cell.value}")
        print(f"{'':<17} {cell.setting_text}: {cell.reason or ', '.join(cell.run_keys)}")
    counts = Counter(cell.reason or cell.status for cell in cells)
    print(f"{len(cells)} cells: " + "; ".join(f"{n} {what}" for what, n in counts.most_common()))
    return 0


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
    runs.add_argument(
        "--rekey",
        nargs="*",
        metavar="FOLDER",
        help="migrate run records to the current config keys: the profile's runs (or these folders of run "
        "directories); directories named by a key are renamed",
    )
    runs.set_defaults(handler=_runs)

    claims = sub.add_parser("claims", help="test every claim of the dissertation on a profile's run records")
    _profile(claims)
    claims.add_argument("--experiment", help="only this experiment's claims")
    claims.add_argument("--json", action="store_true", help="per claim and task: arms, effect, 95 %% interval, verdict")
    claims.set_defaults(handler=_claims)

    run = sub.add_parser("run", help="train the missing runs of an experiment and execute its notebook")
    run.add_argument("experiment", help="a params/<name>.yaml name, or 'all'")
    _profile(run)
    run.add_argument("--jobs", type=int, default=1, help="runs trained in parallel (threads are shared)")
    run.add_argument("--force", action="store_true", help="retrain runs that already have results")
    run.set_defaults(handler=_run)

    cells = sub.add_parser("cells", help="every printed cell of the dissertation: compared with our runs or why not")
    _profile(cells)
    cells.add_argument("--experiment", help="only the cells of this experiment's page")
    cells.add_argument("--json", action="store_true", help="one object per cell: status, settings, run keys, reason")
    cells.set_defaults(handler=_cells)

    book = sub.add_parser("book", help="run what is missing for a profile, then build the HTML book")
    _profile(book)
    book.add_argument("--jobs", type=int, default=1)
    book.add_argument("--force", action="store_true", help="retrain every run and re-execute every notebook")
    book.add_argument("--no-run", action="store_true", help="only build from the outputs that exist")
    book.set_defaults(handler=_book)
