"""Cross-attention aggregation of patch embeddings with learned task queries (spec §3).

One learned query token per task attends over the patch embeddings (the ``AttentionPoolLatent`` pattern
of timm). The same module scores candidates during iterative patch selection (:meth:`Aggregator.get_scores`)
and aggregates the selected patches (:meth:`Aggregator.forward`). Optional semantic branches turn each
head's output into task logits for the semantic regulariser (spec §3.5, §4.3).

References: Bergner et al., "Iterative Patch Selection for High-Resolution Image Classification", ICLR 2023;
Vaswani et al. 2017; Zhang et al. 2023 (ACMIL).

Legend for shape comments: B batch, L candidate patches, T task tokens, H heads, D embedding width,
D_k = D_v head width.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ipslib.config import AggregatorConfig, ConfigError, SemanticHeads, TaskSpec, choices

__all__ = [
    "AggregatorOutput",
    "Aggregator",
    "CrossAttention",
    "MLPBlock",
    "sinusoidal_table",
    "sinusoidal_rows",
    "SEMANTIC_HIDDEN",
    "SEMANTIC_HEAD_CHOICES",
]

SEMANTIC_HIDDEN = 128  # width of the paper's per-head semantic MLPs (DIS Eq. 12: three 128-unit layers)
SEMANTIC_HEAD_CHOICES = choices(SemanticHeads)
LogitMask = Callable[[Tensor], Tensor]


@dataclass
class AggregatorOutput:
    """What one aggregation pass produces.

    Attributes:
        logits: task name -> (B, n_classes) logits (no softmax / sigmoid applied).
        attention: (B, H, T, M) softmax attention of each head and task token over the M patches, before
            attention dropout (after STKIM masking when ACMIL masking is active).
        head_outputs: (B, H, T, D_v) per-head attention outputs A·V (with attention dropout in training).
        branch_logits: task name -> (B, H, n_classes) logits of the per-head semantic branches, or None
            when the model has no semantic branches.
    """

    logits: dict[str, Tensor]
    attention: Tensor
    head_outputs: Tensor
    branch_logits: dict[str, Tensor] | None = None


def sinusoidal_rows(positions: Tensor, dim: int) -> Tensor:
    """Rows of the 1-D sinusoidal positional encoding (spec §1.4) for integer ``positions``, on demand.

    Computed in float64 and returned as float32, so a row is the same whether it comes from a whole table
    or alone; nothing of size N is ever held, however large the image.

    Returns:
        (*positions.shape, dim) with pe[n, 2i] = sin(n·10000^(-2i/dim)) and pe[n, 2i+1] = cos(same).
    """
    if dim % 2:
        raise ValueError(f"sinusoidal positional encoding needs an even width; got {dim}")
    freq = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) * (-math.log(10000.0) / dim)
    )  # (D / 2,)
    angle = positions.to(torch.float64).unsqueeze(-1) * freq  # (..., D / 2)
    rows = torch.empty(*positions.shape, dim, dtype=torch.float64, device=positions.device)
    rows[..., 0::2] = torch.sin(angle)
    rows[..., 1::2] = torch.cos(angle)
    return rows.float()


def sinusoidal_table(n_positions: int, dim: int) -> Tensor:
    """The whole (n_positions, dim) table of :func:`sinusoidal_rows`."""
    return sinusoidal_rows(torch.arange(n_positions), dim)


class CrossAttention(nn.Module):
    """Multi-head cross-attention of T learned query tokens over L patch embeddings (spec §3.2)."""

    def __init__(
        self, *, embed_dim: int, n_tokens: int, n_heads: int, head_dim: int, attn_dropout: float, dropout: float
    ) -> None:
        super().__init__()
        if min(embed_dim, n_tokens, n_heads, head_dim) < 1:
            raise ValueError("embed_dim, n_tokens, n_heads and head_dim must be >= 1")
        self.n_heads, self.head_dim = n_heads, head_dim
        bound = math.sqrt(1.0 / head_dim)
        self.query = nn.Parameter(torch.empty(1, n_tokens, embed_dim).uniform_(-bound, bound))
        self.q_w = nn.Linear(embed_dim, n_heads * head_dim, bias=False)
        self.k_w = nn.Linear(embed_dim, n_heads * head_dim, bias=False)
        self.v_w = nn.Linear(embed_dim, n_heads * head_dim, bias=False)
        self.fc = nn.Linear(n_heads * head_dim, embed_dim, bias=False)
        self.attn_dropout = nn.Dropout(attn_dropout)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def _split(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, n, D_k)

    def attention_logits(self, x: Tensor) -> Tensor:
        """Scaled dot products of the queries with the keys of ``x`` (B, L, D) -> (B, H, T, L)."""
        q = self._split(self.q_w(self.query))  # (1, H, T, D_k)
        k = self._split(self.k_w(x))  # (B, H, L, D_k)
        return torch.matmul(q / math.sqrt(self.head_dim), k.transpose(-2, -1))  # (B, H, T, L)

    def forward(self, x: Tensor, *, logit_mask: LogitMask | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Attend over ``x``.

        Args:
            x: (B, L, D) patch embeddings.
            logit_mask: optional function applied to the (B, H, T, L) logits before the softmax (STKIM).
        Returns:
            z (B, T, D) after fc, dropout, residual with the raw query and LayerNorm; the softmax attention
            (B, H, T, L) before dropout; the per-head outputs (B, H, T, D_v).
        """
        logits = self.attention_logits(x)  # (B, H, T, L)
        if logit_mask is not None:
            logits = logit_mask(logits)
        attn = logits.softmax(dim=-1)  # (B, H, T, L)
        v = self._split(self.v_w(x))  # (B, H, L, D_v)
        heads = torch.matmul(self.attn_dropout(attn), v)  # (B, H, T, D_v)
        b, _, t, _ = heads.shape
        merged = heads.transpose(1, 2).reshape(b, t, -1)  # (B, T, H * D_v)
        z = self.norm(self.dropout(self.fc(merged)) + self.query)  # (B, T, D)
        return z, attn, heads


class MLPBlock(nn.Module):
    """y = LayerNorm(x + Dropout(W2·ReLU(W1·x))) (spec §3.3)."""

    def __init__(self, *, embed_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        """(..., D) -> (..., D)."""
        return self.norm(x + self.dropout(self.fc2(F.relu(self.fc1(x)))))


def _task_heads(width: int, tasks: dict[str, TaskSpec]) -> nn.ModuleDict:
    return nn.ModuleDict({name: nn.Linear(width, spec.n_classes) for name, spec in tasks.items()})


class PerHeadBranch(nn.Module):
    """The paper's semantic branch for one head (DIS Eq. 12): a 3-layer MLP of 128 units and own task layers."""

    def __init__(self, *, head_dim: int, tasks: dict[str, TaskSpec], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width_in in (head_dim, SEMANTIC_HIDDEN, SEMANTIC_HIDDEN):
            layers += [nn.Linear(width_in, SEMANTIC_HIDDEN), nn.ReLU(), nn.Dropout(dropout)]
        self.mlp = nn.Sequential(*layers)
        self.heads = _task_heads(SEMANTIC_HIDDEN, tasks)

    def forward(self, head_output: Tensor) -> dict[str, Tensor]:
        """(B, T, D_v) -> task name -> (B, n_classes), task t read from token t."""
        y = self.mlp(head_output)  # (B, T, 128)
        return {name: head(y[:, t]) for t, (name, head) in enumerate(self.heads.items())}


class Aggregator(nn.Module):
    """Cross-attention + MLP + per-task linear heads; optionally the semantic branches of each head.

    Token t belongs to the t-th task of ``tasks`` (in dict order); each task's head reads its own token.

    Args:
        embed_dim: D, the width of the patch embeddings.
        tasks: task name -> TaskSpec; T = len(tasks) query tokens.
        config: heads, head width, MLP width and dropout rates.
        semantic_heads: None (no branches), ``"shared"`` (the author's code: one shared Linear(D_v -> D)
            per head output, then the shared MLP and task heads) or ``"per_head"`` (DIS Eq. 12).
    """

    def __init__(
        self,
        *,
        embed_dim: int,
        tasks: dict[str, TaskSpec],
        config: AggregatorConfig,
        semantic_heads: SemanticHeads | None = None,
    ) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("tasks must name at least one task")
        if semantic_heads is not None and semantic_heads not in SEMANTIC_HEAD_CHOICES:
            raise ConfigError(
                f"semantic_heads={semantic_heads!r} is not valid; choose one of "
                f"{', '.join(map(repr, SEMANTIC_HEAD_CHOICES))} or None"
            )
        self.tasks = dict(tasks)
        self.semantic_heads = semantic_heads
        self.attention = CrossAttention(
            embed_dim=embed_dim,
            n_tokens=len(tasks),
            n_heads=config.n_heads,
            head_dim=config.head_dim,
            attn_dropout=config.attn_dropout,
            dropout=config.dropout,
        )
        self.mlp = MLPBlock(embed_dim=embed_dim, mlp_dim=config.mlp_dim, dropout=config.dropout)
        self.heads = _task_heads(embed_dim, tasks)
        if semantic_heads == "shared":
            self.fb = nn.Linear(config.head_dim, embed_dim, bias=False)
        elif semantic_heads == "per_head":
            self.branches = nn.ModuleList(
                PerHeadBranch(head_dim=config.head_dim, tasks=tasks, dropout=config.dropout)
                for _ in range(config.n_heads)
            )

    def _read_tokens(self, z: Tensor) -> dict[str, Tensor]:
        """(..., T, D) -> task name -> (..., n_classes) using each task's own token."""
        return {name: head(z[..., t, :]) for t, (name, head) in enumerate(self.heads.items())}

    def _branch_logits(self, heads: Tensor) -> dict[str, Tensor]:
        if self.semantic_heads == "shared":
            return self._read_tokens(self.mlp(self.fb(heads)))  # each (B, H, n_classes)
        per_head = [branch(heads[:, h]) for h, branch in enumerate(self.branches)]
        return {name: torch.stack([out[name] for out in per_head], dim=1) for name in self.tasks}

    def forward(self, x: Tensor, *, logit_mask: LogitMask | None = None) -> AggregatorOutput:
        """Aggregate M patch embeddings into task logits.

        Args:
            x: (B, M, D) embeddings (positional encoding already added).
            logit_mask: optional transform of the (B, H, T, M) attention logits (ACMIL-style STKIM).
        Returns:
            AggregatorOutput with logits (B, n_classes) per task, attention (B, H, T, M), head outputs
            (B, H, T, D_v) and, when the model has semantic branches, branch logits (B, H, n_classes).
        """
        z, attn, heads = self.attention(x, logit_mask=logit_mask)  # (B, T, D), (B, H, T, M), (B, H, T, D_v)
        logits = self._read_tokens(self.mlp(z))
        branches = None if self.semantic_heads is None else self._branch_logits(heads)
        return AggregatorOutput(logits=logits, attention=attn, head_outputs=heads, branch_logits=branches)

    def get_scores(self, x: Tensor) -> Tensor:
        """Selection scores (spec §3.4): softmax attention without V or dropout, mean over heads then tokens.

        Args:
            x: (B, L, D) candidate embeddings (positional encoding already added).
        Returns:
            (B, L) scores; each row sums to 1.
        """
        attn = self.attention.attention_logits(x).softmax(dim=-1)  # (B, H, T, L)
        return attn.mean(dim=1).mean(dim=1)  # (B, L)
