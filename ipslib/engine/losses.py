"""Training losses (spec §4): task losses, the diversity and semantic regularisers, and their total.

Task losses work on logits: softmax tasks use ``F.cross_entropy``, multi-label tasks
``F.binary_cross_entropy_with_logits`` on the flattened (B·n_classes) vector. The original code applied
softmax / sigmoid first and then ``NLLLoss(log(p + 1e-6))`` / ``BCELoss(p)``; the two agree up to that ε
(and the logit forms stay finite for confident wrong predictions).

Total (spec §4.4): L = L_b + diversity_weight·L_d + semantic_weight·L_p, where L_b is the mean task loss;
a term whose weight is 0 is not computed. The author's runs correspond to semantic_weight = 1 with the
diversity weight hard-coded per run (1, 2, 3 on MNIST; 0.1-1 on traffic signs).

Diversity targets (``RegulariserConfig.diversity_target``):

* ``head_outputs`` (author's code): per sample, cosine between the flattened outputs A_h·V of heads i < j
  (T·D_v values each), mean over the H(H-1)/2 pairs, then over the batch. Range [-1/(H-1), 1]; the lower
  bound is reached by outputs forming a centred regular simplex, where the author's runs saturate.
* ``head_attention`` (DIS Eq. 10): the same on the heads' attention maps flattened over T×M. Range [0, 1].
* ``branch_attention`` (ACMIL): each head is a branch with one attention distribution over the M patches
  per task token; mean pairwise cosine between branches, averaged over tokens and the batch. Range [0, 1].
  With one task token it equals ``head_attention``.

With one head there are no pairs and L_d = 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ipslib.config import ConfigError, DiversityTarget, RegulariserConfig, TaskKind, TaskSpec, choices
from ipslib.model.transformer import AggregatorOutput

__all__ = [
    "task_loss",
    "task_losses",
    "diversity_loss",
    "semantic_loss",
    "compute_losses",
    "DIVERSITY_TARGETS",
    "TASK_KINDS",
]

DIVERSITY_TARGETS = choices(DiversityTarget)
TASK_KINDS = choices(TaskKind)


def task_loss(logits: Tensor, target: Tensor, spec: TaskSpec) -> Tensor:
    """Loss of one task.

    Args:
        logits: (n, n_classes).
        target: multiclass: (n,) long class indices; multilabel: (n, n_classes) float in {0, 1}.
        spec: the task's kind.
    Returns:
        Scalar mean loss.
    """
    if spec.kind == "multiclass":
        return F.cross_entropy(logits, target)
    if spec.kind == "multilabel":
        return F.binary_cross_entropy_with_logits(logits.flatten(), target.to(logits.dtype).flatten())
    raise ConfigError(f"kind={spec.kind!r} is not valid; choose one of {', '.join(map(repr, TASK_KINDS))}")


def task_losses(logits: dict[str, Tensor], targets: dict[str, Tensor], tasks: dict[str, TaskSpec]) -> dict[str, Tensor]:
    """Task name -> scalar loss, for every task in ``tasks``."""
    missing = sorted(set(tasks) - set(targets))
    if missing:
        raise KeyError(f"targets lack task(s) {', '.join(missing)}")
    return {name: task_loss(logits[name], targets[name], spec) for name, spec in tasks.items()}


def _mean_pairwise_cosine(x: Tensor) -> Tensor:
    """x (..., H, F) -> (...,) mean cosine similarity over the H(H-1)/2 pairs of rows i < j."""
    h = x.shape[-2]
    if h < 2:
        return x.sum(dim=(-2, -1)) * 0.0
    unit = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    gram = unit @ unit.transpose(-2, -1)  # (..., H, H)
    i, j = torch.triu_indices(h, h, offset=1, device=x.device)
    return gram[..., i, j].mean(dim=-1)


def diversity_loss(output: AggregatorOutput, *, target: DiversityTarget) -> Tensor:
    """Mean pairwise cosine similarity between heads (see the module docstring for ``target``).

    Args:
        output: head_outputs (B, H, T, D_v) and attention (B, H, T, M) are read.
        target: ``head_outputs``, ``head_attention`` or ``branch_attention``.
    Returns:
        Scalar.
    """
    if target == "head_outputs":
        return _mean_pairwise_cosine(output.head_outputs.flatten(2)).mean()  # (B, H, T·D_v) -> scalar
    if target == "head_attention":
        return _mean_pairwise_cosine(output.attention.flatten(2)).mean()  # (B, H, T·M) -> scalar
    if target == "branch_attention":
        return _mean_pairwise_cosine(output.attention.transpose(1, 2)).mean()  # (B, T, H, M) -> scalar
    raise ConfigError(
        f"diversity_target={target!r} is not valid; choose one of {', '.join(map(repr, DIVERSITY_TARGETS))}"
    )


def semantic_loss(branch_logits: dict[str, Tensor], targets: dict[str, Tensor], tasks: dict[str, TaskSpec]) -> Tensor:
    """L_p = mean over heads of the mean task loss of each head's branch (spec §4.3).

    Args:
        branch_logits: task name -> (B, H, n_classes).
        targets: as for :func:`task_losses`.
    Returns:
        Scalar. Every head has B samples, so the mean over all B·H predictions equals the mean over heads.
    """
    losses = []
    for name, spec in tasks.items():
        logits = branch_logits[name]  # (B, H, n_classes)
        h = logits.shape[1]
        target = targets[name].repeat_interleave(h, dim=0)  # (B·H,) or (B·H, n_classes)
        losses.append(task_loss(logits.flatten(0, 1), target, spec))
    return torch.stack(losses).mean()


def compute_losses(
    output: AggregatorOutput, targets: dict[str, Tensor], *, tasks: dict[str, TaskSpec], regulariser: RegulariserConfig
) -> dict[str, Tensor]:
    """All losses of one batch.

    Args:
        output: from :meth:`IPSNet.forward_features <ipslib.model.ips.IPSNet.forward_features>`.
        targets: task name -> multiclass (B,) long or multilabel (B, n_classes) float.
        tasks: task name -> TaskSpec.
        regulariser: weights and targets of the regularisers.
    Returns:
        ``"loss"`` (the differentiable total), ``"task"`` (L_b), ``"task/<name>"`` per task, and
        ``"diversity"`` (L_d) / ``"semantic"`` (L_p, unweighted) when their weight is > 0.
    """
    per_task = task_losses(output.logits, targets, tasks)
    result = {"task": torch.stack(list(per_task.values())).mean()}
    result.update({f"task/{name}": value for name, value in per_task.items()})
    total = result["task"]
    if regulariser.diversity_weight > 0:
        result["diversity"] = diversity_loss(output, target=regulariser.diversity_target)
        total = total + regulariser.diversity_weight * result["diversity"]
    if regulariser.semantic_weight > 0:
        if output.branch_logits is None:
            raise ValueError(
                "semantic_weight > 0 needs branch_logits: build the model with the same "
                "RegulariserConfig (it adds the semantic branches)"
            )
        result["semantic"] = semantic_loss(output.branch_logits, targets, tasks)
        total = total + regulariser.semantic_weight * result["semantic"]
    result["loss"] = total
    return result
