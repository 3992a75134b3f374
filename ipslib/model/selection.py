"""The iterative patch-selection loop of IPS (spec §1.2) and its helpers, independent of any model.

The loop keeps a memory of M patch embeddings, scores it together with the next chunk of at most I
patches, and keeps the top M; it therefore never holds more than M + I embeddings. Encoding and scoring
are passed in as functions, so the loop knows nothing about encoders, positional encodings or STKIM.

Legend: B batch, N patches per image, M memory size, I iteration (chunk) size, D embedding width,
C, p channels and side of a patch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ipslib.config import ConfigError, ShuffleStyle, choices
from ipslib.model.sources import PatchSource, known_blank

__all__ = ["Selection", "patch_order", "iterative_select", "encode_unique", "SHUFFLE_STYLES"]

SHUFFLE_STYLES = choices(ShuffleStyle)
Encode = Callable[[Tensor, Tensor | None], Tensor]
Score = Callable[[Tensor, Tensor], Tensor]


@dataclass
class Selection:
    """The M patches kept per image.

    Attributes:
        patches: (B, M, C, p, p) the kept patches.
        indices: (B, M) long, their row-major indices in the original (un-shuffled) patch grid.
        scores: (B, M) their selection scores from the last iteration (mean over heads and tokens of the
            softmax over that iteration's candidates; STKIM-masked entries are 0).
    """

    patches: Tensor
    indices: Tensor
    scores: Tensor


def patch_order(n_patches: int, batch_size: int, *, shuffle: bool, style: ShuffleStyle) -> Tensor:
    """The order in which patches enter the selection.

    ``batch`` style draws one ``randperm`` for the whole batch, ``instance`` style one per image
    (``argsort`` of uniform draws), both from torch's global generator; no draws without shuffling.

    Returns:
        (B, N) long on the CPU, each row a permutation of 0..N-1.
    """
    if style not in SHUFFLE_STYLES:
        raise ConfigError(f"shuffle_style={style!r} is not valid; choose one of {', '.join(map(repr, SHUFFLE_STYLES))}")
    if not shuffle:
        return torch.arange(n_patches).expand(batch_size, n_patches)
    if style == "batch":
        return torch.randperm(n_patches).expand(batch_size, n_patches)
    return torch.rand(batch_size, n_patches).argsort(dim=1)


def _row_keys(flat: Tensor) -> Tensor:
    """A cheap hash of each row: (n, d) -> (n,) float64 random projection.

    Equal rows get equal keys; unequal rows that collide are caught by the exact check in
    :func:`encode_unique`. The projection comes from a private generator, so hashing never touches the
    global RNG (shuffling and STKIM draws stay the same with de-duplication on or off).
    """
    gen = torch.Generator().manual_seed(0x1F5)
    weights = torch.randn(flat.shape[1], generator=gen, dtype=torch.float64).to(flat.device)  # (d,)
    return flat.to(torch.float64) @ weights  # (n,)


def _encode_distinct(encoder: nn.Module, x: Tensor) -> Tensor:
    """encoder(x) (n, D), computed once per distinct row: the encoder sees the distinct rows in order of first
    occurrence (a hash collision only costs one extra row)."""
    n = x.shape[0]
    flat = x.reshape(n, -1)  # (n, C·p·p)
    _, inverse = torch.unique(_row_keys(flat), return_inverse=True)  # (n,)
    arange = torch.arange(n, device=x.device)
    first = torch.full((int(inverse.max()) + 1,), n, device=x.device).scatter_reduce(
        0, inverse, arange, reduce="amin"
    )  # first row of each key
    rep = first[inverse]  # (n,)
    same = (flat == flat[rep]).all(dim=1)
    source = torch.where(same, rep, arange)
    rows, slot = torch.unique(source, return_inverse=True)
    return encoder(x[rows])[slot]  # (n, D)


def encode_unique(encoder: nn.Module, x: Tensor, blank: Tensor | None = None) -> Tensor:
    """Encode each distinct patch once and copy its embedding to its duplicates.

    Exact only when the encoder treats samples independently (eval mode: BatchNorm running statistics).
    Duplicates are found by hashing the patches and confirmed by an exact comparison, so a hash
    collision costs one extra encoding, never a wrong embedding. Typical use: the blank patches that
    make up most of a megapixel canvas.

    ``blank`` marks rows known to be all zeros (from the source's layout, :func:`~ipslib.model.sources.known_blank`);
    they are neither hashed nor compared: the first of them stands for all. The encoder then receives the
    very tensor it receives without ``blank`` (the distinct rows in order of first occurrence, the zero patch
    at its first position), so the embeddings are bit-identical, at the cost of the non-blank rows only.

    Args:
        encoder: maps (n, C, p, p) to (n, D).
        x: (n, C, p, p) patches (rows marked blank must be zeros; their values are not read).
        blank: (n,) bool or None.
    Returns:
        (n, D) embeddings.
    """
    if blank is None or not bool(blank.any()):
        return _encode_distinct(encoder, x)
    blank = blank.to(x.device)
    first_blank = int(blank.nonzero()[0, 0])
    keep = ~blank
    keep[first_blank] = True  # the one blank row that is encoded
    compact = keep.nonzero().flatten()  # (k,) ascending: relative order kept
    emb = _encode_distinct(encoder, x[compact])  # (k, D)
    slot = keep.cumsum(0) - 1  # (n,) row of each kept row in ``compact``
    slot = torch.where(blank, slot[first_blank], slot)
    return emb[slot]  # (n, D)


def _gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """x (B, L, D), index (B, k) -> (B, k, D)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def iterative_select(
    source: PatchSource,
    *,
    encode: Encode,
    score: Score,
    memory_size: int,
    iter_size: int,
    order: Tensor,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """Run the IPS loop (spec §1.2 steps 5-6); call under ``torch.no_grad``.

    Args:
        source: B images of N > M patches.
        encode: (B, k, C, p, p) patches on ``device`` and their known-blank mask (B, k) bool or None
            (:func:`~ipslib.model.sources.known_blank`) -> (B, k, D) embeddings.
        score: embeddings (B, L, D) and their original indices (B, L) -> (B, L) scores.
        memory_size: M.
        iter_size: I.
        order: (B, N) the order in which patches enter (a permutation of 0..N-1 per image).
        device: where embeddings and indices live.
    Returns:
        indices (B, M) of the kept patches in the original grid and their last-iteration scores (B, M).
    """
    m, n = memory_size, source.n_patches
    if m >= n:
        raise ValueError(f"iterative_select needs memory_size < n_patches; got {m} >= {n}")
    first = order[:, :m]  # (B, M), indexes the source where the order lives (the CPU)
    mem_emb = encode(source.take(first).to(device), known_blank(source, first))  # (B, M, D)
    mem_idx = first.to(device)
    mem_scores = torch.empty(0)
    for start in range(m, n, iter_size):
        chunk = order[:, start : start + iter_size]  # (B, I')
        new = encode(source.take(chunk).to(device), known_blank(source, chunk))  # (B, I', D)
        emb = torch.cat([mem_emb, new], dim=1)  # (B, M + I', D)
        idx = torch.cat([mem_idx, chunk.to(device)], dim=1)  # (B, M + I')
        mem_scores, top = score(emb, idx).topk(m, dim=1)  # (B, M)
        mem_emb, mem_idx = _gather_rows(emb, top), idx.gather(1, top)
    return mem_idx, mem_scores
