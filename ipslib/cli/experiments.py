"""``ipslib runs`` (the manifest, finished runs' metrics, one run's history), ``ipslib claims``, ``ipslib cells``,
``ipslib run`` (train + execute notebooks) and ``ipslib book``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ipslib.config import ConfigError
from ipslib.study.experiments import PROFILES


def _profile(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    parser.add_argument("--profile", choices=PROFILES, default=default, help=f"experiment profile (default {default})")


def _runs(args: argparse.Namespace) -> int:
    from ipslib.study.experiments import manifest

    if args.rekey is not None:
        return _rekey(args)
    if args.metrics is not None:
        return _metrics(args)
    if args.history is not None:
        return _history(args)
    if args.out is not None:
        raise ConfigError("--out goes with --history RUN_DIR (the PNG of its curves)")
    rows = manifest(args.profile, args.experiment)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        print(f"{'done' if row['finished'] else 'todo'}  {row['key']}  {row['name']}")
    done = sum(r["finished"] for r in rows)
    print(f"{len(rows)} runs ({len({r['key'] for r in rows})} distinct), {done} finished")
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from ipslib.study import browse

    folders = [Path(f) for f in args.metrics]
    rows = browse.metrics_rows(
        browse.folder_dirs(folders) if folders else browse.manifest_dirs(args.profile, args.experiment)
    )
    print(json.dumps(rows, indent=1) if args.json else browse.metrics_text(rows))
    return 0


def _history(args: argparse.Namespace) -> int:
    from ipslib.study import browse

    if args.out is None:
        print(browse.history_text(args.history))
        return 0
    if args.out.suffix.lower() != ".png":
        raise ConfigError(f"--out {args.out}: name a .png file for the curves")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    browse.history_figure(args.history).savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({args.history / 'history.csv'})")
    return 0


def _rekey(args: argparse.Namespace) -> int:
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


SLURM_FLAGS = ("cluster", "partition", "account", "gpus_per_node", "cpus_per_task", "mem_gb", "time_min")
SLURM_FLAGS += ("array_parallelism", "gpu_memory_gb")  # the --executor submitit flags (scheduler.SlurmOptions)


def _run(args: argparse.Namespace) -> int:
    from ipslib.study import cluster
    from ipslib.study.scheduler import SlurmOptions

    names = None if args.experiment == "all" else [args.experiment]
    if args.runs_per_device is not None and args.jobs != 1:
        raise ConfigError("--jobs and --runs-per-device both set how many runs train at once; give one of them")
    flags = {k: getattr(args, k) for k in SLURM_FLAGS}
    if args.executor != "submitit" and (args.slurm_config or any(v is not None for v in flags.values())):
        raise ConfigError("--slurm-config and the Slurm options go with --executor submitit")
    options = SlurmOptions.from_sources(args.slurm_config, **flags) if args.executor == "submitit" else None
    how = {k: getattr(args, k) for k in ("executor", "jobs", "force", "runs_per_device", "notebooks_only")}
    try:
        status = cluster.execute(args.profile, names, options=options, **how)
    except KeyError as err:
        raise ConfigError(str(err.args[0])) from None
    if isinstance(status, cluster.Submission):  # on Slurm: the notebooks job runs after the array
        return 0
    failed = [name for name, entry in status.items() if entry["failed"] or entry["status"] != "ok"]
    if failed:
        print(
            f"ipslib run: failed: {', '.join(failed)} (details in outputs/{args.profile}/status.json)", file=sys.stderr
        )
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
        print(f"ipslib book: error: {err}", file=sys.stderr)
        return 1
    return 0


def _executor_options(run: argparse.ArgumentParser) -> None:
    from ipslib.config import choices
    from ipslib.config.options import ClusterKind, Executor

    run.add_argument(
        "--executor",
        choices=choices(Executor),
        default="local",
        help="local: a process pool here (default); submitit: a job array, on Slurm or with submitit's local executor",
    )
    run.add_argument(
        "--runs-per-device",
        type=int,
        metavar="K",
        help="K runs at once on each GPU (or K on the CPU, the cores divided), each its own process; refused when "
        "a run's estimated memory exceeds 1/K of its GPU",
    )
    run.add_argument(
        "--notebooks-only",
        action="store_true",
        help="train nothing: execute the notebooks, recording runs tried but unfinished as failed with their log "
        "(what the job after a Slurm array runs)",
    )
    slurm = run.add_argument_group("submitit executor", "options from --slurm-config FILE.yaml; flags override it")
    slurm.add_argument("--slurm-config", type=Path, metavar="YAML", help="a mapping of the options below")
    slurm.add_argument("--cluster", choices=choices(ClusterKind), help="auto (default): Slurm if sbatch is here")
    slurm.add_argument("--partition", help="Slurm partition")
    slurm.add_argument("--account", help="Slurm account")
    slurm.add_argument("--gpus-per-node", type=int, metavar="G", help="GPUs per job (default 1)")
    slurm.add_argument("--cpus-per-task", type=int, metavar="C", help="cores per job (default 8)")
    slurm.add_argument("--mem-gb", type=float, metavar="GB", help="host memory per job (default 32)")
    slurm.add_argument("--time-min", type=int, metavar="MIN", help="time limit per job; requeued near it (240)")
    slurm.add_argument("--array-parallelism", type=int, metavar="N", help="jobs of the array at once (32)")
    slurm.add_argument("--gpu-memory-gb", type=float, metavar="GB", help="GPU size for the --runs-per-device check")


def register(sub: argparse._SubParsersAction) -> None:
    _register_runs(sub)
    _register_study(sub)


def _register_runs(sub: argparse._SubParsersAction) -> None:
    runs = sub.add_parser(
        "runs",
        help="list a profile's runs; --metrics: finished runs' accuracy, time, memory; --history: one run's epochs",
        description="List the runs of a profile's experiments (done/todo, config key, name), or browse run records: "
        "--metrics tabulates finished runs, --history shows one run's per-epoch history (history.csv).",
    )
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
    runs.add_argument(
        "--metrics",
        nargs="*",
        metavar="FOLDER",
        help="finished runs of the profile (or of these run directories / folders of them): last and best test "
        "accuracy per task, minutes, peak memory",
    )
    runs.add_argument(
        "--history", type=Path, metavar="RUN_DIR", help="one run's per-epoch losses and accuracies (history.csv)"
    )
    runs.add_argument("--out", type=Path, metavar="PNG", help="with --history: draw the curves into this PNG")
    runs.set_defaults(handler=_runs)


def _register_study(sub: argparse._SubParsersAction) -> None:
    claims = sub.add_parser(
        "claims",
        help="test every claim of the dissertation on a profile's run records",
        description="Test every claim of the dissertation on a profile's run records (verdict per claim).",
    )
    _profile(claims)
    claims.add_argument("--experiment", help="only this experiment's claims")
    claims.add_argument("--json", action="store_true", help="per claim and task: arms, effect, 95 %% interval, verdict")
    claims.set_defaults(handler=_claims)

    run = sub.add_parser(
        "run",
        help="train the missing runs of an experiment and execute its notebook",
        description="Train the missing runs of an experiment (or all) and execute its notebook into "
        "outputs/<profile>/notebooks/.",
    )
    run.add_argument("experiment", help="a params/<name>.yaml name, or 'all'")
    _profile(run)
    run.add_argument("--jobs", type=int, default=1, help="runs trained in parallel (threads are shared)")
    run.add_argument("--force", action="store_true", help="retrain runs that already have results")
    _executor_options(run)
    run.set_defaults(handler=_run)

    cells = sub.add_parser(
        "cells",
        help="every printed cell of the dissertation: compared with our runs or why not",
        description="Every printed cell of the dissertation's tables: compared with our runs, or why not.",
    )
    _profile(cells)
    cells.add_argument("--experiment", help="only the cells of this experiment's page")
    cells.add_argument("--json", action="store_true", help="one object per cell: status, settings, run keys, reason")
    cells.set_defaults(handler=_cells)

    book = sub.add_parser(
        "book",
        help="run what is missing for a profile, then build the HTML book",
        description="Train the missing runs of a profile, execute stale notebooks, then build the HTML book.",
    )
    _profile(book)
    book.add_argument("--jobs", type=int, default=1)
    book.add_argument("--force", action="store_true", help="retrain every run and re-execute every notebook")
    book.add_argument("--no-run", action="store_true", help="only build from the outputs that exist")
    book.set_defaults(handler=_book)
