"""Attention maps of a trained IPS model: where selection looked and how the aggregation weighted it.

Two different quantities, both drawn on the patch grid (spec §1.5, §10):

* **selection scores**: the last IPS iteration's scores of the M kept patches (mean over heads and task
  tokens of a softmax over that iteration's candidates), which is what the dissertation's figures show;
* **aggregation attention**: the grad-mode pass's softmax attention of each task token over the M kept
  patches, averaged over heads, which is what the classifier actually weighs.

Indices are always the original row-major grid indices. :func:`author_style_grid` reproduces the
misplacement of the author's plotting scripts when shuffling is on (they treat positions in the shuffled
order as grid cells), so the book can show the difference. The figures are in
:mod:`ipslib.analysis.attention_plots`.

Legend: N patches, M kept patches, T task tokens, H heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ipslib.config import RunConfig
from ipslib.engine.records import CHECKPOINT_FILE

__all__ = [
    "AttentionMaps",
    "Example",
    "load_trained",
    "load_example",
    "compute_maps",
    "author_style_grid",
    "score_all_patches",
    "score_density",
    "score_summary",
    "object_overlap",
]


@dataclass
class AttentionMaps:
    """Selection and aggregation attention of one image.

    Attributes:
        grid_shape: (rows, cols) of the patch grid; patch_size, stride: in pixels.
        indices: (M,) kept patches, original row-major grid indices.
        selection_scores: (M,) last-iteration selection scores of the kept patches.
        aggregation: (T, M) aggregation attention per task token, mean over heads.
        task_names: the T tasks, token order; predictions: task -> class (multiclass) or present classes.
        order: (N,) the order in which patches entered selection (order[k] = grid index of the k-th).
    """

    grid_shape: tuple[int, int]
    patch_size: int
    stride: int
    indices: np.ndarray
    selection_scores: np.ndarray
    aggregation: np.ndarray
    task_names: list[str]
    predictions: dict[str, Any]
    order: np.ndarray

    def entry_positions(self) -> np.ndarray:
        """(M,) each kept patch's position in the entry order (what the author's scripts call its index)."""
        position = np.empty_like(self.order)
        position[self.order] = np.arange(len(self.order))
        return position[self.indices]

    def to_grid(self, values: np.ndarray | None = None) -> np.ndarray:
        """(rows, cols) float array with ``values`` (M,) (default: selection scores) in the kept patches'
        cells and NaN elsewhere."""
        return _place(self.indices, self.selection_scores if values is None else values, self.grid_shape)


@dataclass
class Example:
    """One dataset item: model input (C, H, W), display image uint8, object boxes (n, 4) row/col/h/w, labels."""

    index: int
    tensor: torch.Tensor
    image: np.ndarray
    boxes: np.ndarray
    labels: dict[str, Any]


def _place(cells: np.ndarray, values: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    out = np.full(grid[0] * grid[1], np.nan)
    out[np.asarray(cells)] = np.asarray(values, dtype=float)
    return out.reshape(grid)


def load_trained(run_dir: str | Path) -> tuple[Any, RunConfig]:
    """The trained IPSNet (eval mode, CPU) and its RunConfig from a run directory's ``checkpoint.pt``.

    The network is built without downloading pretrained encoder weights (the checkpoint holds them all).

    Raises:
        FileNotFoundError: the directory or its checkpoint does not exist (the message names the directory).
    """
    from ipslib.engine.predict import load_model

    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT_FILE).is_file():
        what = "is not a directory" if not run_dir.is_dir() else f"holds no {CHECKPOINT_FILE}"
        raise FileNotFoundError(f"run directory {run_dir} {what}: train the run first (ipslib train / ipslib run)")
    return load_model(run_dir)


def _display_dataset(cfg: RunConfig, split: str) -> Any:
    from ipslib.data.registry import entry

    return entry(cfg.dataset).open(cfg.data, split)


def load_example(cfg: RunConfig, index: int = 0, *, split: str = "test", with_object: bool = False) -> Example:
    """Item ``index`` of the run's data, or with ``with_object`` the first item from ``index`` on whose
    boxes are not empty (a traffic image with a sign). Raises IndexError when there is none."""
    from ipslib.data import build_dataset

    shown = _display_dataset(cfg, split)
    for i in range(index, len(shown)):
        image, boxes, labels = shown.display(i)
        if not with_object or len(boxes):
            return Example(i, build_dataset(cfg, split)[i][0], image, np.asarray(boxes), dict(labels))
    raise IndexError(f"no {split} item from {index} on has an object box (of {len(shown)} items)")


def _predictions(logits: dict[str, torch.Tensor], cfg: RunConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task, spec in cfg.tasks.items():
        row = logits[task][0]
        out[task] = torch.nonzero(row > 0).flatten().tolist() if spec.kind == "multilabel" else int(row.argmax())
    return out


def compute_maps(net: Any, cfg: RunConfig, image_tensor: torch.Tensor, *, seed: int = 0) -> AttentionMaps:
    """Select and aggregate one image (C, H, W) in eval mode.

    ``torch.manual_seed(seed)`` comes first, so the shuffle order and any STKIM draws (the author's masking
    also acts at test time) are reproducible; the entry order is re-drawn from the same seed, because
    :meth:`IPSNet.select` draws it first.
    """
    from ipslib.model.patches import patchify
    from ipslib.model.selection import patch_order

    patches = patchify(image_tensor, cfg.ips.patch_size, cfg.ips.stride).unsqueeze(0)  # (1, N, C, p, p)
    n = patches.shape[1]
    torch.manual_seed(seed)
    shuffled = cfg.ips.shuffle and cfg.ips.memory_size < n
    order = patch_order(n, 1, shuffle=shuffled, style=cfg.ips.shuffle_style)[0].numpy().copy()
    torch.manual_seed(seed)
    net.eval()
    with torch.no_grad():
        selection = net.select(patches)
        out = net.forward_features(selection)
    return AttentionMaps(
        grid_shape=cfg.grid_shape,
        patch_size=cfg.ips.patch_size,
        stride=cfg.ips.stride,
        indices=selection.indices[0].cpu().numpy(),
        selection_scores=selection.scores[0].float().cpu().numpy(),
        aggregation=out.attention[0].mean(dim=0).float().cpu().numpy(),  # (H, T, M) -> (T, M)
        task_names=list(cfg.tasks),
        predictions=_predictions(out.logits, cfg),
        order=order,
    )


def author_style_grid(maps: AttentionMaps, values: np.ndarray | None = None) -> np.ndarray:
    """The grid the author's scripts would draw (spec §10, P18): ``values`` of each kept patch placed at the
    cell numbered by its *position in the shuffled entry order* (row = pos // cols, col = pos % cols)
    instead of its grid index. Only this placement is reproduced, not their colours, normalisation or
    hard-coded grid sizes. Equals :meth:`AttentionMaps.to_grid` when shuffling is off."""
    values = maps.selection_scores if values is None else values
    return _place(maps.entry_positions(), values, maps.grid_shape)


def score_all_patches(net: Any, cfg: RunConfig, image_tensor: torch.Tensor, *, chunk: int = 256) -> np.ndarray:
    """Selection scores of all N patches as one candidate set: (N,) softmax over N, mean over heads and
    tokens (no STKIM). Patches are encoded in chunks; the logits are softmaxed together at the end."""
    from ipslib.model.patches import patchify
    from ipslib.model.selection import encode_unique

    patches = patchify(image_tensor, cfg.ips.patch_size, cfg.ips.stride)  # (N, C, p, p)
    logits = []
    net.eval()
    with torch.no_grad():
        for start in range(0, len(patches), chunk):
            emb = encode_unique(net.encoder, patches[start : start + chunk].float())  # (n, D)
            pos = net.positional(torch.arange(start, start + len(emb)))
            emb = emb if pos is None else emb + pos
            logits.append(net.aggregator.attention.attention_logits(emb.unsqueeze(0)))  # (1, H, T, n)
    attn = torch.cat(logits, dim=-1).softmax(dim=-1)  # (1, H, T, N)
    return attn.mean(dim=(0, 1, 2)).numpy()


def score_density(maps: AttentionMaps, all_scores: np.ndarray | None = None, *, label: str = "") -> Any:
    """Long DataFrame (columns ``score``, ``set``, ``run``) for a density plot: the kept patches'
    selection scores and, if given, the one-softmax scores of all N patches."""
    import pandas as pd

    parts = [pd.DataFrame({"score": maps.selection_scores, "set": "kept patches (last iteration)"})]
    if all_scores is not None:
        parts.append(pd.DataFrame({"score": all_scores, "set": "all patches (one softmax)"}))
    frame = pd.concat(parts, ignore_index=True)
    frame["run"] = label
    return frame


def score_summary(scores: np.ndarray, *, top: int = 10) -> dict[str, float]:
    """Spread of a score set, normalised to sum 1: count, entropy (nats), entropy / log(count), and the
    share of the ``top`` largest scores."""
    p = np.asarray(scores, dtype=float)
    p = p / p.sum()
    nonzero = p[p > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum())
    return {
        "n": len(p),
        "entropy": entropy,
        "normalised entropy": entropy / math.log(len(p)) if len(p) > 1 else 0.0,
        f"top-{top} share": float(np.sort(p)[::-1][:top].sum()),
    }


def object_overlap(grid: np.ndarray, boxes: np.ndarray, *, patch_size: int, stride: int) -> dict[str, float]:
    """How often the filled cells of ``grid`` (the kept patches) touch an object box, against a blind choice.

    Returns:
        ``kept``, ``on_object`` (kept cells touching a box), ``share`` (their fraction), ``blind_share``
        (fraction of all cells touching a box) and ``p_value``: the chance that ``kept`` cells drawn
        uniformly without replacement touch an object at least ``on_object`` times (hypergeometric tail).
    """
    rows, cols = grid.shape
    top, left = np.meshgrid(np.arange(rows) * stride, np.arange(cols) * stride, indexing="ij")
    hit = np.zeros(grid.shape, dtype=bool)
    for r, c, h, w in np.asarray(boxes).reshape(-1, 4):
        hit |= (top < r + h) & (top + patch_size > r) & (left < c + w) & (left + patch_size > c)
    filled = ~np.isnan(grid)
    n, k, m, x = hit.size, int(hit.sum()), int(filled.sum()), int(hit[filled].sum())
    tail = sum(math.comb(k, i) * math.comb(n - k, m - i) for i in range(x, min(k, m) + 1)) / math.comb(n, m)
    return {
        "kept": m,
        "on_object": x,
        "share": x / m if m else float("nan"),
        "blind_share": k / n,
        "p_value": float(tail),
    }
