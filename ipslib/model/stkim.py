"""Stochastic top-K instance masking (STKIM, spec §5): choose entries among the top K to mask.

Two users: the author's form masks IPS *selection scores* at every iteration (``score * 0``, so masked
patches fall out of the memory), ACMIL's form masks aggregation *attention logits* (-1e9 before the
softmax). Both draw their random numbers from torch's global generator on the tensor's device, so the
run's seed controls them; callers draw nothing when STKIM is off.

Reference: Zhang et al., "Attention-Challenging Multiple Instance Learning for Whole Slide Image
Classification" (ACMIL), 2023.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ipslib.config import ConfigError, STKIMSampling, choices

__all__ = ["SAMPLING_CHOICES", "top_k_mask", "mask_scores", "mask_logits", "MASKED_LOGIT"]

SAMPLING_CHOICES = choices(STKIMSampling)
MASKED_LOGIT = -1e9  # ACMIL's value; exp underflows to exactly 0 after the softmax


def top_k_mask(values: Tensor, *, k: int, p: float, sampling: STKIMSampling) -> Tensor:
    """Pick entries to mask among the top ``k`` of each row (last dimension).

    Args:
        values: (..., L) scores or logits.
        k: K, how many of the largest entries are eligible (clipped to L).
        p: P, masking probability (``bernoulli``: each of the K independently) or fraction
            (``exact_fraction``: exactly int(K·P) of them, chosen uniformly).
        sampling: ``"bernoulli"`` (the author's code) or ``"exact_fraction"`` (ACMIL).
    Returns:
        (..., L) boolean mask, True where an entry is masked.
    """
    if sampling not in SAMPLING_CHOICES:
        raise ConfigError(f"sampling={sampling!r} is not valid; choose one of {', '.join(map(repr, SAMPLING_CHOICES))}")
    if k < 1 or not 0 <= p <= 1:
        raise ValueError(f"need k >= 1 and 0 <= p <= 1; got k={k}, p={p}")
    k = min(k, values.shape[-1])
    top = values.topk(k, dim=-1).indices  # (..., K)
    draws = torch.rand(top.shape, device=values.device)  # (..., K)
    if sampling == "bernoulli":
        chosen = draws < p
    else:
        ranks = draws.argsort(dim=-1).argsort(dim=-1)  # uniform random permutation of 0..K-1 per row
        chosen = ranks < int(k * p)
    return torch.zeros_like(values, dtype=torch.bool).scatter(-1, top, chosen)


def mask_scores(scores: Tensor, *, k: int, p: float, sampling: STKIMSampling) -> Tensor:
    """The author's STKIM: multiply the chosen top-K selection scores (B, L) by 0."""
    return scores.masked_fill(top_k_mask(scores, k=k, p=p, sampling=sampling), 0.0)


def mask_logits(logits: Tensor, *, k: int, p: float, sampling: STKIMSampling) -> Tensor:
    """ACMIL's STKIM: set the chosen top-K attention logits (B, H, T, L) to -1e9 before the softmax."""
    return logits.masked_fill(top_k_mask(logits, k=k, p=p, sampling=sampling), MASKED_LOGIT)
