"""Where and how a run executes: device choice, seeding, RNG state capture, peak-memory statistics.

``peak_memory_mb`` is :func:`ipslib.system.machine.peak_memory_mb`, re-exported beside its reset.

Nothing here changes a result except the seeds; it is shared by the engine and the benchmarks.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ipslib.config import Amp, choices
from ipslib.system.machine import peak_memory_mb

__all__ = [
    "resolve_device",
    "device_name",
    "seed_everything",
    "epoch_seed",
    "get_rng_state",
    "set_rng_state",
    "synchronize",
    "reset_peak_memory",
    "peak_memory_mb",
    "autocast",
]


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> the first CUDA device if there is one, else the CPU; ``cpu``/``cuda``/``cuda:n`` as given."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={spec!r} was asked for but CUDA is not available; use device=auto or cpu")
    return device


def device_name(device: torch.device) -> str:
    """``cpu`` or the GPU's name (as reported in ``metrics.json``)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), numpy's global RNG and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def epoch_seed(train_seed: int, epoch: int) -> int:
    """Seed of the data order of ``epoch``: independent of how many epochs ran before (resumable)."""
    return int(np.random.SeedSequence([train_seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


def get_rng_state() -> dict[str, Any]:
    """All global RNG states as plain data (loadable with ``torch.load(weights_only=True)``)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(obj: Any) -> Any:
    return [_to_lists(v) for v in obj] if isinstance(obj, (tuple, list)) else obj


def _to_tuples(obj: Any) -> Any:
    return tuple(_to_tuples(v) for v in obj) if isinstance(obj, list) else obj


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timings cover it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new CUDA peak; on the CPU the process peak (ru_maxrss) cannot be reset."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def autocast(device: torch.device, amp: Amp) -> contextlib.AbstractContextManager:
    """``amp="bf16"``: bfloat16 autocast on ``device``; ``"none"``: a no-op context."""
    if amp == "none":
        return contextlib.nullcontext()
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ValueError(f"amp={amp!r} is not valid; choose one of {', '.join(map(repr, choices(Amp)))}")


@contextlib.contextmanager
def num_threads(threads: int) -> Iterator[None]:
    """Use ``threads`` CPU threads inside the block (0: leave torch's choice)."""
    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
