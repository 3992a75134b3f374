"""Every GPU measurement of the project in one run of a few minutes: training steps at the paper setting and
the largest-canvas streaming inference, written to one JSON file.

Training step (what the engine does per batch: IPS selection over B = 16 canvases, gradient pass over the
16·M selected patches, AdamW step): 1500² (N = 900) and 3000² (N = 3600), 28-px digits, 50 Bézier noise
curves, 50×50 patches, M = I = 100, the paper's architecture with positional encoding, fp32 and bf16
autocast. Time per step from ``torch.cuda.synchronize``-bracketed wall time (median over the timed steps
after warm-up; data generation excluded, as in the dissertation's efficiency logs); peak CUDA memory
allocated and reserved over the timed steps (statistics reset first).

Inference: one 48,000² canvas (noise count scaled with area, as ``benchmarks.inference_scale``), streamed
with the exactly-blank foreground filter; time, peak CUDA memory and peak resident memory.

    bash benchmarks/gpu_check.sh            # or: python -m benchmarks.gpu_check [--budget-s 450]

Writes ``${OUT:-outputs/benchmarks}/gpu_check.json`` after every case, so a run cut short keeps what it
measured. Exits 2 with a message when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STEP_CASES = [(1500, "none"), (1500, "bf16"), (3000, "none"), (3000, "bf16")]
TIMED_STEPS = {1500: 10, 3000: 5}
WARMUP = 2
BATCH = 16


def step_config(canvas: int, amp: str):
    from ipslib.config import RunConfig

    return RunConfig.from_flat(
        canvas_size=canvas,
        digit_size=28,
        n_noise=50,
        noise_type="bezier",
        n_train=BATCH,
        n_test=0,
        digit_source="sample",
        patch_size=50,
        memory_size=100,
        iter_size=100,
        batch_size=BATCH,
        device="cuda",
        amp=amp,
    )


def train_step_case(canvas: int, amp: str) -> dict[str, Any]:
    import torch

    from ipslib.data import build_dataset
    from ipslib.engine import runtime
    from ipslib.engine import training as engine
    from ipslib.model.ips import IPSNet
    from ipslib.system.machine import peak_memory_mb

    cfg = step_config(canvas, amp)
    device = torch.device("cuda")
    dataset = build_dataset(cfg, "train")
    images, targets = torch.utils.data.default_collate([dataset[i] for i in range(BATCH)])
    runtime.seed_everything(0)
    net = IPSNet.from_config(cfg).to(device).train()
    optimizer = engine.build_optimizer(net, cfg)
    ctx = engine.Context(cfg, device)
    times = []
    for i in range(WARMUP + TIMED_STEPS[canvas]):
        if i == WARMUP:
            runtime.synchronize(device)
            runtime.reset_peak_memory(device)
        start = time.perf_counter()
        engine.train_step(net, optimizer, images, targets, ctx, lr=cfg.train.lr)
        runtime.synchronize(device)
        times.append(time.perf_counter() - start)
    timed = times[WARMUP:]
    return {
        "case": "train_step",
        "canvas": canvas,
        "amp": amp,
        "batch_size": BATCH,
        "n_patches": cfg.n_patches,
        "steps": len(timed),
        "ms_per_step": 1000 * statistics.median(timed),
        "ms_per_step_all": [1000 * t for t in timed],
        "peak_allocated_mib": peak_memory_mb(device),
        "peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20,
    }


def inference_case(canvas: int) -> dict[str, Any]:
    import torch

    from benchmarks.inference_scale import case_config
    from ipslib.data.megapixel_mnist import MegapixelMNIST
    from ipslib.data.mnist_patches import MegapixelPatchSource
    from ipslib.model.ips import IPSNet
    from ipslib.streaming.windows import skip_blank_patches
    from ipslib.system.machine import peak_memory_mb

    cfg = case_config(canvas)
    torch.manual_seed(0)
    net = IPSNet.from_config(cfg).to("cuda").eval()
    dataset = MegapixelMNIST(cfg.data, "train")
    _ = dataset.noise_pool, dataset.digits
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    source = MegapixelPatchSource(dataset, [0], cfg.ips.patch_size)
    with torch.no_grad(), skip_blank_patches(net) as wrapper:
        net(net.select(source))
    torch.cuda.synchronize()
    return {
        "case": "inference_streaming",
        "canvas": canvas,
        "n_patches": cfg.n_patches,
        "n_noise": cfg.data.noise_count,
        "seconds": time.perf_counter() - start,
        "background_skipped": wrapper.skipped,
        "peak_allocated_mib": peak_memory_mb("cuda"),
        "peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20,
        "process_peak_rss_mb": peak_memory_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--budget-s", type=float, default=450, help="stop starting new cases after this")
    parser.add_argument("--canvas", type=int, default=48000, help="inference canvas side")
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "outputs" / "benchmarks")) / "gpu_check.json"
    )
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device is available (torch.cuda.is_available() is False); "
            "run this on a machine with an NVIDIA GPU. Nothing was measured or written.",
            file=sys.stderr,
        )
        return 2
    from ipslib.system.files import atomic_write_json
    from ipslib.system.machine import machine_info

    info = machine_info()
    report: dict[str, Any] = {
        "benchmark": "gpu_check",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **{k: info[k] for k in ("gpu", "torch", "cuda", "python")},
        "results": [],
        "skipped": [],
    }
    start = time.perf_counter()
    cases = [("train_step", c, a) for c, a in STEP_CASES] + [("inference", args.canvas, None)]
    for kind, canvas, amp in cases:
        if time.perf_counter() - start > args.budget_s:
            report["skipped"].append({"case": kind, "canvas": canvas, "amp": amp, "reason": "time budget"})
            continue
        try:
            result = train_step_case(canvas, amp) if kind == "train_step" else inference_case(canvas)
        except Exception as err:  # record and go on: one failing case must not lose the others
            result = {"case": kind, "canvas": canvas, "amp": amp, "error": f"{type(err).__name__}: {err}"}
        finally:
            torch.cuda.empty_cache()
        report["results"].append(result)
        report["elapsed_s"] = time.perf_counter() - start
        atomic_write_json(args.out, report)
        print({k: v for k, v in result.items() if k != "ms_per_step_all"}, flush=True)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
