"""How often the author's STKIM evicts a salient patch from IPS's memory: closed form and simulation (spec §5).

The author's form (``stkim_mode="seed_selection"``) masks, at every IPS iteration, each of the top-K
selection scores independently with probability P (score · 0), in training and at test time. A masked
patch drops out of the top M and never comes back. Take one *salient* patch, one that would stay in the
top K whenever it is not masked. It enters selection at a position of the (shuffled) patch order: the
first M positions form the initial memory, the rest arrive in chunks of I. With n_iter = ceil((N − M) / I)
iterations, a patch of the initial memory is scored r = n_iter times and a patch of chunk j (1-based)
r = n_iter − j + 1 times, so it survives with probability (1 − q)^r, where q = P (Bernoulli sampling) or
floor(K·P)/K (ACMIL's exact-fraction sampling). Shuffling places it uniformly, so the average survival is
the chunk-size-weighted mean of those terms.

Assumptions: the salient patch is the top-scoring candidate whenever unmasked (so it is always among the
top K and masking is its only way out); at most I' (the chunk's size) entries are masked at once, so a
zero score always falls out of the top M. When K exceeds the smallest chunk, more than I' masks can occur
and a zeroed patch may stay by a tie, so the formula is then a lower bound on survival.

Legend: N patches per image, M memory size, I iteration size, K eligible top entries, P masking probability.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ipslib.config.options import STKIMSampling, choice_error

if TYPE_CHECKING:
    from ipslib.config import RunConfig

__all__ = [
    "spearman",
    "n_iterations",
    "mask_probability",
    "survival_by_position",
    "survival_probability",
    "config_survival",
    "simulate_survival",
    "baseline_config",
]


def spearman(x, y) -> float:
    """Spearman's rank correlation (Pearson on average ranks; ties share their mean rank), without scipy."""
    import pandas as pd

    x, y = pd.Series(x, dtype=float).reset_index(drop=True), pd.Series(y, dtype=float).reset_index(drop=True)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"spearman needs two sequences of equal length >= 2, got {len(x)} and {len(y)}")
    return float(x.rank().corr(y.rank()))


def n_iterations(n_patches: int, memory_size: int, iter_size: int) -> int:
    """n_iter = ceil((N − M) / I), 0 when M >= N (IPS keeps every patch without scoring iterations)."""
    if min(n_patches, memory_size, iter_size) < 1:
        raise ValueError(f"need N, M, I >= 1; got {n_patches}, {memory_size}, {iter_size}")
    return max(0, math.ceil((n_patches - memory_size) / iter_size))


def mask_probability(p: float, *, k: int | None = None, sampling: str = "bernoulli") -> float:
    """Chance that one top-K entry is masked in one iteration: P, or floor(K·P)/K for ``exact_fraction``."""
    if not 0 <= p <= 1:
        raise ValueError(f"p={p!r} must be in [0, 1]")
    if sampling == "bernoulli":
        return float(p)
    if sampling == "exact_fraction":
        if not k:
            raise ValueError("sampling='exact_fraction' needs k >= 1")
        return math.floor(k * p) / k
    raise ValueError(choice_error("sampling", sampling, STKIMSampling))


def survival_by_position(n_patches: int, memory_size: int, iter_size: int, p: float) -> np.ndarray:
    """Survival of a salient patch entering at each position 0..N−1 of the selection order.

    Returns:
        (N,) float: (1 − p)^r with r = n_iter for positions < M and n_iter − j + 1 for chunk j.
    """
    n_iter = n_iterations(n_patches, memory_size, iter_size)
    if n_iter == 0:
        return np.ones(n_patches)
    position = np.arange(n_patches)
    chunk = np.where(position < memory_size, 1, (position - memory_size) // iter_size + 1)  # memory = chunk 1
    return (1.0 - p) ** (n_iter - chunk + 1)


def survival_probability(n_patches: int, memory_size: int, iter_size: int, p: float) -> float:
    """Average survival of a uniformly placed salient patch (spec §5), e.g. 0.39 for N=900, M=I=100, P=0.2."""
    return float(survival_by_position(n_patches, memory_size, iter_size, p).mean())


def config_survival(cfg: RunConfig) -> float:
    """Test-time survival of a salient patch under a run's STKIM settings.

    1.0 when the selection is not masked at test time: STKIM off, ACMIL's aggregation masking, or the
    author's masking with ``stkim_in_eval=False``.
    """
    s = cfg.stkim
    if not (s.active and s.stkim_mode == "seed_selection" and s.in_eval):
        return 1.0
    q = mask_probability(s.stkim_p, k=s.stkim_k, sampling=s.sampling)
    return survival_probability(cfg.n_patches, cfg.ips.memory_size, cfg.ips.iter_size, q)


def simulate_survival(
    n_patches: int,
    memory_size: int,
    iter_size: int,
    p: float,
    *,
    k: int = 10,
    n_images: int = 4000,
    seed: int = 0,
    sampling: str = "bernoulli",
) -> float:
    """Monte-Carlo survival through ipslib's own selection loop and STKIM masking.

    Each of ``n_images`` toy images has one salient patch (grid index 0) whose raw score beats every
    other patch; every image gets its own random entry order (``instance`` shuffling), and the candidate
    scores go through :func:`ipslib.model.stkim.mask_scores` inside :func:`ipslib.model.selection.iterative_select`,
    exactly as :meth:`IPSNet.select` does. Returns the share of images that keep the salient patch.
    """
    import torch

    from ipslib.model.selection import iterative_select, patch_order
    from ipslib.model.sources import DensePatches
    from ipslib.model.stkim import mask_scores

    if memory_size >= n_patches:
        return 1.0
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        raw = torch.rand(n_images, n_patches)  # (B, N) in [0, 1)
        raw[:, 0] = 2.0
        patches = raw.view(n_images, n_patches, 1, 1, 1)  # each "patch" carries its raw score

        def score(emb: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
            scores = emb[..., 0].softmax(dim=-1)  # (B, L), positive like the real scores
            return mask_scores(scores, k=k, p=p, sampling=sampling) if p > 0 else scores

        order = patch_order(n_patches, n_images, shuffle=True, style="instance")
        indices, _ = iterative_select(
            DensePatches(patches),
            encode=lambda x, _blank: x.flatten(2),
            score=score,
            memory_size=memory_size,
            iter_size=iter_size,
            order=order,
            device=torch.device("cpu"),
        )
        return float((indices == 0).any(dim=1).float().mean())
    finally:
        torch.random.set_rng_state(gen_state)


def baseline_config(cfg: RunConfig) -> RunConfig:
    """The same run without STKIM (K = P = 0, default mode): its result is the reference for the drop."""
    return cfg.replace(stkim_k=0, stkim_p=0.0, stkim_mode="seed_selection", stkim_sampling=None, stkim_in_eval=None)
