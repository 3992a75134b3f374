"""Where and how a run executes: device choice, seeding, RNG state capture, peak-memory statistics.

``peak_memory_mb`` is :func:`ipslib.system.machine.peak_memory_mb`, re-exported beside its reset.

Nothing here changes a result except the seeds; it is shared by the engine and the benchmarks.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import random
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from ipslib.config import Amp, choices
from ipslib.system.errors import IpslibError
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
    "cpu_has_bf16",
    "Bf16Unavailable",
    "prefetch",
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


class Bf16Unavailable(IpslibError, RuntimeError):
    """``amp: bf16`` was asked for on a device without native bfloat16 arithmetic."""


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX), rather than emulating it."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and check is not None and check())


def autocast(device: torch.device, amp: Amp) -> contextlib.AbstractContextManager:
    """``amp="bf16"``: bfloat16 autocast on ``device``; ``"none"``: a no-op context.

    Under bf16 the convolutions and matrix products run in bfloat16 (float32 accumulation); the model keeps
    selection scores and their top-M in float32 (:meth:`ipslib.model.ips.IPSNet.select`), losses are
    float32. There is no silent fallback: on a CPU without native bfloat16 (no AVX512-BF16 / AMX; torch
    would emulate it, several times slower than float32) or a GPU without it, :class:`Bf16Unavailable`
    is raised, so a config gives the same numbers wherever it runs or does not run at all.
    """
    if amp == "none":
        return contextlib.nullcontext()
    if amp == "bf16":
        if device.type == "cpu" and not cpu_has_bf16():
            raise Bf16Unavailable(
                "amp='bf16' needs a CPU with native bfloat16 (AVX512-BF16 or AMX); this one would emulate it, "
                "slower than float32. Set amp: none (float32)."
            )
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise Bf16Unavailable(f"amp='bf16': {torch.cuda.get_device_name(device)} has no bfloat16; set amp: none")
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


_DONE = object()


def prefetch(batches: Iterable[Any], depth: int = 1) -> Iterator[Any]:
    """The items of ``batches`` in order, the next ``depth`` produced by a background thread meanwhile.

    For a ``DataLoader`` without worker processes: the next batch is generated while the current step
    computes (torch releases the GIL inside its kernels), so generation leaves the critical path wherever a
    core is free. The items and their order are unchanged (results are identical); an exception of the
    producer is raised here, at the item it failed on. Closing the iterator early stops the thread.
    """
    items: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put((_DONE, None))
        except BaseException as err:  # handed to the consumer, raised there
            items.put((_DONE, err))

    thread = threading.Thread(target=produce, daemon=True, name="ipslib-prefetch")
    thread.start()
    try:
        while True:
            item, err = items.get()
            if err is not None:
                raise err
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                items.get_nowait()
        thread.join(timeout=5)
