"""Every GPU measurement of the project and a short training campaign, in one run of about 8 minutes.

Phases (``--phases``; by default all but ``inference``, in this order; each starts only while its time lasts):

``steps``     training steps at the 1500² setting of the author's efficiency logs (N = 900 patches of 50 px,
              28-px digits, 50 Bézier curves, M = I = 100, B = 16, the paper's architecture): fp32 and bf16
              autocast (selection scores in float32). A step is what ``ipslib train`` does per batch (IPS
              selection over the batch's layout-cut patches, the gradient pass over B·M patches, AdamW), on one
              batch made beforehand (data generation excluded, as in the author's logs). Median ms per step and
              peak CUDA memory beside the author's 375 ms and 1.84 GB.
``packing``   K = 1, 2, 4, 8 processes timing bf16 steps at 1500² at the same time: steps per second summed;
              the packing factor is the K after which throughput grows by less than 10 %.
``canvas``    the largest canvas side one bf16 step at B = 16 fits (noise count scaled with the area), from
              3000 doubling until out of memory or a step slower than ``--max-step-s``.
``batch``     the largest batch at 1500² (bf16), from 32 doubling likewise.
``compile``   the bf16 step with ``compile_mode: default`` (``torch.compile`` of the patch encoder; its
              compilation takes a minute or more, so it comes after the measurements the campaign needs).
``campaign``  the ``gpu`` profile (the params files' ``gpu:`` blocks: the O2I × training-size grid at 1500²,
              5 epochs) trained by ipslib's runner (``ipslib run --profile gpu --runs-per-device K``), K the
              packing factor, until done or the deadline; unfinished runs stay resumable. Needs MNIST
              (``$IPSLIB_DATA``, or the four IDX files, ``.gz`` too, under ``data/mnist/``: gpu_check.sh).
``inference`` one 48,000² canvas classified by streaming (``--canvas``): time and peak memory.

Writes ``outputs/gpu/gpu_check.json`` (``--out-dir``) after every case, so a run cut short keeps what it
measured (with the default folder also a copy at ``outputs/benchmarks/gpu_check.json``, where the Performance
chapter and the status page look), and the campaign's run records under ``outputs/gpu/runs/``. Exits 2 with one
line when no CUDA device is present, before writing anything. ``--rehearse`` runs every phase at toy scale on
the CPU (into ``_build/gpu_rehearsal/``): a check of this script, not a measurement.

    bash benchmarks/gpu_check.sh            # or: python -m benchmarks.gpu_check [--budget-s 450]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AUTHOR = {"ms_per_batch": 375.0, "peak_gb": 1.84, "setting": "1500², B = 16, N = 900, M = I = 100 (fp32)"}
BATCH = 16
PHASES = ("steps", "packing", "canvas", "batch", "compile", "campaign", "inference")
DEFAULT_PHASES = PHASES[:-1]
STEP_CASES = [("none", False), ("bf16", False)]  # (amp, torch.compile)
COMPILE_CASES = [("bf16", True)]
CANVAS_LADDER = (3000, 6000, 12000, 24000)
BATCH_LADDER = (32, 64, 128, 256, 512, 1024, 2048)
PACKING_LEVELS = (1, 2, 4, 8)
SETTING = {"canvas": 1500, "patch_size": 50, "memory_size": 100, "n_res_blocks": 2, "noise": 50, "device": "cuda"}
SETTING["amp"] = "bf16"  # of the ladders and the packing processes
REHEARSAL = {"canvas": 160, "patch_size": 40, "memory_size": 4, "n_res_blocks": 1, "noise": 3, "device": "cpu"}
REHEARSAL["amp"] = "none"
OUT_DIR = ROOT / "outputs" / "gpu"
GROWTH = 1.10  # a packing level must add 10 % throughput to count
STEP_KEYS = ("case", "canvas", "amp", "compile", "batch_size", "n_patches", "ms_per_step", "peak_allocated_mib")


# ------------------------------------------------------------------------------------------ the report
def new_report(info: dict[str, Any]) -> dict[str, Any]:
    """An empty report for the machine ``info`` (``gpu``, ``torch``, ``cuda``, ``python``)."""
    return {
        "benchmark": "gpu_check",
        "schema": 2,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **{k: info.get(k) for k in ("gpu", "torch", "cuda", "python")},
        "author": AUTHOR,
        "results": [],
        "skipped": [],
    }


def step_entry(
    canvas: int, amp: str, compiled: bool, batch: int, n_patches: int, seconds: list[float], alloc: float, res: float
) -> dict[str, Any]:
    """One timed training-step case: the median of ``seconds``, peak memory (MiB), the ratios to the author's."""
    ms = 1000 * statistics.median(seconds)
    peak_gb = alloc * 2**20 / 1e9
    entry = {
        "case": "train_step",
        "canvas": canvas,
        "amp": amp,
        "compile": compiled,
        "batch_size": batch,
        "n_patches": n_patches,
        "steps": len(seconds),
        "ms_per_step": ms,
        "ms_per_step_all": [1000 * s for s in seconds],
        "peak_allocated_mib": alloc,
        "peak_reserved_mib": res,
        "peak_gb": peak_gb,
    }
    if canvas == 1500 and batch == BATCH:
        entry |= {"vs_author_time": ms / AUTHOR["ms_per_batch"], "vs_author_memory": peak_gb / AUTHOR["peak_gb"]}
    return entry


def ladder_summary(entries: list[dict[str, Any]], key: str = "canvas") -> dict[str, Any]:
    """The rungs tried and the largest ``key`` whose step ran (``fits``)."""
    fitting = [e[key] for e in entries if e.get("fits")]
    return {"entries": entries, "largest": max(fitting) if fitting else None}


def packing_summary(levels: list[tuple[int, float]]) -> dict[str, Any]:
    """(K, steps per second of all K together) -> the levels, the packing factor and its gain over K = 1."""
    levels = sorted(levels)
    factor, best = levels[0]
    for k, rate in levels[1:]:
        if rate < GROWTH * best:
            break
        factor, best = k, rate
    return {
        "levels": [{"k": k, "steps_per_s": rate, "ms_per_step_each": 1000 * k / rate} for k, rate in levels],
        "factor": factor,
        "gain": best / levels[0][1],
    }


def check_report(report: dict[str, Any]) -> None:
    """ValueError unless ``report`` has the schema the book's pages read (results, packing, ladders)."""
    for key in ("benchmark", "gpu", "torch", "author", "results", "skipped"):
        if key not in report:
            raise ValueError(f"gpu_check report: missing key {key!r}")
    for entry in report["results"]:
        missing = [k for k in STEP_KEYS if k not in entry and "error" not in entry]
        if missing:
            raise ValueError(f"gpu_check report: a results entry lacks {', '.join(missing)}")
    packing = report.get("packing")
    if packing is not None and not {"levels", "factor", "gain"} <= set(packing):
        raise ValueError("gpu_check report: packing needs levels, factor and gain")
    for key in ("largest_canvas", "largest_batch"):
        if key in report and not {"entries", "largest"} <= set(report[key]):
            raise ValueError(f"gpu_check report: {key} needs entries and largest")


# ---------------------------------------------------------------------------------------- measuring
def use_rehearsal() -> None:
    """``--rehearse``: every phase at toy scale on the CPU (fp32 only, one rung per ladder, K = 1 and 2), to
    check this script where there is no GPU; its numbers mean nothing."""
    global STEP_CASES, COMPILE_CASES, CANVAS_LADDER, BATCH_LADDER, PACKING_LEVELS
    SETTING.update(REHEARSAL)
    STEP_CASES, COMPILE_CASES, CANVAS_LADDER, BATCH_LADDER, PACKING_LEVELS = (
        [("none", False)],
        [],
        (320,),
        (32,),
        (1, 2),
    )


def step_config(canvas: int | None = None, amp: str | None = None, batch: int = BATCH, compile_mode: str = "none"):
    """The author's efficiency setting at ``canvas`` (default 1500; noise count scaled with the area)."""
    from ipslib.config import RunConfig

    canvas = canvas or SETTING["canvas"]
    return RunConfig.from_flat(
        canvas_size=canvas,
        digit_size=28,
        n_noise=round(SETTING["noise"] * (canvas / SETTING["canvas"]) ** 2),
        noise_type="bezier",
        n_train=batch,
        n_test=0,
        digit_source="sample",
        patch_size=SETTING["patch_size"],
        memory_size=SETTING["memory_size"],
        iter_size=SETTING["memory_size"],
        use_pos=True,
        n_res_blocks=SETTING["n_res_blocks"],
        n_heads=8,
        head_dim=16,
        mlp_dim=512,
        batch_size=batch,
        device=SETTING["device"],
        amp=amp or SETTING["amp"],
        compile_mode=compile_mode,
    )


def prepared_step(cfg):
    """A function that runs one training step of ``cfg`` on a fixed batch (the engine's own step)."""
    import torch
    from torch.utils.data import default_collate

    from ipslib.data import build_dataset
    from ipslib.engine import runtime
    from ipslib.engine import steps as engine
    from ipslib.model.controls import build_model

    dataset = build_dataset(cfg, "train", patches=True)
    collate = getattr(dataset, "collate", None) or default_collate
    images, targets = collate([dataset[i] for i in range(cfg.train.batch_size)])
    runtime.seed_everything(0)
    ctx = engine.Context(cfg, torch.device(cfg.train.device))
    net = engine.prepare_model(build_model(cfg).to(ctx.device).train(), ctx)
    optimizer = engine.build_optimizer(net, cfg)

    def step() -> float:
        start = time.perf_counter()
        engine.train_step(net, optimizer, images, targets, ctx, lr=cfg.train.lr)
        runtime.synchronize(ctx.device)
        return time.perf_counter() - start

    return step


def time_case(cfg, steps: int, warmup: int) -> tuple[list[float], float, float | None]:
    """(seconds of the timed steps, peak MiB allocated, peak MiB reserved) after ``warmup`` steps."""
    import torch

    from ipslib.engine import runtime

    device = torch.device(cfg.train.device)
    step = prepared_step(cfg)
    for _ in range(warmup):
        step()
    runtime.synchronize(device)
    runtime.reset_peak_memory(device)
    seconds = [step() for _ in range(steps)]
    reserved = torch.cuda.max_memory_reserved() / 2**20 if device.type == "cuda" else None
    return seconds, runtime.peak_memory_mb(device), reserved


def phase_steps(report: dict[str, Any], args: argparse.Namespace, deadline: float, compiled_cases=False) -> None:
    for amp, compiled in COMPILE_CASES if compiled_cases else STEP_CASES:
        if time.perf_counter() > deadline:
            report["skipped"].append({"case": "train_step", "amp": amp, "compile": compiled, "reason": "time budget"})
            continue
        canvas = SETTING["canvas"]
        cfg = step_config(canvas, amp, BATCH, "default" if compiled else "none")
        result = guarded(lambda cfg=cfg, c=compiled: time_case(cfg, args.steps, args.warmup + 3 * c))
        if "error" in result:
            report["results"].append(
                {"case": "train_step", "canvas": canvas, "amp": amp, "compile": compiled, **result}
            )
        else:
            report["results"].append(step_entry(canvas, amp, compiled, BATCH, cfg.n_patches, *result["value"]))
        save(report, args)


def guarded(fn) -> dict[str, Any]:
    """``{"value": fn()}``, or ``{"error": ...}`` (``"oom": True`` when the GPU ran out of memory)."""
    import torch

    try:
        return {"value": fn()}
    except torch.OutOfMemoryError as err:
        return {"error": f"OutOfMemoryError: {str(err).splitlines()[0]}", "oom": True}
    except Exception as err:  # record and go on: one failing case must not lose the others
        return {"error": f"{type(err).__name__}: {err}"}
    finally:
        torch.cuda.empty_cache()


def phase_ladder(report: dict[str, Any], args: argparse.Namespace, deadline: float, key: str) -> None:
    """The largest canvas (``key="canvas"``) or batch (``"batch_size"``) one bf16 step fits."""
    rungs, entries = (CANVAS_LADDER if key == "canvas" else BATCH_LADDER), []
    for value in rungs:
        if time.perf_counter() > deadline:
            entries.append({key: value, "reason": "time budget"})
            break
        cfg = step_config(value) if key == "canvas" else step_config(batch=value)
        result = guarded(lambda cfg=cfg: time_case(cfg, 1, 1))
        entry = {key: value, "n_patches": cfg.n_patches, "fits": "error" not in result}
        if entry["fits"]:
            seconds, alloc, _ = result["value"]
            entry |= {"ms_per_step": 1000 * seconds[0], "peak_allocated_mib": alloc}
        entries.append(entry | {k: v for k, v in result.items() if k != "value"})
        report["largest_canvas" if key == "canvas" else "largest_batch"] = ladder_summary(entries, key)
        save(report, args)
        if not entry["fits"] or entry["ms_per_step"] > 1000 * args.max_step_s:
            break


def worker(args: argparse.Namespace) -> int:
    """One packing process: warm up, say so, wait for the start, time ``--steps`` steps, write the seconds."""
    folder = Path(args.worker_dir)
    step = prepared_step(step_config())
    for _ in range(args.warmup):
        step()
    (folder / f"ready{args.worker}").touch()
    end = time.monotonic() + 300
    while not (folder / "go").exists() and time.monotonic() < end:
        time.sleep(0.01)
    seconds = [step() for _ in range(args.steps)]
    (folder / f"result{args.worker}.json").write_text(json.dumps(seconds))
    return 0


def packing_level(k: int, args: argparse.Namespace, folder: Path) -> float:
    """Steps per second of ``k`` processes stepping at once (each its share of the cores)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // k))}
    steps = str(max(4, args.steps // 2))
    command = [sys.executable, "-m", "benchmarks.gpu_check", "--worker-dir", str(folder), "--steps", steps]
    command += ["--warmup", str(args.warmup), *(["--rehearse"] if args.rehearse else [])]
    procs = [subprocess.Popen([*command, "--worker", str(i)], env=env, cwd=ROOT) for i in range(k)]
    end = time.monotonic() + 300
    while sum((folder / f"ready{i}").exists() for i in range(k)) < k and time.monotonic() < end:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.05)
    (folder / "go").touch()
    codes = [p.wait(timeout=600) for p in procs]
    if any(codes):
        raise RuntimeError(f"packing K={k}: worker exit codes {codes}")
    return sum(len(s) / sum(s) for s in (json.loads((folder / f"result{i}.json").read_text()) for i in range(k)))


def phase_packing(report: dict[str, Any], args: argparse.Namespace, deadline: float) -> None:
    levels: list[tuple[int, float]] = []
    for k in PACKING_LEVELS:
        if time.perf_counter() > deadline:
            report["skipped"].append({"case": "packing", "k": k, "reason": "time budget"})
            break
        result = guarded(lambda k=k: packing_level(k, args, args.out_dir / ".packing"))
        if "error" in result:
            report["skipped"].append({"case": "packing", "k": k, **result})
            break
        levels.append((k, result["value"]))
        report["packing"] = packing_summary(levels)
        save(report, args)
        if len(levels) > 1 and levels[-1][1] < GROWTH * max(rate for _, rate in levels[:-1]):
            break


def stop_training() -> int:
    """End this process's ``ipslib train`` children (each keeps its last finished epoch); how many."""
    import psutil

    children = [p for p in psutil.Process().children(recursive=True) if "ipslib.cli" in " ".join(p.cmdline())]
    for child in children:
        child.terminate()
    psutil.wait_procs(children, timeout=60)
    return len(children)


def fitting_packing(specs: list, devices: list, k: int) -> int:
    """The largest packing up to ``k`` whose memory budget every run fits."""
    from ipslib.config import ConfigError
    from ipslib.study.packing import check_budget

    while k > 1:
        try:
            check_budget([(s.name, s.config) for s in specs], devices, k)
            return k
        except ConfigError:
            k -= 1
    return 1


def phase_campaign(report: dict[str, Any], args: argparse.Namespace, deadline: float) -> None:
    """Train the ``--profile`` runs, ``K`` per device, until done or ``deadline`` (module docstring)."""
    from ipslib.data.mnist import fetch_mnist
    from ipslib.engine.records import is_finished, read_metrics
    from ipslib.study import runner
    from ipslib.study.experiments import load_experiments
    from ipslib.study.packing import Slots, local_devices

    start = time.perf_counter()
    chosen = [e for name, e in load_experiments().items() if args.experiment in (None, name)]
    specs = list({s.key: s for e in chosen for s in e.runs(args.profile)}.values())
    try:
        if any(getattr(s.config.data, "digit_source", None) == "mnist" for s in specs):
            fetch_mnist()
    except Exception as err:  # no network on most GPU machines: MNIST must be there already
        report["campaign"] = {
            "skipped": f"MNIST is not available: {type(err).__name__}: {err}",
            "profile": args.profile,
        }
        print("gpu_check: campaign skipped: MNIST not found; put its four IDX files under data/mnist/", file=sys.stderr)
        return save(report, args)
    devices = local_devices()
    k = fitting_packing(specs, devices, args.runs_per_device or report.get("packing", {}).get("factor") or 4)
    results: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: results.extend(runner.train_runs(specs, slots=Slots.packed(devices, k))))
    thread.start()
    thread.join(timeout=max(1.0, deadline - time.perf_counter()))
    stopped = stop_training() if thread.is_alive() else 0
    thread.join(timeout=120)
    finished = [s for s in specs if is_finished(s.run_dir, s.config)]
    rates = [read_metrics(s.run_dir)["efficiency"]["ms_per_batch"] for s in finished]
    report["campaign"] = {
        "profile": args.profile,
        "runs": len(specs),
        "finished": len(finished),
        "runs_per_device": k,
        "stopped_at_deadline": stopped,
        "seconds": time.perf_counter() - start,
        "ms_per_batch_median": statistics.median(rates) if rates else None,
        "effective_ms_per_batch": statistics.median(rates) / k if rates else None,
        "results": results,
        "resume": f"ipslib run all --profile {args.profile} --runs-per-device {k}",
    }
    save(report, args)


def phase_inference(report: dict[str, Any], args: argparse.Namespace, deadline: float) -> None:
    """One ``--canvas`` canvas classified by streaming, the exactly-blank patches skipped."""
    if time.perf_counter() > deadline:
        report["skipped"].append({"case": "inference_streaming", "canvas": args.canvas, "reason": "time budget"})
        return save(report, args)
    result = guarded(lambda: inference_case(args.canvas))
    report["inference"] = result.get("value") or {"canvas": args.canvas, **result}
    save(report, args)


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
        "seconds": time.perf_counter() - start,
        "background_skipped": wrapper.skipped,
        "peak_allocated_mib": peak_memory_mb("cuda"),
        "process_peak_rss_mb": peak_memory_mb(),
    }


# ----------------------------------------------------------------------------------------- running
def save(report: dict[str, Any], args: argparse.Namespace) -> None:
    from ipslib.system.files import atomic_write_json

    check_report(report)
    atomic_write_json(args.out_dir / "gpu_check.json", report)
    if args.out_dir == OUT_DIR:  # a copy where the Performance chapter and the status page look for it
        atomic_write_json(ROOT / "outputs" / "benchmarks" / "gpu_check.json", report)


def _phases(text: str) -> list[str]:
    phases = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASES]
    if unknown or not phases:
        raise argparse.ArgumentTypeError(
            f"unknown phase(s) {', '.join(unknown) or '-'}; choose from {', '.join(PHASES)}"
        )
    return phases


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--budget-s", type=float, default=450, help="all phases within this (default 450)")
    parser.add_argument(
        "--measure-s",
        type=float,
        default=200,
        help="steps..compile within this (default 200); the campaign gets the rest",
    )
    parser.add_argument("--phases", type=_phases, default=list(DEFAULT_PHASES), help=f"comma-separated: {PHASES}")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3; +3 compiled)")
    parser.add_argument("--max-step-s", type=float, default=20.0, help="a ladder stops after a step this slow")
    parser.add_argument("--profile", default="gpu", help="the campaign's profile (default gpu)")
    parser.add_argument("--experiment", help="the campaign trains only this experiment's runs (default: all)")
    parser.add_argument("--rehearse", action="store_true", help="every phase at toy scale on the CPU (a dry run)")
    parser.add_argument("--runs-per-device", type=int, help="the campaign's packing (default: the measured factor)")
    parser.add_argument("--canvas", type=int, default=48000, help="the inference phase's canvas side")
    parser.add_argument("--out-dir", type=Path, help="where gpu_check.json goes (default outputs/gpu)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # a packing process
    parser.add_argument("--worker-dir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.out_dir is None:  # a rehearsal's numbers mean nothing: never where the book reads measurements
        args.out_dir = ROOT / "_build" / "gpu_rehearsal" if args.rehearse else OUT_DIR
    if args.rehearse:
        use_rehearsal()
    elif not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device is available (torch.cuda.is_available() is False); run this on a machine "
            "with an NVIDIA GPU. Nothing was measured or written.",
            file=sys.stderr,
        )
        return 2
    if args.worker is not None:
        return worker(args)
    from ipslib.system.machine import machine_info

    start = time.perf_counter()
    measured, end = start + min(args.measure_s, args.budget_s), start + args.budget_s
    report = new_report(machine_info())
    phases = {
        "steps": lambda: phase_steps(report, args, measured),
        "canvas": lambda: phase_ladder(report, args, measured, "canvas"),
        "batch": lambda: phase_ladder(report, args, measured, "batch_size"),
        "packing": lambda: phase_packing(report, args, measured),
        "compile": lambda: phase_steps(report, args, measured - 60, compiled_cases=True),
        "campaign": lambda: phase_campaign(report, args, end - 15),
        "inference": lambda: phase_inference(report, args, end - 60),
    }
    for name in args.phases:
        phases[name]()
        report["elapsed_s"] = time.perf_counter() - start
        save(report, args)
        print(f"gpu_check: {name} done at {report['elapsed_s']:.0f} s", flush=True)
    print(summary(report))
    print(f"written {args.out_dir / 'gpu_check.json'}")
    return 0


def summary(report: dict[str, Any]) -> str:
    """The numbers a session reports, one line each."""
    lines = [f"GPU {report['gpu']}, torch {report['torch']}"]
    for r in report["results"]:
        if "ms_per_step" in r:
            versus = f" ({r['vs_author_time']:.3f}× the author's 375 ms)" if "vs_author_time" in r else ""
            lines.append(
                f"{r['canvas']}² B={r['batch_size']} amp={r['amp']} compile={r['compile']}: {r['ms_per_step']:.1f} "
                f"ms/step{versus}, peak {r['peak_gb']:.2f} GB (author 1.84 GB)"
            )
        else:
            lines.append(f"{r.get('canvas')}² amp={r.get('amp')} compile={r.get('compile')}: {r.get('error')}")
    for key in ("largest_canvas", "largest_batch"):
        if key in report:
            lines.append(f"{key}: {report[key]['largest']}")
    if "packing" in report:
        lines.append(f"packing factor {report['packing']['factor']} (throughput ×{report['packing']['gain']:.2f})")
    if "campaign" in report:
        c = report["campaign"]
        lines.append(f"campaign: {c.get('finished', 0)} of {c.get('runs', '?')} runs in {c.get('seconds', 0):.0f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
