"""Memory and time of IPS inference (selection + aggregation) on one megapixel-MNIST canvas of growing size,
dense (paint the canvas, cut every patch, select) versus streaming (render only the requested patches from
the canvas's sparse description, skip blank patches).

Setting: canvases of side 1.5k ... 48k pixels, 28-px digits, Bézier noise of 28 px with the count scaled
with the canvas area (50 at 1500², i.e. the same density everywhere: 51,200 curves at 48,000²), 50×50
patches, M = I = 100, batch of one. Model: the paper's architecture (ResNet-18 with 2 stages, D = 128,
8 heads), untrained (the point is speed and memory, not accuracy), ``dedup_blank`` on in both modes, no
positional encoding (its rows are computed per index on demand, so it would add no table of size N).
Streaming adds the exactly-blank foreground filter (selection unchanged).

Each case runs in a fresh process, so its peak resident memory is its own: sampled every 5 ms during
inference (``peak_rss_mb``) and over the process's life (``process_peak_mb``, ``ru_maxrss``, which also
covers building the dataset's pool of noise patterns, 51,200 Bézier curves drawn at once at 48,000²). The
goal is checked against the larger of the two. Dense cases whose canvas and float patches would need more than
``--dense-limit-gb``
are skipped and recorded with the memory they would need.

    python -m benchmarks.inference_scale [--sizes 1500 3000 ...] [--threads 1] [--out PATH]

Writes ``outputs/benchmarks/inference_scale.json`` (atomically) and prints a table.

**Files on disk** (``--tiff SIDE``, instead of the canvases above): one canvas of that side is painted once and
saved as ``.npy`` and as a tiled TIFF (512² tiles, uncompressed and deflate), and the same streaming inference
reads each file window by window (:mod:`ipslib.streaming.disk`): the TIFF decodes each tile once into its
scratch copy; the ``tiff-lru`` case is the earlier 64 MB tile cache alone, for comparison. The model is a small
one (one ResNet stage, the size of the shipped predict model), so reading is a visible part of the cost. Cases
run interleaved, ``--repeats`` times, in fresh processes; each keeps its least-CPU repeat. Goal: a tiled TIFF
costs at most 1.5 times the ``.npy``, in CPU seconds of the process (on a shared machine the wall time of one
case varied 2-3x between repeats; both are recorded). Writes ``outputs/benchmarks/inference_tiff.json``::

    python -m benchmarks.inference_scale --tiff 20000
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from benchmarks._isolated import run_isolated

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "outputs" / "benchmarks" / "inference_scale.json"
SIZES = [1500, 3000, 6000, 12000, 24000, 48000]
PATCH, MEMORY, ITER, DIGIT, NOISE_AT_1500 = 50, 100, 100, 28, 50
GOAL = {"canvas": 48000, "peak_rss_mb": 2048}
MODEL = dict(
    arch="resnet18",
    n_res_blocks=2,
    n_heads=8,
    head_dim=16,
    mlp_dim=512,
    use_pos=False,
    dedup_blank=True,
    memory_size=MEMORY,
    iter_size=ITER,
    patch_size=PATCH,
)


def noise_count(canvas: int) -> int:
    return round(NOISE_AT_1500 * (canvas / 1500) ** 2)


def dense_bytes(canvas: int) -> int:
    """The uint8 canvas plus its float32 patches (what the dense path holds at once)."""
    return canvas * canvas * (1 + 4)


def case_config(canvas: int):
    from ipslib.config import RunConfig

    return RunConfig.from_flat(
        canvas_size=canvas,
        digit_size=DIGIT,
        n_noise=noise_count(canvas),
        noise_type="bezier",
        n_train=1,
        n_test=0,
        digit_source="sample",
        device="cpu",
        **MODEL,
    )


def _patches(mode: str, cfg, dataset):
    """The patch input of ``net.select``: a dense tensor (B=1) or a streaming source."""
    from ipslib.data.mnist_patches import MegapixelPatchSource

    if mode == "dense":
        return dataset.torch(patch_size=PATCH)[0][0].unsqueeze(0)  # (1, N, 1, p, p)
    return MegapixelPatchSource(dataset, [0], PATCH)


def measure(case: dict[str, Any]) -> dict[str, Any]:
    """One case in this process: ``{"canvas", "mode", "threads"}``."""
    if case["mode"] in FILE_MODES:
        return measure_file(case)
    import contextlib

    import torch

    from benchmarks.train_step import PeakRSS
    from ipslib.data.megapixel_mnist import MegapixelMNIST
    from ipslib.model.ips import IPSNet
    from ipslib.streaming.windows import skip_blank_patches
    from ipslib.system.machine import peak_memory_mb

    torch.set_num_threads(case["threads"])
    cfg = case_config(case["canvas"])
    torch.manual_seed(0)
    net = IPSNet.from_config(cfg).eval()
    dataset = MegapixelMNIST(cfg.data, "train")
    start_pool = time.perf_counter()
    _ = dataset.noise_pool, dataset.digits  # built once per process in both modes; not part of inference
    pool_s = time.perf_counter() - start_pool
    filter_ = skip_blank_patches(net) if case["mode"] == "streaming" else contextlib.nullcontext(None)
    with PeakRSS() as rss:
        start, cpu = time.perf_counter(), time.process_time()
        patches = _patches(case["mode"], cfg, dataset)
        prepared = time.perf_counter()
        torch.manual_seed(1)
        with torch.no_grad(), filter_ as wrapper:
            selection = net.select(patches)
            logits = net(selection)
        done = time.perf_counter()
        cpu_s = time.process_time() - cpu
    return {
        **case,
        "n_patches": cfg.n_patches,
        "n_noise": cfg.data.noise_count,
        "prepare_s": prepared - start,
        "select_aggregate_s": done - prepared,
        "total_s": done - start,
        "cpu_s": cpu_s,
        "noise_pool_s": pool_s,
        "peak_rss_mb": rss.peak / 2**20,
        "baseline_rss_mb": rss.baseline / 2**20,
        "rss_increase_mb": (rss.peak - rss.baseline) / 2**20,
        "process_peak_mb": peak_memory_mb(),
        "background_skipped": wrapper.skipped if wrapper is not None else None,
        "indices": sorted(selection.indices[0].tolist()),
        "majority_logits": logits["majority"][0].tolist(),
    }


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process (so memory peaks do not mix)."""
    return run_isolated("benchmarks.inference_scale", case, threads=case["threads"])


def compare(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per canvas where both modes ran: same selection, time and memory ratios."""
    rows = []
    for canvas in sorted({r["canvas"] for r in results}):
        pair = {r["mode"]: r for r in results if r["canvas"] == canvas and not r.get("skipped")}
        if len(pair) == 2:
            dense, stream = pair["dense"], pair["streaming"]
            rows.append(
                {
                    "canvas": canvas,
                    "same_selection": dense["indices"] == stream["indices"],
                    "time_ratio_dense_over_streaming": dense["total_s"] / stream["total_s"],
                    "rss_ratio_dense_over_streaming": dense["peak_rss_mb"] / stream["peak_rss_mb"],
                }
            )
    return rows


def _lifetime_peak(result: dict[str, Any] | None) -> float | None:
    """The larger of the sampled peak during inference and the process's lifetime peak (``ru_maxrss``,
    which also covers building the dataset's noise pool before inference)."""
    return None if result is None else max(result["peak_rss_mb"], result["process_peak_mb"])


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        f"{'canvas':>6} {'N':>7} {'noise':>6} {'mode':<9} {'total s':>8} {'select s':>8} {'CPU s':>7} "
        f"{'peak RSS MB':>11} {'RSS +MB':>8}"
    ]
    for r in results:
        if r.get("skipped"):
            lines.append(f"{r['canvas']:>6} {r['n_patches']:>7} {r['n_noise']:>6} {r['mode']:<9} {r['skipped']}")
            continue
        lines.append(
            f"{r['canvas']:>6} {r['n_patches']:>7} {r['n_noise']:>6} {r['mode']:<9} {r['total_s']:>8.1f} "
            f"{r['select_aggregate_s']:>8.1f} {r['cpu_s']:>7.1f} {r['peak_rss_mb']:>11.0f} "
            f"{r['rss_increase_mb']:>8.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inference_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="canvas sides")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared 2-core machine, 2 OpenMP threads "
        "spend small-batch convolutions waiting for each other)",
    )
    parser.add_argument(
        "--dense-limit-gb",
        type=float,
        default=1.5,
        help="skip dense cases whose canvas + float patches would exceed this",
    )
    parser.add_argument("--out", type=Path, default=None, help=f"default {DEFAULT_OUT} ({TIFF_OUT} with --tiff)")
    parser.add_argument("--tiff", type=int, metavar="SIDE", help="only the files-on-disk cases at this canvas side")
    parser.add_argument("--repeats", type=int, default=3, help="with --tiff: runs per case, the fastest kept")
    args = parser.parse_args(argv)
    if args.tiff:
        return tiff_main(args.tiff, args.threads, args.out or TIFF_OUT, args.repeats)
    args.out = args.out or DEFAULT_OUT
    from ipslib.system.files import atomic_write_json
    from ipslib.system.machine import machine_info

    results = []
    for canvas in args.sizes:
        for mode in ("dense", "streaming"):
            case = {"canvas": canvas, "mode": mode, "threads": args.threads}
            need = dense_bytes(canvas) / 2**30
            if mode == "dense" and need > args.dense_limit_gb:
                n_side = (canvas - PATCH) // PATCH + 1
                results.append(
                    {
                        **case,
                        "n_patches": n_side**2,
                        "n_noise": noise_count(canvas),
                        "skipped": f"skipped: would need {need:.1f} GB for the canvas and its float patches",
                    }
                )
            else:
                results.append(run_case(case))
            print(table(results[-1:]).splitlines()[-1], flush=True)
    info = machine_info()
    streaming_goal = next((r for r in results if r["canvas"] == GOAL["canvas"] and r["mode"] == "streaming"), None)
    report = {
        "benchmark": "inference_scale",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "setting": {
            "patch_size": PATCH,
            "memory_size": MEMORY,
            "iter_size": ITER,
            "digit_size": DIGIT,
            "noise": f"Bézier, count scaled with canvas area: {NOISE_AT_1500} at 1500²",
            "model": {**MODEL, "weights": "untrained (seed 0)"},
            "batch_size": 1,
            "threads": args.threads,
            "dense_limit_gb": args.dense_limit_gb,
        },
        "machine": {
            **{k: info[k] for k in ("platform", "cpu_count", "python")},
            "load_average_1min": os.getloadavg()[0],
        },
        "goal": {
            **GOAL,
            "measured_mb": _lifetime_peak(streaming_goal),
            "met": bool(streaming_goal and _lifetime_peak(streaming_goal) < GOAL["peak_rss_mb"]),
        },
        "results": results,
        "comparison": compare(results),
    }
    atomic_write_json(args.out, report)
    print(f"same selection dense vs streaming: {[(c['canvas'], c['same_selection']) for c in report['comparison']]}")
    print(
        f"goal (48,000² under 2 GB resident, streaming, process lifetime peak {report['goal']['measured_mb']} MB): "
        f"{report['goal']['met']}; written {args.out}"
    )
    return 0 if report["goal"]["met"] or streaming_goal is None else 1


# ---------------------------------------------------------------- files on disk: .npy against tiled TIFF
TIFF_OUT = ROOT / "outputs" / "benchmarks" / "inference_tiff.json"
FILE_MODES = {"npy": {}, "tiff": {"compression": None}, "tiff-deflate": {"compression": "zlib"}, "tiff-lru": {}}
TIFF_TILE, TIFF_GOAL = 512, 1.5
FILE_MODEL = {**MODEL, "n_res_blocks": 1, "n_heads": 4, "head_dim": 16, "mlp_dim": 128}


def write_files(canvas: int, folder: Path) -> dict[str, str]:
    """Paint canvas 0 once and save it as .npy and as tiled TIFFs; mode -> path."""
    import numpy as np
    import tifffile

    from ipslib.data.megapixel_mnist import MegapixelMNIST
    from ipslib.data.mnist_patches import MegapixelPatchSource

    cfg = case_config(canvas)
    source = MegapixelPatchSource(MegapixelMNIST(cfg.data, "train"), [0], PATCH)
    image = np.ascontiguousarray(source.read_window(0, 0, 0, canvas, canvas)[0])  # (H, W) uint8
    paths = {"npy": folder / "canvas.npy", "tiff": folder / "canvas.tif", "tiff-deflate": folder / "deflate.tif"}
    np.save(paths["npy"], image)
    for mode in ("tiff", "tiff-deflate"):
        tifffile.imwrite(paths[mode], image, tile=(TIFF_TILE, TIFF_TILE), **FILE_MODES[mode])
    return {**{k: str(v) for k, v in paths.items()}, "tiff-lru": str(paths["tiff"])}


def measure_file(case: dict[str, Any]) -> dict[str, Any]:
    """One files-on-disk case in this process: ``{"canvas", "mode", "threads", "path"}``."""
    import numpy as np
    import torch

    from benchmarks.train_step import PeakRSS
    from ipslib.model.ips import IPSNet
    from ipslib.streaming.disk import ArrayPatchSource, TiffPatchSource
    from ipslib.streaming.windows import skip_blank_patches

    torch.set_num_threads(case["threads"])
    torch.manual_seed(0)
    net = IPSNet.from_config(case_config(case["canvas"]).replace(**FILE_MODEL)).eval()
    with PeakRSS() as rss:
        start, cpu = time.perf_counter(), time.process_time()
        if case["mode"] == "npy":
            source = ArrayPatchSource([np.load(case["path"], mmap_mode="r")], PATCH)
        else:
            source = TiffPatchSource([case["path"]], PATCH, scratch=case["mode"] != "tiff-lru")
        torch.manual_seed(1)
        with torch.no_grad(), skip_blank_patches(net):
            selection = net.select(source)
            net(selection)
        seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    tiff = isinstance(source, TiffPatchSource)
    return {
        **case,
        "n_patches": source.n_patches,
        "total_s": seconds,
        "cpu_s": cpu_s,
        "peak_rss_mb": rss.peak / 2**20,
        "file_mb": Path(case["path"]).stat().st_size / 2**20,
        "segments_decoded": source.segments_read if tiff else None,
        "segments": len(source.pages[0].dataoffsets) if tiff else None,
        "scratch_mb": source.scratch_bytes / 2**20 if tiff else None,
        "indices": sorted(selection.indices[0].tolist()),
    }


def tiff_main(canvas: int, threads: int, out: Path, repeats: int = 3) -> int:
    """The files-on-disk cases at one canvas side; exit 1 when the TIFF misses the goal."""
    import tempfile

    from ipslib.system.files import atomic_write_json
    from ipslib.system.machine import machine_info

    with tempfile.TemporaryDirectory() as folder:
        paths = write_files(canvas, Path(folder))
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in FILE_MODES}
        for _ in range(repeats):  # modes interleaved, so a busy spell on a shared machine hits them alike
            for m in FILE_MODES:
                runs[m].append(run_case({"canvas": canvas, "mode": m, "threads": threads, "path": paths[m]}))
    results = []
    for cases in runs.values():  # the least-CPU repeat of each mode: the least disturbed
        best = min(cases, key=lambda r: r["cpu_s"])
        results.append(
            {**best, "repeats_s": [r["total_s"] for r in cases], "repeats_cpu_s": [r["cpu_s"] for r in cases]}
        )
    npy, npy_indices = results[0], results[0]["indices"]
    for r in results:
        r["time_over_npy"] = r["cpu_s"] / npy["cpu_s"]
        r["wall_over_npy"] = min(r["repeats_s"]) / min(npy["repeats_s"])
        r["same_selection_as_npy"] = r.pop("indices") == npy_indices
        r.pop("path")
        decoded = "" if r["segments"] is None else f", {r['segments_decoded'] / r['segments']:.1f} decodes per tile"
        print(
            f"{r['mode']:<13} CPU {r['cpu_s']:6.1f} s  x{r['time_over_npy']:.2f}  (wall {min(r['repeats_s']):.1f} s  "
            f"x{r['wall_over_npy']:.2f})  peak {r['peak_rss_mb']:.0f} MB{decoded}"
        )
    goal = max(r["time_over_npy"] for r in results if r["mode"] in ("tiff", "tiff-deflate"))
    info = machine_info()
    report = {
        "benchmark": "inference_tiff",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "setting": {
            "canvas": canvas,
            "tile": TIFF_TILE,
            "patch_size": PATCH,
            "memory_size": MEMORY,
            "iter_size": ITER,
            "threads": threads,
            "repeats": repeats,
            "model": {**FILE_MODEL, "weights": "untrained (seed 0)"},
        },
        "machine": {
            **{k: info[k] for k in ("platform", "cpu_count", "python")},
            "load_average_1min": os.getloadavg()[0],
        },
        "goal": {"tiff_cpu_time_over_npy_at_most": TIFF_GOAL, "measured": goal, "met": goal <= TIFF_GOAL},
        "results": results,
    }
    atomic_write_json(out, report)
    print(
        f"goal (tiled TIFF at most {TIFF_GOAL}x the .npy CPU time): {goal:.2f}x, met: {goal <= TIFF_GOAL}; wrote {out}"
    )
    return 0 if goal <= TIFF_GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
