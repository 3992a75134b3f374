"""Several runs per device: the slots a profile's runs train in, and the memory each run needs.

``ipslib run --runs-per-device K`` trains K runs at once on each GPU, each in its own ``ipslib train`` process
pinned to its GPU (``CUDA_VISIBLE_DEVICES``), or K at once on the CPU. The cores are divided among the runs
at once (``OMP_NUM_THREADS`` for configs with ``threads: 0``, torch's choice; a config's own ``threads`` is part
of its key and stays as it is). Before a run starts, every run's estimated peak memory (:func:`run_memory_mb`)
is checked against its share of its GPU, total memory / K (:func:`check_budget`): a packing that would not fit
is refused with the run, its estimate and the largest K that fits.

The estimate is :func:`ipslib.config.memory.pass_memory_mb` of the larger of the two passes of a step (the
gradient pass over B·M selected patches, or B·N for ``selection: all``, or the B downsampled images; the
no-gradient selection over ``sub_batch_size``·(M + I) patches), times :data:`HEADROOM`, plus the
:data:`CONTEXT_MB` every CUDA process holds outside torch's allocator. At the dissertation's 1500² setting
(B = 16, M = I = 100, two ResNet-18 stages) that is 1,481 MiB of activations, 1,851 MiB with headroom, against
the author's logged peak of 1.84 GB (1,755 MiB), and 2,451 MiB with the context.
"""

from __future__ import annotations

import math
import os
import queue
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from ipslib.config import ConfigError, RunConfig
from ipslib.config.memory import pass_memory_mb

__all__ = ["HEADROOM", "CONTEXT_MB", "Device", "Slots", "run_memory_mb", "local_devices", "check_budget", "cpu_count"]

HEADROOM = 1.25
"""Allocator fragmentation, weights, optimiser state and the workspaces that the activation estimate leaves out."""
CONTEXT_MB = 600.0
"""The CUDA context, cuDNN and cuBLAS handles of one process: device memory outside torch's peak statistics."""

T = TypeVar("T")


@dataclass(frozen=True)
class Device:
    """One device runs are packed onto: a GPU (``index`` as CUDA numbers it here) or the CPU."""

    kind: str  # "cuda" or "cpu"
    index: int | None
    name: str
    memory_mb: float


def cpu_count() -> int:
    """The cores this process may run on (a Slurm allocation or ``taskset`` narrows them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def local_devices() -> list[Device]:
    """The GPUs visible here, or the CPU alone when there is none."""
    import torch

    if not torch.cuda.is_available():
        return [Device("cpu", None, "cpu", 0.0)]
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append(Device("cuda", index, props.name, props.total_memory / 2**20))
    return devices


def run_memory_mb(cfg: RunConfig) -> float:
    """Estimated peak device memory of one training process of ``cfg``, in MiB (module docstring)."""
    ips, train, encoder = cfg.ips, cfg.train, cfg.encoder
    batch = train.batch_size
    common = {"in_channels": cfg.in_channels}
    if ips.architecture == "downsampled":
        passes = [pass_memory_mb(encoder, side=ips.downsample_size, n_inputs=batch, gradients=True, **common)]
    else:
        kept = cfg.n_patches if ips.selection == "all" else ips.memory_size
        chunk = (train.sub_batch_size or batch) * min(ips.memory_size + ips.iter_size, cfg.n_patches)
        passes = [
            pass_memory_mb(encoder, side=ips.patch_size, n_inputs=batch * kept, gradients=True, **common),
            pass_memory_mb(encoder, side=ips.patch_size, n_inputs=chunk, gradients=False, **common),
        ]
    return HEADROOM * max(passes) + CONTEXT_MB


def check_budget(configs: Iterable[tuple[str, RunConfig]], devices: list[Device], per_device: int) -> None:
    """Refuse ``per_device`` runs on each GPU of ``devices`` when a run's estimate exceeds its share.

    Args:
        configs: (name, config) of the runs to pack.
        devices: where they go; only GPUs are checked (a CPU's runs share its memory like any processes).
        per_device: K, the runs at once per device.
    Raises:
        ConfigError: naming the largest run, its estimate, the share and the largest K that would fit.
    """
    if per_device < 1:
        raise ConfigError(f"--runs-per-device {per_device}: give a number >= 1")
    gpus = [d for d in devices if d.kind == "cuda"]
    estimates = [(run_memory_mb(cfg), name) for name, cfg in configs]
    if not gpus or not estimates:
        return
    need, name = max(estimates)
    smallest = min(gpus, key=lambda d: d.memory_mb)
    share = smallest.memory_mb / per_device
    if need > share:
        fits = math.floor(smallest.memory_mb / need)
        hint = f"use --runs-per-device {fits} or fewer" if fits >= 1 else "no packing fits; it needs a larger GPU"
        raise ConfigError(
            f"--runs-per-device {per_device}: run {name} needs about {need:,.0f} MiB of GPU memory (estimated "
            f"peak with {HEADROOM:g}x headroom, plus {CONTEXT_MB:,.0f} MiB of CUDA context), but {per_device} "
            f"runs on {smallest.name} ({smallest.memory_mb:,.0f} MiB) get {share:,.0f} MiB each; {hint}"
        )


class Slots:
    """Where the runs that train at once go: one environment per slot (the variables its process gets).

    :meth:`run` takes a free slot, calls the function with its environment and frees the slot again, so at
    most one process runs per slot however long each run takes."""

    def __init__(self, envs: list[dict[str, str]], label: str) -> None:
        if not envs:
            raise ValueError("Slots needs at least one slot")
        self.envs, self.label = envs, label
        self._free: queue.Queue[dict[str, str]] = queue.Queue()
        for env in envs:
            self._free.put(env)

    @property
    def size(self) -> int:
        return len(self.envs)

    def run(self, fn: Callable[[dict[str, str]], T]) -> T:
        env = self._free.get()
        try:
            return fn(env)
        finally:
            self._free.put(env)

    @classmethod
    def plain(cls, jobs: int) -> Slots:
        """``jobs`` slots that change nothing in the environment (``ipslib run --jobs N``)."""
        return cls([{} for _ in range(max(1, jobs))], f"{max(1, jobs)} job(s)")

    @classmethod
    def packed(cls, devices: list[Device], per_device: int, cpus: int | None = None) -> Slots:
        """``per_device`` slots on each device, GPUs taken in turn, the ``cpus`` cores divided among all slots."""
        if per_device < 1:
            raise ConfigError(f"--runs-per-device {per_device}: give a number >= 1")
        total = per_device * len(devices)
        threads = str(max(1, (cpus or cpu_count()) // total))
        envs: list[dict[str, Any]] = []
        for _ in range(per_device):
            for device in devices:
                env = {"OMP_NUM_THREADS": threads}
                if device.kind == "cuda":
                    env["CUDA_VISIBLE_DEVICES"] = visible_id(device.index)
                envs.append(env)
        where = ", ".join(sorted({d.name for d in devices}))
        return cls(envs, f"{per_device} run(s) per device on {len(devices)} ({where}), {threads} thread(s) each")


def visible_id(index: int | None) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` entry of CUDA device ``index`` as numbered in this process (within a
    ``CUDA_VISIBLE_DEVICES`` this process was given, e.g. by Slurm)."""
    given = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    index = index or 0
    return given[index] if index < len(given) else str(index)
