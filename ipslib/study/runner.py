"""Execute experiments: train the missing runs of the manifest, then run the experiment's notebook.

Each run trains in its own process (``ipslib train``), so runs can go in parallel (``jobs``), a failed run
cannot take the others down, and its log stays in ``<run_dir>/train.log``. Every run uses its config's own
``threads`` (part of the run key; ``jobs`` only sets how many run at once, never a record's numbers), and waits
for another process that trains the same run directory rather than training it twice. The notebook, read
from its MyST Markdown template ``book/templates/<notebook>.md``, is executed with papermill into
``outputs/<profile>/notebooks/<experiment>.ipynb`` (one process at a time per notebook). What happened is
recorded in ``outputs/<profile>/status.json`` (:mod:`ipslib.study.status`), which the book's execution-status
page reads. :mod:`ipslib.study.packing` places runs on devices; :mod:`ipslib.study.cluster` trains them as a job array.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from ipslib.config import ConfigError
from ipslib.engine.records import is_finished
from ipslib.study.experiments import Experiment, RunSpec, load_experiments
from ipslib.study.packing import Slots
from ipslib.study.project import project_root
from ipslib.study.status import read_status, status_path, update_status
from ipslib.system.files import atomic_write_text, exclusive_lock

__all__ = [
    "fingerprint",
    "train_runs",
    "execute_notebook",
    "run_experiment",
    "run_all",
    "status_path",
    "read_status",
    "notebook_path",
]


def template_path(notebook: str) -> Path:
    """The notebook template ``book/templates/<notebook>.md`` (a MyST Markdown notebook); a missing template
    is an error."""
    path = project_root() / "book" / "templates" / f"{notebook}.md"
    if not path.is_file():
        raise FileNotFoundError(f"notebook template {path} not found (the params file's `notebook:` names it)")
    return path


def notebook_path(profile: str, experiment: str) -> Path:
    return project_root() / "outputs" / profile / "notebooks" / f"{experiment}.ipynb"


NOTEBOOK_PACKAGES = ("ipslib.config", "ipslib.model", "ipslib.data", "ipslib.engine", "ipslib.analysis", "ipslib.study")
"""Packages whose code shapes what a notebook shows (all but the command line and streaming): a change to
any of their files re-executes the notebooks."""
READS_BENCHMARKS = ("performance",)
"""Notebook templates that show ``outputs/benchmarks/*.json``: a new measurement re-executes them."""


def package_files(packages: tuple[str, ...] = NOTEBOOK_PACKAGES) -> dict[str, Path]:
    """Every ``.py`` file of ``packages``, found through importlib (so a moved package is followed, and a
    package that cannot be found is an error rather than a silently unchanged hash)."""
    import importlib.util

    files: dict[str, Path] = {}
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"fingerprint: package {name!r} not found (NOTEBOOK_PACKAGES in {__name__})")
        for folder in map(Path, spec.submodule_search_locations):
            files |= {f"{name}/{p.relative_to(folder).as_posix()}": p for p in sorted(folder.rglob("*.py"))}
    return files


def fingerprint(experiment: Experiment, profile: str) -> str:
    """Hash of everything a notebook's output depends on, to re-execute only stale notebooks: the template,
    the params files, the code of :data:`NOTEBOOK_PACKAGES`, the runs' keys and metrics."""
    root = project_root()
    digest = hashlib.sha256()
    template = template_path(experiment.notebook)
    paths = [template, experiment.path, root / "params" / "_defaults.yaml"]
    if experiment.notebook in READS_BENCHMARKS:
        paths += sorted((root / "outputs" / "benchmarks").glob("*.json"))
    for spec in experiment.runs(profile):
        digest.update(spec.key.encode())
        paths.append(spec.run_dir / "metrics.json")
    for path in paths:
        digest.update(path.read_bytes() if path.is_file() else b"-")
    for name, path in package_files().items():
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def train_one(spec: RunSpec, force: bool, env: dict[str, str] | None = None, popen=None) -> dict[str, Any]:
    """One run in an ``ipslib train`` process (into ``train.log``), ``env`` added; a cluster job passes ``popen``."""
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    params = spec.run_dir / "params.yaml"
    atomic_write_text(params, yaml.safe_dump(spec.config.to_flat(), sort_keys=False))
    command = [sys.executable, "-m", "ipslib.cli", "train", str(params), "--out", str(spec.run_dir), "--quiet"]
    command += ["--wait", *(["--force"] if force else [])]
    threads = spec.config.train.threads
    env = {**os.environ, "TQDM_DISABLE": "1", **(env or {})} | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    start, log_path = time.perf_counter(), spec.run_dir / "train.log"
    with open(log_path, "a") as log:  # appended: another process training this run may be writing it
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command[3:])}\n")
        log.flush()
        how = {"stdout": log, "stderr": subprocess.STDOUT, "env": env, "cwd": project_root()}
        code = subprocess.call(command, **how) if popen is None else popen(command, **how).wait()
    return {
        "name": spec.name,
        "key": spec.key,
        "returncode": code,
        "seconds": time.perf_counter() - start,
        "log": str(log_path.relative_to(project_root())),
    }


def train_runs(
    specs: list[RunSpec], *, jobs: int = 1, force: bool = False, echo: Callable[[str], None] = print, slots=None
) -> list[dict[str, Any]]:
    """Train every run that has no finished record (all of them with ``force``); returns one entry per run.
    ``slots`` (:class:`~ipslib.study.packing.Slots`, default ``jobs`` plain ones): where runs train at once."""
    unique = list({spec.key: spec for spec in specs}.values())
    todo = [s for s in unique if force or not is_finished(s.run_dir, s.config)]
    threads, slots = sorted({s.config.train.threads for s in todo}), slots or Slots.plain(jobs)
    echo(
        f"{len(unique) - len(todo)} of {len(unique)} runs already finished; training {len(todo)} "
        f"with {slots.label}, threads as each config sets ({', '.join(map(str, threads)) or '-'})"
    )
    results = []
    with ThreadPoolExecutor(max_workers=slots.size) as pool:
        for result in pool.map(lambda s: slots.run(lambda env: train_one(s, force, env)), todo):
            state = "ok" if result["returncode"] == 0 else f"FAILED (see {result['log']})"
            echo(f"  {result['name']}: {state} in {result['seconds']:.0f} s")
            results.append(result)
    return results


def _header(experiment: Experiment) -> str:
    lines = [f"# {experiment.title}", ""]
    facts = []
    if experiment.ids:
        facts.append("experiment " + ", ".join(experiment.ids))
    if experiment.dissertation:
        facts.append(f"dissertation {experiment.dissertation}")
    if facts:
        lines += ["*" + "; ".join(facts) + "*", ""]
    if experiment.description:
        lines.append(experiment.description.strip())
    return "\n".join(lines)


def read_template(notebook: str) -> Any:
    """The template as an nbformat v4 notebook, cell ids ``cell-0``, ``cell-1``, ... (stable), no jupytext metadata."""
    import jupytext

    node = jupytext.read(template_path(notebook), fmt="md:myst")
    node.metadata.pop("jupytext", None)
    for i, cell in enumerate(node.cells):
        cell["id"] = f"cell-{i}"
    return node


def prepare_notebook(experiment: Experiment) -> Any:
    """The experiment's notebook template with its title cell replaced by the experiment's header."""
    notebook = read_template(experiment.notebook)
    for cell in notebook.cells:
        if "title" in cell.metadata.get("tags", []):
            cell.source = _header(experiment)
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "title"]
    return notebook


def execute_notebook(experiment: Experiment, profile: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the experiment's notebook with papermill; returns status, duration and output path.

    ``parameters`` default to ``{"experiment": name, "profile": profile}``."""
    import papermill

    template = prepare_notebook(experiment)
    out = notebook_path(profile, experiment.name)
    start = time.perf_counter()
    entry: dict[str, Any] = {"notebook": str(out.relative_to(project_root()))}
    with exclusive_lock(out.with_name(f".{out.name}.lock"), what=str(out)):  # papermill writes it as it goes
        try:
            papermill.execute_notebook(
                template,
                str(out),
                parameters=parameters or {"experiment": experiment.name, "profile": profile},
                kernel_name="python3",
                progress_bar=False,
                cwd=str(project_root()),
            )
            entry["status"] = "ok"
        except Exception as err:  # papermill raises PapermillExecutionError and kernel errors alike
            entry["status"] = "failed"
            entry["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
        if out.is_file():
            _hide_injected_parameters(out)
    entry["seconds"] = round(time.perf_counter() - start, 1)
    return entry


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` so the book does not show it."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    atomic_write_text(path, nbformat.writes(notebook))


def run_experiment(
    experiment: Experiment,
    profile: str,
    *,
    jobs: int = 1,
    force: bool = False,
    echo: Callable[[str], None] = print,
    trained: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train the missing runs of one experiment, execute its notebook and record the status.

    ``trained``: the results of a :func:`train_runs` call that already covered these runs (``run_all``
    trains every experiment's runs in one pool, so that all jobs stay busy); only this experiment's are used."""
    echo(f"[{profile}] {experiment.name}: {experiment.title}")
    specs = experiment.runs(profile)
    if trained is None:
        trained = train_runs(specs, jobs=jobs, force=force, echo=echo)
    else:
        keys = {s.key for s in specs}
        trained = [r for r in trained if r["key"] in keys]
    failed = [r for r in trained if r["returncode"] != 0]
    notebook = execute_notebook(experiment, profile)
    echo(
        f"  notebook {notebook['notebook']}: {notebook['status']} in {notebook['seconds']} s"
        + (f" ({notebook['error']})" if notebook["status"] != "ok" else "")
    )
    entry = {
        "title": experiment.title,
        "runs": len({s.key for s in specs}),
        "finished": sum(is_finished(s.run_dir, s.config) for s in {s.key: s for s in specs}.values()),
        "failed": [{"name": r["name"], "log": r["log"]} for r in failed],
        "train_seconds": {r["key"]: round(r["seconds"], 1) for r in trained if r["returncode"] == 0},
        "fingerprint": fingerprint(experiment, profile),
        **notebook,
    }

    def merged(previous: dict[str, Any]) -> dict[str, Any]:  # read under the lock: earlier runs' times stay
        return {**entry, "train_seconds": {**previous.get("train_seconds", {}), **entry["train_seconds"]}}

    return update_status(profile, experiment.name, merged)


def run_all(
    profile: str,
    *,
    names: list[str] | None = None,
    jobs: int = 1,
    force: bool = False,
    echo: Callable[[str], None] = print,
    trainer: Callable[[list[RunSpec]], list[dict[str, Any]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run every experiment (or ``names``); one experiment's failure never stops the others.

    A malformed params file is reported (``{"status": "failed", "error": ...}`` in the result) and the other
    experiments run; naming it alone raises its ConfigError. ``trainer(specs)`` trains (default :func:`train_runs`)."""
    chosen, skipped = choose_experiments(profile, names, echo)
    echo(f"[{profile}] training the runs of {len(chosen)} experiment(s) in one pool")
    train = trainer or (lambda specs: train_runs(specs, jobs=jobs, force=force, echo=echo))
    trained = train([s for exp in chosen for s in exp.runs(profile)])
    done = {e.name: run_experiment(e, profile, jobs=jobs, force=force, echo=echo, trained=trained) for e in chosen}
    return done | {n: {"status": "failed", "error": m, "failed": []} for n, m in skipped.items()}


def choose_experiments(
    profile: str, names: list[str] | None, echo: Callable[[str], None] = print
) -> tuple[list[Experiment], dict[str, str]]:
    """The experiments ``names`` (all if None) and the broken params files among them (name -> message)."""
    broken: dict[str, str] = {}
    experiments = load_experiments(broken=broken)
    if names and set(names) <= set(broken):
        raise ConfigError("; ".join(broken[n] for n in names))
    unknown = sorted(set(names or []) - set(experiments) - set(broken))
    if unknown:
        raise KeyError(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(experiments)}")
    skipped = {n: m for n, m in broken.items() if not names or n in names}
    for message in skipped.values():
        echo(f"[{profile}] left out (params file broken): {message}")
    return [experiments[n] for n in (names or experiments) if n in experiments], skipped
