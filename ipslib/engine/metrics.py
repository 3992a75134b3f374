"""Per-task metrics (spec §6): accuracy for softmax tasks, exact-match accuracy for the multi-label task.

A multi-label prediction counts as correct only when all of its outputs, thresholded at logit 0
(probability 0.5), equal the 0/1 label. :class:`EpochMeter` accumulates sums over the batches of an
epoch so the epoch values are means over samples, whatever the batch sizes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from torch import Tensor

from ipslib.config import TaskKind, TaskSpec, choices

__all__ = ["correct", "accuracy", "EpochMeter"]


def correct(logits: Tensor, target: Tensor, kind: TaskKind) -> Tensor:
    """Which samples are predicted correctly.

    Args:
        logits: (B, n_classes) raw scores.
        target: (B,) class indices for ``kind="multiclass"``; (B, n_classes) 0/1 for ``"multilabel"``.
        kind: ``multiclass`` (argmax equals the class) or ``multilabel`` (exact match at logit 0).
    Returns:
        (B,) bool.
    """
    if kind == "multiclass":
        return logits.argmax(dim=-1) == target.long()
    if kind == "multilabel":
        return ((logits > 0) == (target > 0.5)).all(dim=-1)
    raise ValueError(f"kind={kind!r} is not valid; choose one of {', '.join(map(repr, choices(TaskKind)))}")


def accuracy(logits: Tensor, target: Tensor, kind: TaskKind) -> float:
    """Share of correct samples (see :func:`correct`)."""
    return correct(logits, target, kind).float().mean().item()


class EpochMeter:
    """Sample-weighted means of losses and accuracies over an epoch.

    ``update`` takes the loss dict of :func:`ipslib.engine.losses.compute_losses` (batch means) and the logits;
    ``compute`` returns flat keys: ``loss``, ``accuracy`` (mean over tasks), ``<task>/loss``,
    ``<task>/accuracy`` and any regulariser term (``diversity``, ``semantic``) that was computed.
    """

    def __init__(self, tasks: Mapping[str, TaskSpec]):
        self.tasks = dict(tasks)
        self.n = 0
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def update(self, losses: Mapping[str, Tensor], logits: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> None:
        n = len(next(iter(targets.values())))
        self.n += n
        for name, value in losses.items():
            key = _loss_key(name)
            if key is not None:
                self._add(key, float(value.detach()) * n, n)
        for task, spec in self.tasks.items():
            hits = correct(logits[task].detach().float(), targets[task].to(logits[task].device), spec.kind)
            self._add(f"{task}/accuracy", hits.sum().item(), n)

    def _add(self, key: str, value: float, n: int) -> None:
        self.sums[key] += value
        self.counts[key] += n

    def compute(self) -> dict[str, float]:
        out = {key: self.sums[key] / self.counts[key] for key in self.sums}
        accuracies = [out[f"{task}/accuracy"] for task in self.tasks if f"{task}/accuracy" in out]
        if accuracies:
            out["accuracy"] = sum(accuracies) / len(accuracies)
        return out


def _loss_key(name: str) -> str | None:
    """Map a key of ``compute_losses`` to a meter key: "task/majority" -> "majority/loss"."""
    if name.startswith("task/"):
        return f"{name[len('task/') :]}/loss"
    if name == "task":
        return "task_loss"
    return name
