"""A profile's missing runs as a submitit job array: ``ipslib run E|all --profile P --executor submitit``.

One call makes one array from the manifest's missing runs (finished runs are skipped, as by the local runner),
``--runs-per-device K`` runs to a job per GPU it has (:mod:`ipslib.study.packing`: each run its own process,
the job's cores divided among them, the memory budget checked against the job's GPU). A job trains each run
through the local runner's path, :func:`ipslib.study.runner.train_one` (the run's ``params.yaml``, an
``ipslib train --wait`` process, its output appended to ``train.log``), so its records are the same.

**Preemption and time-out** follow submitit's checkpoint protocol: on its signal (``USR2``, ``signal_delay_s``
before the time limit, or when Slurm preempts), :meth:`TrainJob.checkpoint` stops the job's training
processes, which keep the checkpoint of their last finished epoch, and returns a requeue of the same callable;
the requeued job resumes every run from its checkpoint, bit-equal to a run that was never interrupted
(``ipslib.engine.checkpoint``). The training processes block that signal, so only the job reacts to it.

**After the array.** On Slurm the call returns once the array is submitted, with a dependent job
(``afterany``) that executes the notebooks as ``ipslib run E --notebooks-only`` does: each run that has a
``train.log`` but no finished record is recorded as failed with that log. With submitit's local executor the
call waits, records every run's result as the local runner does and executes the notebooks itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipslib.engine.records import is_finished
from ipslib.study import runner
from ipslib.study.experiments import RunSpec
from ipslib.study.packing import Device, Slots, check_budget, local_devices
from ipslib.study.project import ROOT_VARIABLE, project_root
from ipslib.study.scheduler import SlurmOptions, make_executor, resolve_cluster, submitit_module

__all__ = ["TrainJob", "NotebooksJob", "Submission", "missing_runs", "group_runs", "run_array", "submit_slurm"]
__all__ += ["recorded_results", "execute", "submitit_folder"]

POLL_S = 1.0


@dataclass(frozen=True)
class Submission:
    """What :func:`submit_slurm` submitted: the array (None when every run had finished) and the notebooks job."""

    array: str | None
    jobs: int
    runs: int
    notebooks: str


def submitit_folder(profile: str) -> Path:
    """Where the jobs' pickles and logs go: ``_build/submitit/<profile>/`` (not committed)."""
    return project_root() / "_build" / "submitit" / profile


def preemption_signal() -> signal.Signals:
    """The signal submitit checkpoints on (``$SUBMITIT_PREEMPT_SIGNAL``, default USR2)."""
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"))


class TrainJob:
    """One job of the array: train ``specs``, ``runs_per_device`` at once on each GPU the job sees (or the CPU),
    the ``cpus`` cores divided among them; returns :func:`~ipslib.study.runner.train_runs`' entries."""

    def __init__(self, specs: list[RunSpec], *, force: bool = False, runs_per_device: int = 1, cpus: int = 0) -> None:
        self.specs, self.force, self.runs_per_device, self.cpus = list(specs), force, runs_per_device, cpus
        self.root = str(specs[0].root if specs else project_root())
        self._children: list[subprocess.Popen] = []
        self._stopping = False

    def __getstate__(self) -> dict[str, Any]:  # process handles stay in the process that started them
        return {**self.__dict__, "_children": [], "_stopping": False}

    def __call__(self) -> list[dict[str, Any]]:
        os.environ[ROOT_VARIABLE] = self.root
        devices = local_devices()
        check_budget([(s.name, s.config) for s in self.specs], devices, self.runs_per_device)
        slots = Slots.packed(devices, self.runs_per_device, self.cpus or None)
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(self.specs))) as pool:
                train = lambda s: slots.run(lambda env: runner.train_one(s, self.force, env, popen=self._spawn))
                return list(pool.map(train, self.specs))
        finally:
            self._stop()

    def _spawn(self, *args: Any, **kwargs: Any) -> subprocess.Popen:
        """Start a training process with the preemption signal blocked (inherited), so only the job reacts;
        none once the job is stopping (runs still waiting for a slot start in the requeued job)."""
        if self._stopping:
            raise RuntimeError("the job is being checkpointed; this run starts when it is requeued")
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {preemption_signal()})
        try:
            child = subprocess.Popen(*args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        self._children.append(child)
        return child

    def _stop(self) -> None:
        """End the training processes still running (each keeps the checkpoint of its last finished epoch)."""
        running = [c for c in self._children if c.poll() is None]
        for child in running:
            child.terminate()
        for child in running:
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's checkpoint hook: stop the runs and requeue this job, resuming (never forcing) them."""
        self._stopping = True
        self._stop()
        again = TrainJob(self.specs, force=False, runs_per_device=self.runs_per_device, cpus=self.cpus)
        return submitit_module().helpers.DelayedSubmission(again)


class NotebooksJob:
    """The job after the array: ``run_all`` of ``names`` with the runs' results read from their records."""

    def __init__(self, profile: str, names: list[str] | None, root: str) -> None:
        self.profile, self.names, self.root = profile, names, root

    def __call__(self) -> dict[str, Any]:
        os.environ[ROOT_VARIABLE] = self.root
        return runner.run_all(self.profile, names=self.names, trainer=recorded_results)


def missing_runs(specs: list[RunSpec], force: bool = False) -> list[RunSpec]:
    """The distinct runs of ``specs`` without a finished record (all of them with ``force``), in order."""
    unique = list({s.key: s for s in specs}.values())
    return [s for s in unique if force or not is_finished(s.run_dir, s.config)]


def group_runs(specs: list[RunSpec], per_job: int) -> list[list[RunSpec]]:
    per_job = max(1, per_job)
    return [specs[i : i + per_job] for i in range(0, len(specs), per_job)]


def recorded_results(specs: list[RunSpec]) -> list[dict[str, Any]]:
    """Failure entries (as :func:`~ipslib.study.runner.train_runs` gives them) for the runs that were tried,
    their ``train.log`` written, but did not finish; runs never tried stay missing, not failed."""
    entries = []
    for spec in missing_runs(specs):
        log = spec.run_dir / "train.log"
        if log.is_file():
            entries.append(_entry(spec, 1, log, "did not finish; see its log"))
    return entries


def _entry(spec: RunSpec, code: int, log: Path, error: str = "", seconds: float = 0.0) -> dict[str, Any]:
    where = log.relative_to(project_root()) if log.is_relative_to(project_root()) else log
    entry = {"name": spec.name, "key": spec.key, "returncode": code, "seconds": seconds, "log": str(where)}
    return entry | ({"error": error} if error else {})


def job_results(job: Any, group: list[RunSpec]) -> list[dict[str, Any]]:
    """A finished job's entries; a job that failed as a whole gives a failure for each of its unfinished runs
    (the log: the run's ``train.log`` where there is one, else the job's)."""
    try:
        return job.result()
    except Exception as err:  # submitit raises the job's error (budget refused, too many requeues, killed)
        message = (str(err).strip().splitlines() or [type(err).__name__])[-1]
        entries = []
        for spec in group:
            if is_finished(spec.run_dir, spec.config):
                continue
            log = spec.run_dir / "train.log"
            entries.append(_entry(spec, -1, log if log.is_file() else Path(job.paths.stdout), message))
        return entries


def run_array(
    executor: Any,
    groups: list[list[RunSpec]],
    *,
    force: bool = False,
    runs_per_device: int = 1,
    cpus: int = 0,
    parallelism: int = 32,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run the groups as jobs of ``executor`` (the local one), ``parallelism`` at once, and wait for them all."""
    pending, running, results = list(enumerate(groups)), [], [[] for _ in groups]
    while pending or running:
        while pending and len(running) < parallelism:
            index, group = pending.pop(0)
            job = executor.submit(TrainJob(group, force=force, runs_per_device=runs_per_device, cpus=cpus))
            running.append((index, job))
        time.sleep(POLL_S)
        for index, job in [item for item in running if item[1].done()]:
            running.remove((index, job))
            results[index] = job_results(job, groups[index])
            for entry in results[index]:
                state = "ok" if entry["returncode"] == 0 else f"FAILED (see {entry['log']})"
                echo(f"  {entry['name']}: {state} in {entry['seconds']:.0f} s (job {job.job_id})")
    return [entry for entries in results for entry in entries]


def _budget_devices(options: SlurmOptions) -> list[Device]:
    """The devices a submission is checked against: ``gpu_memory_gb`` GPUs, else the GPUs here, else none."""
    if options.gpu_memory_gb:
        size = options.gpu_memory_gb * 1024
        return [Device("cuda", i, f"a {options.gpu_memory_gb:g} GB GPU", size) for i in range(options.gpus_per_node)]
    return [d for d in local_devices() if d.kind == "cuda"]


def _array_plan(specs: list[RunSpec], options: SlurmOptions, force: bool, per_device: int) -> list[list[RunSpec]]:
    todo = missing_runs(specs, force)
    check_budget([(s.name, s.config) for s in todo], _budget_devices(options), per_device)
    return group_runs(todo, per_device * max(1, options.gpus_per_node))


def submit_slurm(
    profile: str,
    names: list[str] | None,
    options: SlurmOptions,
    *,
    force: bool = False,
    runs_per_device: int = 1,
    echo: Callable[[str], None] = print,
) -> Submission:
    """Submit the missing runs of ``names`` (all if None) as one Slurm array and the notebooks job after it."""
    chosen, _ = runner.choose_experiments(profile, names, echo)
    groups = _array_plan([s for e in chosen for s in e.runs(profile)], options, force, runs_per_device)
    folder = submitit_folder(profile)
    executor = make_executor(options, folder, name=f"ipslib-{profile}")
    jobs = []
    if groups:
        with executor.batch():
            for group in groups:
                job = TrainJob(group, force=force, runs_per_device=runs_per_device, cpus=options.cpus_per_task)
                jobs.append(executor.submit(job))
    array = jobs[0].job_id.split("_")[0] if jobs else None
    after = make_executor(options, folder, name=f"ipslib-{profile}-notebooks", gpus=0)
    if array:
        after.update_parameters(dependency=f"afterany:{array}")
    notebooks = after.submit(NotebooksJob(profile, names, str(project_root())))
    echo(
        f"[{profile}] submitted {len(jobs)} job(s) of up to {runs_per_device * max(1, options.gpus_per_node)} "
        f"run(s) as array {array or '-'} and the notebooks as job {notebooks.job_id} after it; logs in {folder}"
    )
    return Submission(array, len(jobs), sum(map(len, groups)), str(notebooks.job_id))


def execute(
    profile: str,
    names: list[str] | None,
    *,
    executor: str = "local",
    jobs: int = 1,
    force: bool = False,
    runs_per_device: int | None = None,
    notebooks_only: bool = False,
    options: SlurmOptions | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any] | Submission:
    """``ipslib run``: train the missing runs where ``executor`` says, then execute the notebooks.

    Returns :func:`~ipslib.study.runner.run_all`'s status per experiment, or, for a Slurm submission, what
    :func:`submit_slurm` submitted."""
    if notebooks_only:
        return runner.run_all(profile, names=names, echo=echo, trainer=recorded_results)
    if executor == "local":
        if not runs_per_device:
            return runner.run_all(profile, names=names, jobs=jobs, force=force, echo=echo)
        devices = local_devices()
        slots = Slots.packed(devices, runs_per_device)

        def packed(specs: list[RunSpec]) -> list[dict[str, Any]]:
            check_budget([(s.name, s.config) for s in missing_runs(specs, force)], devices, runs_per_device)
            return runner.train_runs(specs, force=force, echo=echo, slots=slots)

        return runner.run_all(profile, names=names, force=force, echo=echo, trainer=packed)
    options, per_device = options or SlurmOptions(), runs_per_device or 1
    if resolve_cluster(options.cluster) == "slurm":
        return submit_slurm(profile, names, options, force=force, runs_per_device=per_device, echo=echo)
    local = make_executor(options, submitit_folder(profile), name=f"ipslib-{profile}")

    def array(specs: list[RunSpec]) -> list[dict[str, Any]]:
        groups = _array_plan(specs, options, force, per_device)
        echo(f"[{profile}] {len(groups)} job(s) on submitit's local executor, {options.array_parallelism} at once")
        kwargs = {"force": force, "runs_per_device": per_device, "cpus": options.cpus_per_task}
        return run_array(local, groups, parallelism=options.array_parallelism, echo=echo, **kwargs)

    return runner.run_all(profile, names=names, force=force, echo=echo, trainer=array)
