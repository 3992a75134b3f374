"""Classify one (possibly huge) image with a trained IPS model and draw where it looked.

The image is never held whole: patches come from a streaming source (:mod:`ipslib.data.mnist_patches`,
:mod:`ipslib.streaming.disk`), selection keeps M + I embeddings, background patches share one embedding
(:func:`ipslib.streaming.windows.skip_blank_patches`), and the attention map is drawn over a max-pooled thumbnail
read band by band. Memory therefore depends on M, I and the model, not on the image (one exception: a
model with ``use_pos`` holds an (N, D) positional table, 4·N·D bytes).

The attention map shows the selection scores of the M kept patches (last selection iteration, spec §1.5)
at their positions in the original patch grid.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ipslib.config import ConfigError, MegapixelMNISTConfig, RunConfig
from ipslib.config.memory import check_all_selection
from ipslib.engine.records import CHECKPOINT_FILE
from ipslib.engine.whole_image import downsample_source
from ipslib.streaming.windows import WindowSource, skip_blank_patches

__all__ = ["Prediction", "load_model", "predict", "score_grid", "draw_attention_map", "mnist_source", "image_source"]


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


def predict(net, cfg: RunConfig, source: WindowSource, *, min_foreground: float = 0.0, seed: int = 0) -> Prediction:
    """Select and aggregate one image (batch of one) in eval mode, background patches skipped.

    ``seed`` fixes the shuffle order of selection (and STKIM draws in eval, if the model uses them); a
    ``selection: random`` model keeps its evaluation draw (``selection_seed`` and the image's content).
    ``selection: all`` is refused (ConfigError naming the estimate and ``memory_budget_mb``) when holding
    every patch and passing them through the trunk at once would not fit; the downsampled model reads the
    image band by band (:func:`~ipslib.engine.whole_image.downsample_source`) and keeps no patches.
    """
    if source.batch_size != 1:
        raise ValueError(f"predict classifies one image; the source holds {source.batch_size}")
    if source.channels != cfg.in_channels:
        raise ConfigError(f"the image has {source.channels} channel(s) but the model expects {cfg.in_channels}")
    if (source.patch_size, source.stride) != (cfg.ips.patch_size, cfg.ips.stride):
        raise ValueError("the source must cut patches of the model's patch_size and stride")
    whole = cfg.ips.architecture == "downsampled"
    if cfg.ips.selection == "all" and not whole:
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
    torch.manual_seed(seed)
    net.eval()
    start = time.perf_counter()
    with torch.no_grad(), skip_blank_patches(net, min_foreground=min_foreground) as wrapper:
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


def score_grid(indices: np.ndarray, scores: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """float32 (rows, cols): the kept patches' scores at their grid cells, NaN elsewhere."""
    out = np.full(grid[0] * grid[1], np.nan, dtype=np.float32)
    out[np.asarray(indices)] = scores
    return out.reshape(grid)


def draw_attention_map(
    thumbnail: np.ndarray,
    prediction: Prediction,
    *,
    image_shape: tuple[int, int],
    patch_size: int,
    stride: int,
    title: str = "",
):
    """A Figure: the thumbnail in grey, the kept patches as squares coloured by selection score.

    Args:
        thumbnail: (h, w) max-pooled image, drawn stretched over the full ``image_shape``.
        prediction: the kept patches (``indices``, ``scores``, ``grid``) to draw.
        image_shape: (height, width) of the original image in pixels.
        patch_size, stride: how the patch grid was cut, to place each kept patch.
        title: the axes title.
    """
    from matplotlib.figure import Figure

    height, width = image_shape
    fig = Figure(figsize=(7.6, 6.4 * height / width + 0.5), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(
        thumbnail,
        cmap="gray",
        vmin=0,
        vmax=max(float(thumbnail.max()), 1e-6),
        extent=(0, width, height, 0),
        interpolation="nearest",
    )
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(prediction.scores):  # a whole-image model keeps no patches: the thumbnail alone
        colours = _score_colours(prediction.scores)
        side = max(patch_size, 0.006 * max(height, width))  # keep squares visible on huge images
        _draw_kept_patches(ax, prediction, colours, stride=stride, side=side)
        bar = fig.colorbar(colours, ax=ax, shrink=0.7, label="selection score of kept patch")
        bar.formatter.set_useOffset(False)
    return fig


def _score_colours(scores: np.ndarray):
    """A red-to-yellow ScalarMappable over the scores' range (widened when the scores are nearly equal)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    low, high = float(scores.min()), float(scores.max())
    if high - low <= 1e-6 * max(abs(high), 1e-12):
        low, high = low - 0.05 * abs(low) - 1e-9, high + 0.05 * abs(high) + 1e-9
    return ScalarMappable(norm=Normalize(low, high), cmap="autumn")  # red to yellow: visible on black


def _draw_kept_patches(ax, prediction: Prediction, colours, *, stride: int, side: float) -> None:
    """One square of ``side`` pixels per kept patch at its grid position, filled and edged by its score."""
    from matplotlib.patches import Rectangle

    rows, cols = np.divmod(prediction.indices, prediction.grid[1])
    for r, c, s in zip(rows, cols, prediction.scores):
        ax.add_patch(
            Rectangle(
                (c * stride, r * stride),
                side,
                side,
                facecolor=colours.to_rgba(s, alpha=0.35),
                edgecolor=colours.to_rgba(s),
                linewidth=1.0,
            )
        )


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
