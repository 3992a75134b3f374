"""Is ``amp: bf16`` safe? Kept-set agreement with float32, and (separately, hours of CPU) training equivalence.

Under ``amp: bf16`` the selection's encoder runs in bfloat16 while scores and their top-M stay float32
(:meth:`ipslib.model.ips.IPSNet.select`). Two settings: ``cpu`` (the cpu profile's megapixel-MNIST baseline,
``params/_defaults.yaml`` ``megapixel_mnist.cpu``, whatever it is when run) and ``1500`` (1500² canvases,
28-px digits, 50 Bézier curves, N = 900, M = I = 100, ResNet-18 with 2 stages, as ``benchmarks.train_step``).

``agreement`` (minutes): for each model, select on the first ``--items`` test canvases twice from the same seed,
in float32 and in bf16, and compare the kept sets per canvas: Jaccard |A ∩ B| / |A ∪ B|, its mean and minimum,
and the share of identical sets. Models: a trained checkpoint of the cpu baseline where one exists (a
cpu-profile run, else ``outputs/models/<name>/`` with the same data and model keys), an untrained network, and
at 1500² a network trained for ``--train-steps`` float32 steps (no trained 1500² model exists). Writes
``outputs/benchmarks/bf16_agreement.json``.

``training`` (hours; run in the cpu-profile campaign): each setting trained with amp none and bf16 for each of
``--seeds`` (``train_seed``), resumable, into ``outputs/bf16_training/<setting>/<amp>-seed<s>/``; then final
test accuracy per task. bf16 counts as equivalent when, for every task, the difference of the seed means is
within the spread (max - min) of the float32 seeds. Writes ``outputs/benchmarks/bf16_training.json``.

    python -m benchmarks.bf16 agreement [--items 200] [--threads 1] [--settings cpu 1500]
    python -m benchmarks.bf16 training [--seeds 0 1 2] [--settings cpu 1500] [--epochs E]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "outputs" / "benchmarks"
TRAIN_DIR = ROOT / "outputs" / "bf16_training"
SETTING_1500 = dict(
    canvas_size=1500,
    digit_size=28,
    n_noise=50,
    patch_size=50,
    memory_size=100,
    iter_size=100,
    n_res_blocks=2,
    head_dim=16,
    mlp_dim=512,
    attn_dropout=0.1,
    dropout=0.1,
    batch_size=16,
    lr=0.001,
)


def setting_config(setting: str, **changes: Any):
    """The RunConfig of a setting: the cpu profile's MNIST defaults, at 1500² with :data:`SETTING_1500`."""
    from ipslib.config import RunConfig
    from ipslib.system.files import data_root

    flat = dict(yaml.safe_load((ROOT / "params" / "_defaults.yaml").read_text())["megapixel_mnist"]["cpu"])
    if setting == "1500":
        flat.update(SETTING_1500)
    elif setting != "cpu":
        raise ValueError(f"setting {setting!r} is not known; choose cpu or 1500")
    if not (data_root() / "mnist").is_dir():
        flat["digit_source"] = "sample"  # no MNIST here: the digits shipped with ipslib
    return RunConfig.from_flat({**flat, "device": "cpu", **changes})


def jaccard(a: list[int], b: list[int]) -> float:
    """|A ∩ B| / |A ∪ B| of two kept sets."""
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb)


def _select_all(net, cfg, amp: str, items: int, batch: int) -> tuple[list[list[int]], float]:
    """Kept indices of the first ``items`` test canvases (seeded per batch) and the selection seconds."""
    import torch

    from ipslib.data import build_dataset
    from ipslib.engine import steps

    view = build_dataset(cfg, "test", patches=True)
    ctx = steps.Context(cfg.replace(amp=amp), torch.device("cpu"))
    kept, seconds = [], 0.0
    net.eval()
    for start in range(0, min(items, len(view)), batch):
        inputs, _ = view.collate([view[i] for i in range(start, min(start + batch, items, len(view)))])
        torch.manual_seed(start)
        t0 = time.perf_counter()
        selection = steps.select_batch(net, inputs, ctx)
        seconds += time.perf_counter() - t0
        kept += selection.indices.tolist()
    return kept, seconds


MATCH_KEYS = (
    "canvas_size",
    "digit_size",
    "n_noise",
    "noise_type",
    "patch_size",
    "memory_size",
    "iter_size",
    "use_pos",
    "arch",
    "n_res_blocks",
    "n_heads",
    "head_dim",
    "mlp_dim",
)


def _baseline_run() -> Path | None:
    """A finished run with a checkpoint of the cpu profile's MNIST defaults (data and model keys, no STKIM or
    regularisers): a cpu-profile run, else a model under ``outputs/models/`` (e.g. a calibration run)."""
    defaults = yaml.safe_load((ROOT / "params" / "_defaults.yaml").read_text())["megapixel_mnist"]["cpu"]
    wanted = {**{k: defaults[k] for k in MATCH_KEYS}, "stkim_k": 0, "diversity_weight": 0.0, "semantic_weight": 0.0}
    folders = [
        *sorted((ROOT / "outputs" / "cpu" / "runs").glob("*/")),
        *sorted((ROOT / "outputs" / "models").glob("*/")),
    ]
    for folder in folders:
        config = folder / "params.yaml" if (folder / "params.yaml").is_file() else folder / "config.yaml"
        metrics = folder / "metrics.json"
        if not (config.is_file() and metrics.is_file() and (folder / "checkpoint.pt").is_file()):
            continue
        flat = yaml.safe_load(config.read_text())
        if all(flat.get(k) == v for k, v in wanted.items()) and json.loads(metrics.read_text()).get("finished"):
            return folder
    return None


def _models(setting: str, cfg, train_steps: int):
    """(name, net) pairs: trained checkpoint if any, untrained, briefly trained (1500² only)."""
    import torch

    from ipslib.engine import runtime, steps
    from ipslib.engine.predict import load_model
    from ipslib.model.ips import IPSNet

    run = _baseline_run() if setting == "cpu" else None
    if run is not None:
        epochs = json.loads((run / "metrics.json").read_text())["epochs_done"]
        yield f"trained ({run.relative_to(ROOT)}, {epochs} epochs)", load_model(run)[0]
    runtime.seed_everything(0)
    yield "untrained (seed 0)", IPSNet.from_config(cfg)
    if setting == "1500" and train_steps:
        from ipslib.data import build_dataset

        runtime.seed_everything(0)
        net = IPSNet.from_config(cfg).train()
        optimizer, ctx = steps.build_optimizer(net, cfg), steps.Context(cfg, torch.device("cpu"))
        view, b = build_dataset(cfg, "train", patches=True), 4
        for step in range(train_steps):
            idx = [(step * b + i) % len(view) for i in range(b)]
            inputs, targets = view.collate([view[i] for i in idx])
            steps.train_step(net.train(), optimizer, inputs, targets, ctx, lr=cfg.train.lr)
        yield f"trained {train_steps} float32 steps of B = {b}", net


def agreement(settings: list[str], items: int, threads: int, train_steps: int) -> dict[str, Any]:
    import torch

    from ipslib.engine.runtime import cpu_has_bf16

    torch.set_num_threads(threads)
    rows = []
    for setting in settings:
        cfg = setting_config(setting)
        cfg = cfg.replace(n_test=max(items, cfg.data.n_test))
        for name, net in _models(setting, cfg, train_steps):
            float32, s32 = _select_all(net, cfg, "none", items, 8)
            bf16, s16 = _select_all(net, cfg, "bf16", items, 8)
            scores = [jaccard(a, b) for a, b in zip(float32, bf16)]
            rows.append(
                {
                    "setting": setting,
                    "model": name,
                    "canvas": cfg.data.canvas_size,
                    "n_patches": cfg.n_patches,
                    "memory_size": cfg.ips.memory_size,
                    "items": len(scores),
                    "mean_jaccard": statistics.fmean(scores),
                    "min_jaccard": min(scores),
                    "identical_share": sum(s == 1.0 for s in scores) / len(scores),
                    "select_s_float32": s32,
                    "select_s_bf16": s16,
                }
            )
            r = rows[-1]
            print(
                f"{setting:>5} {name:<48} items {r['items']:>4} mean Jaccard {r['mean_jaccard']:.4f} "
                f"(min {r['min_jaccard']:.3f}, identical {r['identical_share']:.1%}); "
                f"select {s32:.1f} s float32, {s16:.1f} s bf16",
                flush=True,
            )
    return {"rows": rows, "cpu_has_bf16": cpu_has_bf16(), "threads": threads}


def _final_accuracy(run_dir: Path) -> dict[str, float]:
    from ipslib.engine import records

    metrics = records.read_metrics(run_dir)
    return {task: values["accuracy"] for task, values in metrics["last"]["test"].items()}


def equivalent(fp32: list[dict[str, float]], bf16: list[dict[str, float]]) -> dict[str, Any]:
    """Per task: seed means, float32 spread (max - min) and whether |mean difference| <= that spread."""
    out = {}
    for task in fp32[0]:
        a, b = [r[task] for r in fp32], [r[task] for r in bf16]
        spread = max(a) - min(a)
        diff = statistics.fmean(b) - statistics.fmean(a)
        out[task] = {"float32": a, "bf16": b, "mean_difference": diff, "float32_spread": spread}
        out[task]["within_spread"] = abs(diff) <= spread
    return out


def training(settings: list[str], seeds: list[int], epochs: int | None) -> dict[str, Any]:
    from ipslib.engine.training import train

    report = {}
    for setting in settings:
        finals: dict[str, list[dict[str, float]]] = {"none": [], "bf16": []}
        for amp in finals:
            for seed in seeds:
                changes = {"amp": amp, "train_seed": seed, **({"epochs": epochs} if epochs else {})}
                run_dir = TRAIN_DIR / setting / f"{amp}-seed{seed}"
                train(setting_config(setting, **changes), run_dir, progress=False, log=print)
                finals[amp].append(_final_accuracy(run_dir))
        tasks = equivalent(finals["none"], finals["bf16"])
        report[setting] = {"tasks": tasks, "equivalent": all(t["within_spread"] for t in tasks.values())}
        print(f"{setting}: bf16 equivalent to float32 within the seed spread: {report[setting]['equivalent']}")
    return {"seeds": seeds, "settings": report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bf16", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["agreement", "training"], nargs="?", default="agreement")
    parser.add_argument("--settings", nargs="+", default=["cpu", "1500"], choices=["cpu", "1500"])
    parser.add_argument("--items", type=int, default=200, help="test canvases compared (agreement)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-steps", type=int, default=40, help="float32 steps of the 1500² model (agreement)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="train seeds (training)")
    parser.add_argument("--epochs", type=int, default=None, help="override the setting's epochs (training)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from ipslib.system.files import atomic_write_json
    from ipslib.system.machine import machine_info

    load_start = os.getloadavg()[0]
    if args.what == "agreement":
        result = agreement(args.settings, args.items, args.threads, args.train_steps)
    else:
        result = training(args.settings, args.seeds, args.epochs)
    info = machine_info()
    report = {
        "benchmark": f"bf16_{args.what}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "machine": {k: info[k] for k in ("platform", "cpu_count", "python", "torch")},
        **result,
    }
    out = args.out or OUT_DIR / f"bf16_{args.what}.json"
    atomic_write_json(out, report)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
