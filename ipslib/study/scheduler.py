"""Where a submitit job array runs: the Slurm options (from a YAML file and command-line flags) and the executor.

Options, all optional (``ipslib run ... --executor submitit --slurm-config FILE``; flags override the file)::

    cluster: auto            # auto: Slurm when sbatch is on the PATH, else submitit's local executor
    partition: gpu           # Slurm partition (also account, qos)
    gpus_per_node: 1         # GPUs per job; each job trains --runs-per-device runs on each of them
    cpus_per_task: 8         # the cores of a job, divided among its runs
    mem_gb: 32               # host memory per job
    time_min: 240            # wall-clock limit per job; a job near it is checkpointed and requeued
    array_parallelism: 32    # jobs of the array at once (the local executor keeps to it as well)
    signal_delay_s: 120      # how long before the limit submitit's preemption signal comes
    max_requeues: 3          # timeouts a job may be requeued after
    gpu_memory_gb: 80        # the GPU size the --runs-per-device budget is checked against at submission
    setup: ["module load cuda"]          # shell lines each job runs first
    additional: {constraint: a100}       # any other sbatch option

The local executor (``cluster: local``) runs the same jobs as subprocesses of this machine, with the same
checkpoint and requeue protocol; it is what the tests use.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ipslib.config import ConfigError, build, load_yaml_mapping
from ipslib.config.options import ClusterKind

__all__ = ["SlurmOptions", "resolve_cluster", "make_executor", "slurm_parameters", "submitit_module"]


@dataclass(frozen=True)
class SlurmOptions:
    """How the jobs of an array are scheduled (module docstring)."""

    cluster: ClusterKind = "auto"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: float = 32.0
    time_min: int = 240
    array_parallelism: int = 32
    signal_delay_s: int = 120
    max_requeues: int = 3
    gpu_memory_gb: float | None = None
    setup: tuple[str, ...] = ()
    additional: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from ipslib.config import check_options

        check_options(self, where="slurm options")
        for name in ("cpus_per_task", "time_min", "array_parallelism"):
            if getattr(self, name) < 1:
                raise ConfigError(f"slurm options: {name}={getattr(self, name)!r} is out of range; it must be >= 1")
        for name in ("gpus_per_node", "signal_delay_s", "max_requeues"):
            if getattr(self, name) < 0:
                raise ConfigError(f"slurm options: {name}={getattr(self, name)!r} is out of range; it must be >= 0")
        if not self.mem_gb > 0 or (self.gpu_memory_gb is not None and not self.gpu_memory_gb > 0):
            raise ConfigError("slurm options: mem_gb and gpu_memory_gb must be > 0")
        if self.signal_delay_s >= 60 * self.time_min:
            raise ConfigError(
                f"slurm options: signal_delay_s={self.signal_delay_s} leaves no time within time_min={self.time_min}"
            )

    @classmethod
    def from_sources(cls, path: str | Path | None = None, **flags: Any) -> SlurmOptions:
        """The options of the YAML file ``path`` (if given), then the ``flags`` that are not None."""
        raw: dict[str, Any] = load_yaml_mapping(path) if path else {}
        where = f"{path}" if path else "slurm options"
        options = build(cls, raw, where=where)
        given = {k: v for k, v in flags.items() if v is not None}
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"slurm options: unknown option(s) {', '.join(unknown)}")
        return replace(options, **given) if given else options


def submitit_module() -> Any:
    """The submitit package, or a ConfigError saying how to install it (the ``cluster`` extra)."""
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            "--executor submitit needs the submitit package: pip install 'ipslib[cluster]' (or pip install submitit)"
        ) from None
    return submitit


def resolve_cluster(kind: ClusterKind) -> str:
    """``slurm`` or ``local``: ``auto`` is Slurm when ``sbatch`` is on the PATH."""
    if kind == "auto":
        return "slurm" if shutil.which("sbatch") else "local"
    if kind == "slurm" and not shutil.which("sbatch"):
        raise ConfigError("cluster: slurm, but sbatch is not on the PATH; use cluster: local to run here")
    return kind


def slurm_parameters(options: SlurmOptions, *, name: str, gpus: int | None = None) -> dict[str, Any]:
    """The SlurmExecutor parameters of ``options`` (None values left out); ``gpus`` overrides ``gpus_per_node``."""
    parameters = {
        "job_name": name,
        "partition": options.partition,
        "account": options.account,
        "qos": options.qos,
        "gpus_per_node": options.gpus_per_node if gpus is None else gpus,
        "cpus_per_task": options.cpus_per_task,
        "mem": f"{options.mem_gb:g}GB",
        "time": options.time_min,
        "array_parallelism": options.array_parallelism,
        "signal_delay_s": options.signal_delay_s,
        "setup": list(options.setup) or None,
        "additional_parameters": dict(options.additional) or None,
        "stderr_to_stdout": True,
    }
    if not parameters["gpus_per_node"]:
        parameters["gpus_per_node"] = None  # a job without GPUs (the notebooks) asks for none
    return {k: v for k, v in parameters.items() if v is not None}


def make_executor(options: SlurmOptions, folder: Path, *, name: str, gpus: int | None = None) -> Any:
    """A SlurmExecutor or LocalExecutor writing its pickles and logs into ``folder``.

    The local executor gets the same time limit and signal delay, so a job there is checkpointed and requeued
    as on Slurm; its jobs see the GPUs ``0..gpus_per_node-1`` (none with ``gpus_per_node: 0``)."""
    submitit = submitit_module()
    folder.mkdir(parents=True, exist_ok=True)
    gpus = options.gpus_per_node if gpus is None else gpus
    if resolve_cluster(options.cluster) == "slurm":
        executor = submitit.SlurmExecutor(folder, max_num_timeout=options.max_requeues)
        executor.update_parameters(**slurm_parameters(options, name=name, gpus=gpus))
        return executor
    executor = submitit.LocalExecutor(folder, max_num_timeout=options.max_requeues)
    local: dict[str, Any] = {"timeout_min": options.time_min, "signal_delay_s": options.signal_delay_s}
    executor.update_parameters(gpus_per_node=gpus, stderr_to_stdout=True, **local)
    if options.setup:
        executor.update_parameters(setup=list(options.setup))
    return executor
