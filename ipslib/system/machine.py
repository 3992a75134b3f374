"""The machine a measurement ran on, and the peak memory it took.

torch, torchvision and psutil are imported inside the functions, so importing this module is cheap and
works without them; :func:`machine_info` reports a missing package as ``None``.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["peak_memory_mb", "machine_info", "code_version", "MACHINE_KEYS"]

MACHINE_KEYS = (
    "python",
    "platform",
    "processor",
    "cpu_model",
    "cpu_count",
    "memory_gib",
    "torch",
    "torchvision",
    "numpy",
    "cuda",
    "gpu",
)
"""The keys of :func:`machine_info`, in order."""


def peak_memory_mb(device: torch.device | str | None = None) -> float:
    """Peak memory in MiB: the CUDA allocator's peak on a CUDA device, else the process's peak resident set.

    Args:
        device: a CUDA device reads ``torch.cuda.max_memory_allocated`` (since the last
            ``torch.cuda.reset_peak_memory_stats``); ``None`` or any other device reads the lifetime peak
            resident set size of this process (``ru_maxrss``), which cannot be reset.
    """
    if device is not None:
        import torch

        device = torch.device(device)
        if device.type == "cuda":
            return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def machine_info() -> dict[str, Any]:
    """Hardware and software of this process, as plain JSON-ready values (keys: :data:`MACHINE_KEYS`).

    Returns:
        ``python``, ``platform`` (``platform.platform()``), ``processor`` (``platform.processor()`` or the
        machine type), ``cpu_model`` (the CPU's marketing name where the OS tells it, else ``processor``),
        ``cpu_count`` (``os.cpu_count()``), ``memory_gib`` (total RAM, 1 decimal; ``None`` without psutil),
        the ``torch``/``torchvision``/``numpy`` versions and torch's ``cuda`` version (``None`` when not
        installed or built without CUDA), and ``gpu``, the name of CUDA device 0 (``None`` when there is none).
    """
    processor = platform.processor() or platform.machine()
    torch = _optional("torch")
    has_gpu = torch is not None and torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": processor,
        "cpu_model": _cpu_model() or processor,
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "torch": _version(torch),
        "torchvision": _version(_optional("torchvision")),
        "numpy": _version(_optional("numpy")),
        "cuda": torch.version.cuda if torch is not None else None,
        "gpu": torch.cuda.get_device_name(0) if has_gpu else None,
    }


def _optional(name: str) -> Any:
    try:
        return import_module(name)
    except ImportError:
        return None


def _version(module: Any) -> str | None:
    return None if module is None else str(module.__version__)


def _cpu_model() -> str | None:
    """``model name`` of /proc/cpuinfo (Linux), ``machdep.cpu.brand_string`` (macOS), else None."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                return value.strip()
    if sys.platform == "darwin":
        import subprocess

        try:
            done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True)
        except OSError:
            return None
        return done.stdout.strip() or None
    return None


def _memory_gib() -> float | None:
    psutil = _optional("psutil")
    return None if psutil is None else round(psutil.virtual_memory().total / 2**30, 1)


def code_version(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The git commit of the code at ``path`` (default: this package's folder) and whether the work tree has
    uncommitted changes: ``{"commit": sha or None, "dirty": bool or None}`` (None outside a git work tree or
    without git)."""
    import subprocess

    folder = Path(path) if path is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {"commit": commit, "dirty": None if status is None else bool(status)}
