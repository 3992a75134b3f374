"""``ipslib predict CHECKPOINT (--image PATH | --mnist-index I [--canvas SIZE]) [--out DIR]``.

Classifies one image with a trained model (a run directory or its ``checkpoint.pt``; the config travels
in the checkpoint) without ever holding the image whole (see :mod:`ipslib.engine.predict`), and writes

* ``prediction.json``: per task the predicted class (or present classes) and probabilities, the kept
  patches and their scores, time and peak memory; for ``--mnist-index`` also the true labels;
* ``attention.png``: the image (a max-pooled thumbnail) with the kept patches outlined in the colour of their
  selection score, the ``--top-k`` best of them numbered and shown at full resolution with their pixel
  coordinates, and every task's class probabilities (true classes marked for ``--mnist-index``).

A progress bar on stderr counts the patches read (``--no-progress`` or ``TQDM_DISABLE=1`` hides it). The
default of one CPU thread is measured: on our 2-core machine more threads made the many small encoder calls of
streaming slower, not faster (the model card of ``outputs/models/mnist_cpu`` gives the numbers); ``--threads 0``
leaves torch's own default.

Control models (issue 16) work the same way: ``selection: random`` keeps its evaluation draw (uniform
scores), ``selection: all`` is refused when its memory estimate for the image exceeds ``memory_budget_mb``,
and ``architecture: downsampled`` reads the image band by band into its S x S input (no kept patches: the
picture is the thumbnail alone).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipslib.config import DigitSource, Split, choices

if TYPE_CHECKING:
    from ipslib.config import RunConfig
    from ipslib.engine.predict import Prediction
    from ipslib.streaming.windows import WindowSource

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify one (huge) image and draw its attention map",
        description="Classify one (possibly huge) image with a trained model, "
        "streaming its patches, and draw where the model looked.",
    )
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="run directory or checkpoint.pt")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--image", type=Path, metavar="PATH", help=".npy, .tif/.tiff (streamed) or .png/.jpg")
    what.add_argument("--mnist-index", type=int, metavar="I", help="canvas I of the model's megapixel-MNIST data")
    parser.add_argument(
        "--canvas", type=int, metavar="SIZE", help="with --mnist-index: canvas side (default: the model's)"
    )
    parser.add_argument(
        "--n-noise", type=int, metavar="K", help="with --mnist-index: noise placements (default: the model's count)"
    )
    parser.add_argument(
        "--digit-source",
        choices=choices(DigitSource),
        help="with --mnist-index: digits from full MNIST or the sample shipped with ipslib (default: the model's)",
    )
    parser.add_argument("--split", choices=choices(Split), default="test")
    parser.add_argument(
        "--min-foreground",
        type=float,
        default=0.0,
        metavar="F",
        help="patches with at most this fraction of non-blank pixels share one embedding "
        "(0: exactly blank patches only; selection unchanged)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="shuffle seed of the selection (a selection: random model keeps its evaluation draw instead)",
    )
    _output_options(parser)
    parser.set_defaults(handler=run)


def _output_options(parser: argparse.ArgumentParser) -> None:
    """Where and how ``predict`` runs, and what it writes."""
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1, measured fastest here; 0: torch's choice)"
    )
    parser.add_argument(
        "--device", default="cpu", metavar="DEVICE", help="cpu (default), cuda, cuda:N or auto (a GPU if there is one)"
    )
    parser.add_argument(
        "--top-k", type=int, default=8, metavar="K", help="kept patches shown at full resolution (default 8)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default: outputs/predictions/<image name>)",
    )


def run(args: argparse.Namespace) -> int:
    """Read the checkpoint once, classify the image, write ``prediction.json`` and ``attention.png``."""
    import torch

    from ipslib.config import ConfigError
    from ipslib.engine.predict import load_model, predict
    from ipslib.system.files import atomic_write_json

    if args.image is not None and (args.canvas or args.n_noise is not None or args.digit_source):
        raise ConfigError("--canvas, --n-noise and --digit-source go with --mnist-index, not --image")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out}: is a file; name a folder (created if missing) for prediction.json")
    if args.threads < 0 or args.top_k < 0:
        raise ConfigError("--threads and --top-k must be >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    net, cfg = load_model(args.checkpoint)
    net.to(_device(args.device))
    source, layout, name, described = _source(args, cfg)
    result = predict(
        net, cfg, source, min_foreground=args.min_foreground, seed=args.seed, progress=not args.no_progress
    )
    out = args.out or Path("outputs") / "predictions" / name
    report = _report(args, cfg, source, result, described, layout)
    atomic_write_json(out / "prediction.json", finite_json(report), strict=True)
    truth = f"  true: {report['true_labels']}" if layout is not None else ""
    title = f"{name}: " + ", ".join(f"{t}={v.get('class', v.get('present'))}" for t, v in result.tasks.items())
    _draw(source, result, title, args.top_k, report.get("true_labels")).savefig(out / "attention.png", dpi=110)
    print(f"{name}: {title.split(': ', 1)[1]}{truth}")
    side = cfg.ips.downsample_size
    what = f"{source.n_patches} patches" if cfg.ips.architecture == "ips" else f"the whole image at {side}x{side}"
    print(
        f"{what} ({result.skipped} background encodings skipped) in {result.seconds:.1f} s, "
        f"peak RSS {report['peak_rss_mb']:.0f} MB; wrote {out / 'prediction.json'} and {out / 'attention.png'}"
    )
    return 0


def _device(spec: str) -> Any:
    """``--device``: checked, and a CUDA device that is not there is an expected error."""
    from ipslib.config import ConfigError
    from ipslib.engine.runtime import resolve_device

    try:
        return resolve_device(spec)
    except RuntimeError as err:
        raise ConfigError(f"--device {spec}: {err}") from None


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None, so the JSON written is strict."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def _source(args: argparse.Namespace, cfg: RunConfig) -> tuple[WindowSource, Any, str, dict[str, Any]]:
    """(patch source, canvas layout or None, output name, what the report says about the input)."""
    from ipslib.engine.predict import image_source, mnist_source

    if args.image is not None:
        return image_source(cfg, args.image), None, args.image.stem, {"image": str(args.image)}
    source, layout = mnist_source(
        cfg,
        args.mnist_index,
        canvas=args.canvas,
        split=args.split,
        n_noise=args.n_noise,
        digit_source=args.digit_source,
    )
    described = {
        "mnist": {
            "split": args.split,
            "index": args.mnist_index,
            "canvas_size": source.height,
            "n_noise": int(len(layout.noise_patterns)),
        }
    }
    return source, layout, f"mnist_{args.split}{args.mnist_index}_{source.height}", described


def _report(
    args: argparse.Namespace,
    cfg: RunConfig,
    source: WindowSource,
    result: Prediction,
    described: dict[str, Any],
    layout: Any,
) -> dict[str, Any]:
    """The ``prediction.json`` content (peak RSS read now, after the prediction)."""
    import numpy as np

    from ipslib.system.machine import peak_memory_mb

    report = {
        "checkpoint": str(args.checkpoint),
        **described,
        "image_size": [source.height, source.width],
        "patch_size": source.patch_size,
        "stride": source.stride,
        "n_patches": source.n_patches,
        "memory_size": cfg.ips.memory_size,
        "iter_size": cfg.ips.iter_size,
        "architecture": cfg.ips.architecture,
        "selection": cfg.ips.selection,
        "downsample_size": cfg.ips.downsample_size,
        "tasks": result.tasks,
        "kept_patches": {
            "indices": result.indices.tolist(),
            "scores": result.scores.tolist(),
            "top_left": np.stack(source.origins(result.indices), axis=1).tolist(),
        },
        "background_encodings_skipped": result.skipped,
        "min_foreground": args.min_foreground,
        "seconds": result.seconds,
        "device": args.device,
        "threads": args.threads,
        "peak_rss_mb": peak_memory_mb(),
    }
    if layout is not None:
        report["true_labels"] = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in layout.labels.items()}
    return report


def _draw(source: WindowSource, result: Prediction, title: str, top_k: int, truth: dict[str, Any] | None):
    """The attention map over the source's thumbnail, the ``top_k`` gallery and the probabilities."""
    from ipslib.engine.predict import draw_attention_map, top_crops

    return draw_attention_map(
        source.thumbnail(0),
        result,
        image_shape=(source.height, source.width),
        patch_size=source.patch_size,
        stride=source.stride,
        title=title,
        crops=top_crops(source, result, top_k),
        truth=truth,
    )
