"""Benchmark one IPS training step at the original megapixel-MNIST setting, fast path vs faithful dense mode.

A step is what the engine does per batch (:func:`ipslib.engine.training.train_step`): IPS selection over all N
patches of B = 4 canvases (no gradients), the gradient pass over the B·M selected patches, and the AdamW
step. Setting: 28-px digits, 50 Bézier noise curves, 50×50 patches, M = I = 100, on 1500² (N = 900) and
3000² (N = 3600) canvases. ``dedup_blank=True`` (ours: identical patches, mostly blank ones, are encoded
once during selection) is compared with ``dedup_blank=False`` (every patch encoded, as the original does),
from the same seed; the selected indices of the first step must agree.

Each case runs in a fresh process so its peak memory is its own: peak resident set size (RSS) during the
steps, its increase over the RSS just before them, and the process's lifetime peak (``ru_maxrss``).
The time of a step is the median over ``steps`` steps after one warm-up step, as wall-clock seconds
(``step_s``; ``select_s`` of it is the selection) and as CPU seconds of the process over all threads
(``cpu_s``), which shows how much of a slow wall time is other processes competing for the cores.

    python -m benchmarks.train_step [--quick] [--steps 3] [--threads 2] [--out PATH]

Writes ``outputs/benchmarks/train_step.json`` (atomically) and prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._isolated import run_isolated

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "outputs" / "benchmarks" / "train_step.json"
ORIGINAL = {
    "seconds_per_step": {1500: 3.4, 3000: 11.0},
    "peak_memory_mb": 1.6 * 1024,
    "note": "original IPS/dissertation code on our 2-core machines, as stated in issue #3",
}
MODES = {"ours (dedup_blank)": True, "dense (original)": False}


def case_config(canvas: int, dedup_blank: bool, batch_size: int, threads: int):
    from ipslib.config import RunConfig

    return RunConfig.from_flat(
        canvas_size=canvas,
        digit_size=28,
        n_noise=50,
        noise_type="bezier",
        n_train=batch_size,
        n_test=0,
        digit_source="sample",
        patch_size=50,
        memory_size=100,
        iter_size=100,
        dedup_blank=dedup_blank,
        batch_size=batch_size,
        device="cpu",
        threads=threads,
    )


class PeakRSS:
    """Samples the process's resident set size every ``interval`` seconds in a background thread."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self.process, self.interval = psutil.Process(), interval
        self.peak = self.baseline = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def measure(case: dict[str, Any]) -> dict[str, Any]:
    """Run one case in this process: ``{"canvas", "dedup_blank", "batch_size", "steps", "threads"}``."""
    import torch

    from ipslib.data import build_dataset
    from ipslib.engine import runtime
    from ipslib.engine import training as engine
    from ipslib.model.ips import IPSNet
    from ipslib.system.machine import peak_memory_mb

    cfg = case_config(case["canvas"], case["dedup_blank"], case["batch_size"], case["threads"])
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    dataset = build_dataset(cfg, "train")
    images, targets = torch.utils.data.default_collate([dataset[i] for i in range(cfg.train.batch_size)])
    runtime.seed_everything(cfg.train.train_seed)
    net = IPSNet.from_config(cfg).train()
    optimizer = engine.build_optimizer(net, cfg)
    ctx = engine.Context(cfg, torch.device("cpu"))
    select_s, step_s, cpu_s, first = [], [], [], None
    with PeakRSS() as rss:
        for i in range(1 + case["steps"]):
            torch.manual_seed(1000 + i)  # the same shuffle order in both modes
            start, cpu_start = time.perf_counter(), time.process_time()
            selection = engine.select_batch(net, images, ctx)
            selected = time.perf_counter()
            engine.gradient_step(net, optimizer, selection, targets, ctx, lr=cfg.train.lr)
            select_s.append(selected - start)
            step_s.append(time.perf_counter() - start)
            cpu_s.append(time.process_time() - cpu_start)
            first = selection.indices.tolist() if first is None else first
    return {
        **case,
        "n_patches": cfg.n_patches,
        "threads_used": torch.get_num_threads(),
        "step_s": statistics.median(step_s[1:]),
        "select_s": statistics.median(select_s[1:]),
        "cpu_s": statistics.median(cpu_s[1:]),
        "all_step_s": step_s,
        "peak_rss_mb": rss.peak / 2**20,
        "rss_increase_mb": (rss.peak - rss.baseline) / 2**20,
        "process_peak_mb": peak_memory_mb(),
        "first_indices": first,
    }


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process (so memory peaks do not mix)."""
    return run_isolated("benchmarks.train_step", case)


def compare(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per canvas: ours vs dense (speed-up, memory ratio, identical selection) and vs the original."""
    rows = []
    for canvas in sorted({r["canvas"] for r in results}):
        ours = next(r for r in results if r["canvas"] == canvas and r["dedup_blank"])
        dense = next(r for r in results if r["canvas"] == canvas and not r["dedup_blank"])
        same = [sorted(a) == sorted(b) for a, b in zip(ours["first_indices"], dense["first_indices"])]
        original = ORIGINAL["seconds_per_step"].get(canvas)
        rows.append(
            {
                "canvas": canvas,
                "n_patches": ours["n_patches"],
                "same_selection": all(same),
                "speedup_dense_over_ours": dense["step_s"] / ours["step_s"],
                "cpu_ratio_dense_over_ours": dense["cpu_s"] / ours["cpu_s"],
                "rss_increase_ratio_dense_over_ours": dense["rss_increase_mb"] / ours["rss_increase_mb"],
                "original_s": original,
                "speedup_original_over_ours": original / ours["step_s"] if original else None,
            }
        )
    return rows


def table(results: list[dict[str, Any]], comparison: list[dict[str, Any]]) -> str:
    lines = [
        f"{'canvas':>6} {'N':>5} {'mode':<19} {'step s':>7} {'select s':>8} {'CPU s':>6} "
        f"{'peak RSS MB':>11} {'RSS +MB':>8} {'proc peak MB':>12}"
    ]
    for r in results:
        mode = next(name for name, flag in MODES.items() if flag == r["dedup_blank"])
        lines.append(
            f"{r['canvas']:>6} {r['n_patches']:>5} {mode:<19} {r['step_s']:>7.2f} {r['select_s']:>8.2f} "
            f"{r['cpu_s']:>6.1f} {r['peak_rss_mb']:>11.0f} {r['rss_increase_mb']:>8.0f} "
            f"{r['process_peak_mb']:>12.0f}"
        )
    for c in comparison:
        orig = (
            f"; original {c['original_s']:.1f} s = {c['speedup_original_over_ours']:.1f}x ours"
            if c["original_s"]
            else ""
        )
        lines.append(
            f"{c['canvas']}²: dense/ours time {c['speedup_dense_over_ours']:.2f}x (CPU "
            f"{c['cpu_ratio_dense_over_ours']:.2f}x), RSS increase "
            f"{c['rss_increase_ratio_dense_over_ours']:.2f}x, same selection: "
            f"{c['same_selection']}{orig}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1500² only, one timed step (about 30 s)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps after the warm-up (default 3; 2 at 3000²)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--canvas", type=int, nargs="+", default=None, help="canvas sides (default 1500 3000)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    from ipslib.system.files import atomic_write_json
    from ipslib.system.machine import machine_info

    load_start = os.getloadavg()[0]  # other processes on the cores inflate the wall times
    canvases = args.canvas or ([1500] if args.quick else [1500, 3000])
    results = []
    for canvas in canvases:
        steps = args.steps or (1 if args.quick else 3 if canvas <= 1500 else 2)
        for flag in MODES.values():
            results.append(
                run_case(
                    {
                        "canvas": canvas,
                        "dedup_blank": flag,
                        "batch_size": args.batch_size,
                        "steps": steps,
                        "threads": args.threads,
                    }
                )
            )
    comparison = compare(results)
    info = machine_info()
    for result in results:
        del result["first_indices"]  # compared above; too bulky to keep
    report = {
        "benchmark": "train_step",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "machine": {k: info[k] for k in ("platform", "cpu_count", "python", "torch")},
        "original": ORIGINAL,
        "results": results,
        "comparison": comparison,
    }
    atomic_write_json(args.out, report)
    print(table(results, comparison))
    print(f"written {args.out}")
    if not all(c["same_selection"] for c in comparison):
        print("ERROR: the fast path selected other patches than the dense mode", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
