"""The cluster section of the "Re-running at paper scale" page: what the paper profile costs on GPUs.

* :func:`cluster_rate`: the time per batch at the author's 1500² efficiency setting (B = 16, N = 900) that the
  estimate uses: the fastest case measured by ``benchmarks/gpu_check.sh`` (``outputs/gpu/gpu_check.json``,
  else ``outputs/benchmarks/gpu_check.json``) with its packing gain, or, where no measurement exists, the
  author's logged 375 ms, labelled as such.
* :func:`cluster_note`: the paper profile's GPU hours at that rate (every run's estimate of
  :func:`ipslib.study.pages.scale.paper_cost` scaled by the rate's ratio to the author's) and the wall-clock
  time on a few GPUs.

(A module of its own: ``scale.py`` is near the size limit of a module.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ipslib.study.pages.scale import AUTHOR_RATES

__all__ = ["MEASUREMENTS", "cluster_rate", "cluster_note"]

MEASUREMENTS = ("outputs/gpu/gpu_check.json", "outputs/benchmarks/gpu_check.json")
"""Where ``gpu_check`` reports are looked for, first found first."""


def _paper_steps(check: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r
        for r in check.get("results", [])
        if r.get("canvas") == 1500 and r.get("batch_size", 16) == 16 and "ms_per_step" in r
    ]


def cluster_rate(root: Path | None = None) -> dict[str, Any]:
    """``ms_per_batch`` at 1500² (B = 16), the packing ``gain`` (throughput of the packing factor over one run
    per GPU), ``factor``, ``measured`` and ``source`` (what the numbers are, in words)."""
    from ipslib.study.project import project_root

    root = project_root() if root is None else root
    for name in MEASUREMENTS:
        check = json.loads((root / name).read_text()) if (root / name).is_file() else {}
        steps = _paper_steps(check)
        if not steps:
            continue
        best = min(steps, key=lambda r: r["ms_per_step"])
        packing = check.get("packing") or {}
        gain, factor = float(packing.get("gain", 1.0)), int(packing.get("factor", 1))
        how = f"amp {best.get('amp', 'none')}" + (", torch.compile" if best.get("compile") else "")
        return {
            "ms_per_batch": float(best["ms_per_step"]),
            "gain": gain,
            "factor": factor,
            "measured": True,
            "source": f"measured by gpu_check on {check.get('gpu')}, {how}, {factor} runs per GPU giving "
            f"×{gain:.2f} the throughput of one (`{name}`)",
        }
    ms, _, source = AUTHOR_RATES["megapixel_mnist"]
    return {
        "ms_per_batch": ms,
        "gain": 1.0,
        "factor": 1,
        "measured": False,
        "source": f"the {source[0].lower()}{source[1:]}; not a measurement of ipslib, none exists yet",
    }


def _hours(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def cluster_note(cost: pd.DataFrame, rate: dict[str, Any], gpus: tuple[int, ...] = (1, 8, 32)) -> str:
    """The cluster section's estimate for the :func:`~ipslib.study.pages.scale.paper_cost` table ``cost``."""
    author = AUTHOR_RATES["megapixel_mnist"][0]
    hours = float(cost["GPU hours (estimate)"].sum()) * rate["ms_per_batch"] / author / rate["gain"]
    walls = ", ".join(f"{_hours(hours / n)} h on {n} GPU{'s' if n > 1 else ''}" for n in gpus)
    packed = f" with {rate['factor']} runs per GPU" if rate["factor"] > 1 else ""
    caveat = (
        "Every run's estimate is scaled by the same ratio to the author's MNIST rate, the traffic runs too."
        if rate["measured"]
        else "A measurement (`bash benchmarks/gpu_check.sh` on one GPU, about 8 minutes) replaces this estimate."
    )
    return (
        f"At **{rate['ms_per_batch']:.0f} ms per batch** at 1500² (B = 16, N = 900), the paper profile needs about "
        f"**{_hours(hours)} GPU hours**{packed}: {walls} (an array keeps every GPU busy while runs remain). The rate: "
        f"{rate['source']}. {caveat}"
    )
