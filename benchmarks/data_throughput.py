"""Is the generator fast enough? Canvases (with their patches) produced per second by DataLoader workers,
against canvases consumed per second by training, at the cpu-profile and the paper settings.

Production: ``MegapixelMNIST(...).patch_view(50)`` (the layout-cut items training uses: only the touched
patches, uint8) through a ``DataLoader`` (batch 16, its ``collate``) with 0, 1 and 2 worker processes;
canvases per second over ``--batches`` batches, timed from the creation of the iterator (worker start-up
included; timing after a first batch would count prefetched batches as free).
Consumption: the cpu profile's training step (500², B = 16, M = 10, I = 20) is timed here; the paper's
(3000² and 1500², B = 16) is estimated from ``outputs/benchmarks/train_step.json`` (ours, CPU: B / step
seconds) and from the dissertation's logged GPU time at 1500² (375 ms per batch of 16,
``book/reference/runs_final.csv``, ``eff_time_ms_mean``). Training waits for data when consumption
exceeds production; ``headroom`` = production / consumption.

    python -m benchmarks.data_throughput [--batches 6] [--out PATH]

Writes ``outputs/benchmarks/data_throughput.json`` (atomically) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "outputs" / "benchmarks" / "data_throughput.json"
TRAIN_STEP = ROOT / "outputs" / "benchmarks" / "train_step.json"
RUNS = ROOT / "book" / "reference" / "runs_final.csv"
SETTINGS = {
    "cpu": dict(canvas_size=500, n_noise=50, memory_size=10, iter_size=20),
    "paper_1500": dict(canvas_size=1500, n_noise=50, memory_size=100, iter_size=100),
    "paper_3000": dict(canvas_size=3000, n_noise=800, memory_size=100, iter_size=100),
}
BATCH = 16


def config(setting: str, n_train: int):
    from ipslib.config import RunConfig

    return RunConfig.from_flat(
        digit_size=28,
        noise_type="bezier",
        n_train=n_train,
        n_test=0,
        digit_source="sample",
        patch_size=50,
        batch_size=BATCH,
        device="cpu",
        threads=1,
        **SETTINGS[setting],
    )


def production(setting: str, workers: int, batches: int) -> dict[str, Any]:
    """Canvases per second delivered by a DataLoader with ``workers`` processes."""
    import torch
    from torch.utils.data import DataLoader

    from ipslib.data.megapixel_mnist import MegapixelMNIST

    cfg = config(setting, BATCH * batches)
    dataset = MegapixelMNIST(cfg.data, "train")
    _ = dataset.noise_pool, dataset.digits  # build once before forking workers
    view = dataset.patch_view(50)
    loader = DataLoader(view, batch_size=BATCH, num_workers=workers, persistent_workers=False, collate_fn=view.collate)
    torch.set_num_threads(1)
    start = time.perf_counter()  # from the start of the workers: prefetching cannot inflate the rate
    count = sum(len(batch) for batch, _ in loader)
    seconds = time.perf_counter() - start
    return {
        "setting": setting,
        "workers": workers,
        "canvases": count,
        "seconds": seconds,
        "canvases_per_s": count / seconds,
    }


def cpu_profile_consumption(steps: int = 3) -> dict[str, Any]:
    """Time training steps at the cpu-profile setting on pre-made batches (data excluded)."""
    import torch

    from ipslib.data import build_dataset
    from ipslib.engine import runtime
    from ipslib.engine import training as engine
    from ipslib.model.ips import IPSNet

    cfg = config("cpu", BATCH)
    torch.set_num_threads(1)
    view = build_dataset(cfg, "train", patches=True)
    images, targets = view.collate([view[i] for i in range(BATCH)])
    runtime.seed_everything(0)
    net = IPSNet.from_config(cfg).train()
    optimizer = engine.build_optimizer(net, cfg)
    ctx = engine.Context(cfg, torch.device("cpu"))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        engine.train_step(net, optimizer, images, targets, ctx, lr=cfg.train.lr)
        times.append(time.perf_counter() - start)
    step_s = sorted(times[1:])[len(times[1:]) // 2]
    return {
        "setting": "cpu",
        "source": "measured here (CPU, 1 thread)",
        "batch_size": BATCH,
        "step_s": step_s,
        "canvases_per_s": BATCH / step_s,
    }


def paper_consumption() -> list[dict[str, Any]]:
    """Estimates for the paper settings from train_step.json (ours) and the dissertation's logs."""
    rows = []
    if TRAIN_STEP.is_file():
        report = json.loads(TRAIN_STEP.read_text())
        for r in report["results"]:
            if r.get("dedup_blank") and r.get("amp", "none") == "none" and not r.get("random_pixels"):
                rows.append(
                    {
                        "setting": f"paper_{r['canvas']}",
                        "source": "train_step.json (ours, CPU)",
                        "batch_size": r["batch_size"],
                        "step_s": r["step_s"],
                        "canvases_per_s": r["batch_size"] / r["step_s"],
                    }
                )
    else:
        rows.append(
            {
                "setting": "paper",
                "source": "train_step.json missing: run python -m benchmarks.train_step",
                "canvases_per_s": None,
            }
        )
    import pandas as pd

    runs = pd.read_csv(RUNS)
    eff = runs[runs["eff_time_ms_mean"].notna() & runs["duplicate_of"].isna() & (runs["digit_size"] == 28)]
    if len(eff):
        ms = float(eff["eff_time_ms_mean"].iloc[0])
        rows.append(
            {
                "setting": "paper_1500",
                "source": "dissertation log (GPU, runs_final.csv eff_time_ms_mean)",
                "batch_size": 16,
                "step_s": ms / 1000,
                "canvases_per_s": 16 / (ms / 1000),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=6, help="timed batches of 16 per case")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    from ipslib.system.files import atomic_write_json
    from ipslib.system.machine import machine_info

    produced = []
    for setting in SETTINGS:
        for workers in args.workers:
            produced.append(production(setting, workers, args.batches))
            p = produced[-1]
            print(f"produce {setting:<11} workers={workers}: {p['canvases_per_s']:7.1f} canvases/s", flush=True)
    consumed = [cpu_profile_consumption(), *paper_consumption()]
    for c in consumed:
        rate = "n/a" if c["canvases_per_s"] is None else f"{c['canvases_per_s']:7.1f} canvases/s"
        print(f"consume {c['setting']:<11} {rate}  ({c['source']})")
    best = {s: max(p["canvases_per_s"] for p in produced if p["setting"] == s) for s in SETTINGS}
    headroom = [
        {**c, "best_production_per_s": best.get(c["setting"]), "headroom": best[c["setting"]] / c["canvases_per_s"]}
        for c in consumed
        if c["canvases_per_s"] and c["setting"] in best
    ]
    info = machine_info()
    report = {
        "benchmark": "data_throughput",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": SETTINGS,
        "batch_size": BATCH,
        "machine": {
            **{k: info[k] for k in ("platform", "cpu_count", "python")},
            "load_average_1min": os.getloadavg()[0],
        },
        "production": produced,
        "consumption": consumed,
        "headroom": headroom,
    }
    atomic_write_json(args.out, report)
    for h in headroom:
        print(f"{h['setting']:<11} {h['source']}: production / consumption = {h['headroom']:.1f}")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
