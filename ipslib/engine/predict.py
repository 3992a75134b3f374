"""Classify one (possibly huge) image with a trained IPS model and draw where it looked.

The image is never held whole: patches come from a streaming source (:mod:`ipslib.data.mnist_patches`,
:mod:`ipslib.streaming.disk`), selection keeps M + I embeddings, background patches share one embedding
(:func:`ipslib.streaming.windows.skip_blank_patches`), and the attention map is drawn over a max-pooled thumbnail
read band by band. Memory therefore depends on M, I and the model, not on the image (one exception: a
model with ``use_pos`` holds an (N, D) positional table, 4·N·D bytes).

The attention map (:mod:`ipslib.engine.predict_figure`) shows the selection scores of the M kept patches
(last selection iteration, spec §1.5) at their positions in the original patch grid, the best of them at full
resolution (:func:`top_crops`) and the class probabilities.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ipslib.config import ConfigError, MegapixelMNISTConfig, RunConfig
from ipslib.config.memory import check_all_selection
from ipslib.engine.predict_figure import Crop, draw_attention_map, score_order
from ipslib.engine.records import CHECKPOINT_FILE
from ipslib.engine.whole_image import downsample_source
from ipslib.streaming.windows import WindowSource, pixels_to_float, skip_blank_patches

__all__ = [
    "Prediction",
    "load_model",
    "predict",
    "score_grid",
    "top_crops",
    "draw_attention_map",
    "mnist_source",
    "image_source",
]


@dataclass
class Prediction:
    """What :func:`predict` returns for one image.

    Attributes:
        tasks: task name -> {"probabilities": list, and "class" (multiclass) or "present" (multilabel)}.
        indices: (M,) kept patch indices in the row-major grid; scores: (M,) their selection scores
            (uniform for the random and all arms; both empty for the downsampled model).
        grid: (rows, cols) of the patch grid.
        seconds: selection + aggregation wall time.
        skipped: encoder inputs answered with the shared background embedding (with ``dedup_blank``
            the identical blank patches of a chunk reach the encoder once, so this counts chunks, not patches).
    """

    tasks: dict[str, dict[str, Any]]
    indices: np.ndarray
    scores: np.ndarray
    grid: tuple[int, int]
    seconds: float
    skipped: int


def load_model(checkpoint: str | Path):
    """The network (IPSNet or a control, :func:`~ipslib.model.controls.build_model`) in eval mode and its
    RunConfig, from a run directory or its ``checkpoint.pt``.

    The model classifies images of any size: positional encodings are computed per patch index on demand.

    Raises:
        FileNotFoundError: no checkpoint there. CheckpointError: the file is damaged (its content hash does
            not match), unreadable or not an ipslib checkpoint (:func:`ipslib.engine.checkpoint.load_checkpoint`).
    """
    from ipslib.engine.checkpoint import load_checkpoint
    from ipslib.model.controls import build_model
    from ipslib.system.errors import CheckpointError

    path = Path(checkpoint)
    path = path / CHECKPOINT_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"CHECKPOINT {checkpoint}: no such file or run directory with {CHECKPOINT_FILE}")
    ckpt = load_checkpoint(path)
    try:
        cfg = RunConfig.from_flat(ckpt["config"], where=str(path))
        state = ckpt["model"]
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"CHECKPOINT {path}: not an ipslib checkpoint ({type(err).__name__}: {err})") from None
    encoder = dataclasses.replace(cfg.encoder, weights="none", weights_path="")  # the checkpoint has the weights
    net = build_model(dataclasses.replace(cfg, encoder=encoder))
    net.load_state_dict(state)
    return net.eval(), cfg


def _task_outputs(logits: dict[str, torch.Tensor], cfg: RunConfig) -> dict[str, dict[str, Any]]:
    out = {}
    for task, spec in cfg.tasks.items():
        row = logits[task][0].float()
        if spec.kind == "multilabel":
            probs = torch.sigmoid(row)
            out[task] = {"present": torch.nonzero(probs > 0.5).flatten().tolist(), "probabilities": probs.tolist()}
        else:
            probs = torch.softmax(row, dim=0)
            out[task] = {"class": int(probs.argmax()), "probabilities": probs.tolist()}
    return out


@contextlib.contextmanager
def _progress_bar(source: WindowSource, enabled: bool) -> Iterator[None]:
    """A tqdm bar (stderr) of the patches read so far, counted where the selection asks the source for them."""
    from tqdm.auto import tqdm

    bar = tqdm(total=source.n_patches, unit="patch", desc="scoring", disable=not enabled, leave=False)
    take = source.take

    def counted(indices: torch.Tensor) -> torch.Tensor:
        bar.update(min(int(indices.shape[-1]), bar.total - bar.n))  # the final gather of the kept M too
        return take(indices)

    source.take = counted  # an instance attribute: the class's method is back after ``del``
    try:
        yield
    finally:
        del source.take
        bar.close()


def _check_memory(cfg: RunConfig, source: WindowSource) -> None:
    """``selection: all`` holds every patch at once: refused when that would not fit ``memory_budget_mb``."""
    check_all_selection(
        cfg.encoder,
        in_channels=cfg.in_channels,
        patch_size=cfg.ips.patch_size,
        n_patches=source.n_patches,
        batch_size=1,
        budget_mb=cfg.ips.memory_budget_mb,
        gradients=False,
        where=f"selection='all' on this {source.height}x{source.width} image",
    )


def predict(
    net,
    cfg: RunConfig,
    source: WindowSource,
    *,
    min_foreground: float = 0.0,
    seed: int = 0,
    progress: bool = False,
) -> Prediction:
    """Select and aggregate one image (batch of one) in eval mode, background patches skipped.

    ``seed`` fixes the shuffle order of selection (and STKIM draws in eval, if the model uses them); a
    ``selection: random`` model keeps its evaluation draw (``selection_seed`` and the image's content).
    ``selection: all`` is refused (ConfigError naming the estimate and ``memory_budget_mb``) when holding
    every patch and passing them through the trunk at once would not fit; the downsampled model reads the
    image band by band (:func:`~ipslib.engine.whole_image.downsample_source`) and keeps no patches. The network
    runs on its device (patches move there chunk by chunk); ``progress`` shows a bar of the patches read.
    """
    if source.batch_size != 1:
        raise ValueError(f"predict classifies one image; the source holds {source.batch_size}")
    if source.channels != cfg.in_channels:
        raise ConfigError(f"the image has {source.channels} channel(s) but the model expects {cfg.in_channels}")
    if (source.patch_size, source.stride) != (cfg.ips.patch_size, cfg.ips.stride):
        raise ValueError("the source must cut patches of the model's patch_size and stride")
    whole = cfg.ips.architecture == "downsampled"
    if cfg.ips.selection == "all" and not whole:
        _check_memory(cfg, source)
    torch.manual_seed(seed)
    net.eval()
    start = time.perf_counter()
    with torch.no_grad(), skip_blank_patches(net, min_foreground=min_foreground) as wrapper:
        with _progress_bar(source, progress and not whole):
            selection = net.select(downsample_source(source, 0, cfg.ips.downsample_size) if whole else source)
        logits = net(selection)
    seconds = time.perf_counter() - start
    kept = slice(0, 0) if whole else slice(None)  # the downsampled model keeps no patches of the grid
    return Prediction(
        tasks=_task_outputs(logits, cfg),
        indices=selection.indices[0, kept].cpu().numpy(),
        scores=selection.scores[0, kept].float().cpu().numpy(),
        grid=source.grid,
        seconds=seconds,
        skipped=wrapper.skipped,
    )


def top_crops(source: WindowSource, prediction: Prediction, k: int = 8) -> list[Crop]:
    """The ``k`` kept patches of highest score, read again from the source at full resolution (best first)."""
    p = source.patch_size
    tops, lefts = source.origins(prediction.indices)
    crops = []
    for i in score_order(prediction.scores)[:k]:
        raw = source.read_window(0, int(tops[i]), int(lefts[i]), p, p)  # (C, p, p)
        pixels = pixels_to_float(raw).numpy()
        crops.append(
            Crop(
                pixels[0] if len(pixels) == 1 else pixels.transpose(1, 2, 0),
                int(tops[i]),
                int(lefts[i]),
                float(prediction.scores[i]),
            )
        )
    return crops


def score_grid(indices: np.ndarray, scores: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """float32 (rows, cols): the kept patches' scores at their grid cells, NaN elsewhere."""
    out = np.full(grid[0] * grid[1], np.nan, dtype=np.float32)
    out[np.asarray(indices)] = scores
    return out.reshape(grid)


def mnist_source(
    cfg: RunConfig,
    index: int,
    *,
    canvas: int | None = None,
    split: str = "test",
    n_noise: int | None = None,
    digit_source: str | None = None,
):
    """(source, layout) for canvas ``index`` of the model's megapixel-MNIST data, optionally resized."""
    from ipslib.data.megapixel_mnist import MegapixelMNIST
    from ipslib.data.mnist_patches import MegapixelPatchSource
    from ipslib.data.registry import entry

    if not entry(cfg.dataset).layout_streaming:
        raise ConfigError(f"--mnist-index needs a megapixel-MNIST model; this one was trained on {cfg.dataset}")
    changes = {
        k: v
        for k, v in (("canvas_size", canvas), ("n_noise", n_noise), ("digit_source", digit_source))
        if v is not None
    }
    data: MegapixelMNISTConfig = dataclasses.replace(cfg.data, **changes)
    dataset = MegapixelMNIST(data, split)
    if not 0 <= index < len(dataset):
        raise ConfigError(
            f"--mnist-index {index} is out of range: the {split} split of this model's data has "
            f"{len(dataset)} canvases (0..{len(dataset) - 1})"
        )
    layout = dataset.layout(index)
    return MegapixelPatchSource.from_layouts([layout], cfg.ips.patch_size, cfg.ips.stride), layout


def image_source(cfg: RunConfig, path: str | Path) -> WindowSource:
    """A streaming source for an image file (.npy, .tif/.tiff, .png, .jpg/.jpeg) cut like the model's data, its
    file and pixels checked first (:mod:`ipslib.engine.image_checks`: float pixels in [0, 1], all finite)."""
    from ipslib.engine.image_checks import open_checked_image

    return open_checked_image(path, cfg.ips.patch_size, cfg.ips.stride, channels=cfg.in_channels)
