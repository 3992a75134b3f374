"""Benchmark one IPS training step: ours in float32, ours in bf16, and the faithful dense mode, in one run.

A step is what the engine does per batch (:func:`ipslib.engine.training.train_step`): IPS selection over all N
patches of B = 4 canvases (no gradients), the gradient pass over the B·M selected patches, and the AdamW
step. Setting: 28-px digits, 50×50 patches, M = I = 100, ResNet-18 with two stages; canvases

* ``1500``: 1500² (N = 900) with 50 Bézier noise curves;
* ``3000``: 3000² (N = 3600) with 800 Bézier curves, the dissertation's testbed;
* ``dense1500``: 1500² of uniform random pixels (no blank patch at all), to show the cost without blanks.

Modes: ``ours_fp32`` (``dedup_blank``: identical patches, mostly the blank ones, encoded once in selection;
batches are the layout-cut items of training, whose known-blank patches are not even hashed), ``ours_bf16``
(the same under ``amp: bf16``: bfloat16 encoder, float32 scores and top-M) and ``dense`` (every patch
encoded, float32, as the original does). All from the same seed; ``ours_fp32`` must select exactly the
patches of ``dense`` at every step; the bf16 kept sets are compared with the float32 ones by Jaccard
|A ∩ B| / |A ∪ B| per image at the warm-up step (the same weights; ``benchmarks.bf16`` compares test sets).

Each case runs in a fresh process so its peak memory is its own: peak resident set size (RSS) during the steps,
its increase over the RSS just before them, and the process's lifetime peak (``ru_maxrss``). The time of a step
is the median over ``steps`` steps after one warm-up step, as wall-clock seconds (``step_s``; ``select_s`` of it
is the selection, ``grad_s`` the rest) and as CPU seconds of the process over all threads (``cpu_s``).
``blank_kept``: kept patches that are blank (re-encoded in the gradient pass, where BatchNorm's batch statistics
forbid sharing one embedding bit for bit). ``data_ms_per_item`` is the time to generate one item (canvas layout,
touched patches). Roofline: the trunk's FLOPs per patch (forward, and forward + backward, counted with
``torch.utils.flop_counter``) times the patches encoded, over the measured times, against this CPU's matmul peak
in float32 and bfloat16 (best of 2048² products with the same threads), measured in the same run.

    python -m benchmarks.train_step [--quick] [--steps 3] [--threads 2] [--settings 1500 3000 dense1500]

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
    "seconds_per_step": {"1500": 3.12, "3000": 10.17, "dense1500": 3.72},
    "peak_rss_mb": {"1500": 1422.0},
    "note": "the original IPS code (benbergner/ips), B = 4, measured side by side with ipslib on a quiet 2-core "
    "machine with 2 threads (issue 19); 3000² with 50 lines: 10.47 s, dense 3000²: 12.7 s",
}
SETTINGS = {
    "1500": {"canvas": 1500, "n_noise": 50, "random_pixels": False},
    "3000": {"canvas": 3000, "n_noise": 800, "random_pixels": False},
    "dense1500": {"canvas": 1500, "n_noise": 50, "random_pixels": True},
}
MODES = {"ours_fp32": (True, "none"), "ours_bf16": (True, "bf16"), "dense": (False, "none")}
LABELS = {"ours_fp32": "ours (float32)", "ours_bf16": "ours (bf16)", "dense": "dense (original)"}


def case_config(canvas: int, dedup_blank: bool, batch_size: int, threads: int, *, n_noise: int = 50, amp="none"):
    from ipslib.config import RunConfig

    return RunConfig.from_flat(
        canvas_size=canvas,
        digit_size=28,
        n_noise=n_noise,
        noise_type="bezier",
        n_train=batch_size * 8,
        n_test=0,
        digit_source="sample",
        patch_size=50,
        memory_size=100,
        iter_size=100,
        dedup_blank=dedup_blank,
        amp=amp,
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


def trunk_flops(cfg) -> dict[str, float]:
    """FLOPs of the patch encoder per patch: forward, and forward + backward (train mode)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ipslib.model.encoder import PatchEncoder

    encoder = PatchEncoder(config=cfg.encoder, in_channels=cfg.in_channels).train()
    x = torch.rand(8, cfg.in_channels, cfg.ips.patch_size, cfg.ips.patch_size)
    with FlopCounterMode(display=False) as forward:
        encoder(x)
    with FlopCounterMode(display=False) as both:
        encoder(x).sum().backward()
    return {"forward": forward.get_total_flops() / 8, "forward_backward": both.get_total_flops() / 8}


def matmul_peak(threads: int, n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best GFLOP/s of an n x n matrix product in float32 and bfloat16 with ``threads`` threads."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    out = {}
    for name, dtype in (("float32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        out[name] = 2 * n**3 / best / 1e9
    return out


def _batch(cfg, setting: dict[str, Any], batch_size: int):
    """(inputs, targets, data ms per item): layout-cut items, or uniform random pixels (no blank patch)."""
    import torch

    from ipslib.data import build_dataset

    view = build_dataset(cfg, "train", patches=True)
    view[batch_size]  # builds the split's noise pool and digit bank once (not per item)
    start = time.perf_counter()
    items = [view[i] for i in range(batch_size)]
    inputs, targets = view.collate(items)
    ms = 1000 * (time.perf_counter() - start) / batch_size
    if setting["random_pixels"]:
        generator = torch.Generator().manual_seed(0)
        inputs = torch.rand(batch_size, 1, setting["canvas"], setting["canvas"], generator=generator)
        ms = None  # not generated data
    return inputs, targets, ms


def _encoded_counter(net) -> list[int]:
    """Rows the encoder receives, appended per call (a forward pre-hook)."""
    counts: list[int] = []
    net.encoder.register_forward_pre_hook(lambda module, args: counts.append(args[0].shape[0]))
    return counts


def measure(case: dict[str, Any]) -> dict[str, Any]:
    """Run one case in this process: ``{"setting", "mode", "batch_size", "steps", "threads"}`` or ``{"peak"}``."""
    import torch

    if case.get("peak"):
        return matmul_peak(case["threads"])
    from ipslib.engine import runtime
    from ipslib.engine import training as engine
    from ipslib.model.ips import IPSNet
    from ipslib.system.machine import peak_memory_mb

    setting = SETTINGS[case["setting"]]
    dedup, amp = MODES[case["mode"]]
    b = case["batch_size"]
    cfg = case_config(setting["canvas"], dedup, b, case["threads"], n_noise=setting["n_noise"], amp=amp)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    inputs, targets, data_ms = _batch(cfg, setting, b)
    runtime.seed_everything(cfg.train.train_seed)
    net = IPSNet.from_config(cfg).train()
    optimizer = engine.build_optimizer(net, cfg)
    ctx = engine.Context(cfg, torch.device("cpu"))
    counts = _encoded_counter(net)
    select_s, step_s, cpu_s, indices, encoded, blank_kept = [], [], [], [], [], []
    with PeakRSS() as rss:
        for i in range(1 + case["steps"]):
            torch.manual_seed(1000 + i)  # the same shuffle order in every mode
            counts.clear()
            start, cpu_start = time.perf_counter(), time.process_time()
            selection = engine.select_batch(net, inputs, ctx)
            selected = time.perf_counter()
            n_select = sum(counts)
            engine.gradient_step(net, optimizer, selection, targets, ctx, lr=cfg.train.lr)
            select_s.append(selected - start)
            step_s.append(time.perf_counter() - start)
            cpu_s.append(time.process_time() - cpu_start)
            encoded.append((n_select, sum(counts) - n_select))
            blank_kept.append(int(selection.patches.flatten(2).ne(0).any(2).logical_not().sum()))
            indices.append(selection.indices.tolist())
    return {
        **case,
        "canvas": setting["canvas"],
        "n_noise": setting["n_noise"],
        "random_pixels": setting["random_pixels"],
        "dedup_blank": dedup,
        "amp": amp,
        "n_patches": cfg.n_patches,
        "memory_size": cfg.ips.memory_size,
        "threads_used": torch.get_num_threads(),
        "data_ms_per_item": data_ms,
        "step_s": statistics.median(step_s[1:]),
        "select_s": statistics.median(select_s[1:]),
        "grad_s": statistics.median([s - t for s, t in zip(step_s[1:], select_s[1:])]),
        "cpu_s": statistics.median(cpu_s[1:]),
        "all_step_s": step_s,
        "encoded_select": statistics.median(e[0] for e in encoded[1:]),
        "encoded_grad": statistics.median(e[1] for e in encoded[1:]),
        "blank_kept": statistics.median(blank_kept[1:]),
        "peak_rss_mb": rss.peak / 2**20,
        "rss_increase_mb": (rss.peak - rss.baseline) / 2**20,
        "process_peak_mb": peak_memory_mb(),
        "flops_per_patch": trunk_flops(cfg),
        "indices": indices,
    }


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process (so memory peaks do not mix)."""
    return run_isolated("benchmarks.train_step", case)


def _jaccard(a: list[list[list[int]]], b: list[list[list[int]]]) -> list[float]:
    """Per image of every step given: |A ∩ B| / |A ∪ B| of the kept sets."""
    return [len(set(x) & set(y)) / len(set(x) | set(y)) for sa, sb in zip(a, b) for x, y in zip(sa, sb)]


def compare(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setting: identical selection of ours vs dense, bf16 agreement, speed-ups, against the original."""
    rows = []
    for setting in dict.fromkeys(r["setting"] for r in results):
        by = {r["mode"]: r for r in results if r["setting"] == setting}
        ours, row = by.get("ours_fp32"), {"setting": setting}
        original = ORIGINAL["seconds_per_step"].get(setting)
        if ours and "dense" in by:
            row["same_selection"] = ours["indices"] == by["dense"]["indices"]
            row["speedup_dense_over_ours"] = by["dense"]["step_s"] / ours["step_s"]
        if ours and "ours_bf16" in by:
            scores = _jaccard(ours["indices"][:1], by["ours_bf16"]["indices"][:1])  # same weights: warm-up step
            row["bf16_mean_jaccard"], row["bf16_min_jaccard"] = statistics.fmean(scores), min(scores)
            row["bf16_images_compared"] = len(scores)
            row["speedup_fp32_over_bf16"] = ours["step_s"] / by["ours_bf16"]["step_s"]
        row["original_s"] = original
        for mode, r in by.items():
            row[f"speedup_original_over_{mode}"] = original / r["step_s"] if original else None
        rows.append(row)
    return rows


def roofline(results: list[dict[str, Any]], peak: dict[str, float]) -> list[dict[str, Any]]:
    """Per case and phase: ms per patch, achieved GFLOP/s and its share of the matmul peak of its dtype."""
    rows = []
    for r in results:
        dtype = "bf16" if r["amp"] == "bf16" else "float32"
        flops = r["flops_per_patch"]
        for phase, patches, per_patch, seconds in (
            ("scoring", r["encoded_select"], flops["forward"], r["select_s"]),
            ("gradient pass", r["encoded_grad"], flops["forward_backward"], r["grad_s"]),
        ):
            achieved = patches * per_patch / seconds / 1e9 if patches else 0.0
            rows.append(
                {
                    "setting": r["setting"],
                    "mode": r["mode"],
                    "phase": phase,
                    "dtype": dtype,
                    "patches": patches,
                    "ms_per_patch": 1000 * seconds / patches if patches else None,
                    "gflop_per_patch": per_patch / 1e9,
                    "achieved_gflops": achieved,
                    "peak_gflops": peak[dtype],
                    "share_of_peak": achieved / peak[dtype],
                }
            )
    return rows


def table(results: list[dict[str, Any]], comparison: list[dict[str, Any]]) -> str:
    lines = [
        f"{'setting':>9} {'N':>5} {'mode':<17} {'step s':>7} {'select s':>8} {'grad s':>7} {'CPU s':>6} "
        f"{'enc sel':>7} {'data ms':>7} {'peak RSS MB':>11} {'RSS +MB':>8}"
    ]
    for r in results:
        lines.append(
            f"{r['setting']:>9} {r['n_patches']:>5} {LABELS[r['mode']]:<17} {r['step_s']:>7.2f} "
            f"{r['select_s']:>8.2f} {r['grad_s']:>7.2f} {r['cpu_s']:>6.1f} {r['encoded_select']:>7.0f} "
            f"{r['data_ms_per_item'] or 0:>7.1f} {r['peak_rss_mb']:>11.0f} {r['rss_increase_mb']:>8.0f}"
        )
    for c in comparison:
        parts = [f"{c['setting']}:"]
        if "same_selection" in c:
            parts.append(f"dense/ours {c['speedup_dense_over_ours']:.2f}x, same selection {c['same_selection']};")
        if "bf16_mean_jaccard" in c:
            parts.append(
                f"bf16 {c['speedup_fp32_over_bf16']:.2f}x faster than float32, kept-set Jaccard "
                f"{c['bf16_mean_jaccard']:.4f} (min {c['bf16_min_jaccard']:.3f}, {c['bf16_images_compared']} images);"
            )
        if c["original_s"]:
            ups = ", ".join(
                f"{LABELS[m]} {c[f'speedup_original_over_{m}']:.2f}x"
                for m in MODES
                if c.get(f"speedup_original_over_{m}")
            )
            parts.append(f"original {c['original_s']:.2f} s: {ups}")
        lines.append(" ".join(parts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1500² only, one timed step")
    parser.add_argument("--steps", type=int, default=None, help="timed steps after the warm-up (default 3; 2 at 3000²)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--settings", nargs="+", default=None, choices=list(SETTINGS), help="default 1500 3000")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    from ipslib.system.files import atomic_write_json
    from ipslib.system.machine import machine_info

    load_start = os.getloadavg()[0]  # other processes on the cores inflate the wall times
    settings = args.settings or (["1500"] if args.quick else ["1500", "3000"])
    peak = run_case({"peak": True, "threads": args.threads})
    results = []
    for setting in settings:
        steps = args.steps or (1 if args.quick else 3 if SETTINGS[setting]["canvas"] <= 1500 else 2)
        for mode in args.modes:
            case = {"setting": setting, "mode": mode, "batch_size": args.batch_size, "steps": steps}
            results.append(run_case({**case, "threads": args.threads}))
            print(f"  measured {setting} {mode}: {results[-1]['step_s']:.2f} s per step", flush=True)
    comparison = compare(results)
    info = machine_info()
    for result in results:
        del result["indices"]  # compared above; too bulky to keep
    report = {
        "benchmark": "train_step",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "machine": {k: info[k] for k in ("platform", "cpu_count", "python", "torch")},
        "original": ORIGINAL,
        "matmul_peak_gflops": peak,
        "results": results,
        "comparison": comparison,
        "roofline": roofline(results, peak),
    }
    atomic_write_json(args.out, report)
    print(table(results, comparison))
    print(f"matmul peak: {peak['float32']:.0f} GFLOP/s float32, {peak['bf16']:.0f} GFLOP/s bf16")
    print(f"written {args.out}")
    if not all(c.get("same_selection", True) for c in comparison):
        print("ERROR: the fast path selected other patches than the dense mode", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
