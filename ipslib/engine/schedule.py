"""Learning-rate schedule of IPS and the dissertation (spec §6): linear warm-up, then cosine decay.

The rate is set before every optimiser step ``s = 1, 2, ..., S`` (``s`` = global batch index + 1):

* warm-up, ``s < S_w``: ``lr = lr_max * s / S_w`` (a linear *increase* from about 0; the paper's
  "decreases" is a slip of the text, the code increases);
* afterwards ``q = (1 + cos(pi * (s - S_w) / (S - S_w))) / 2`` and
  ``lr = lr_max * q + lr_max * min_lr_ratio * (1 - q)``, a cosine from ``lr_max`` down to
  ``lr_max * min_lr_ratio`` at ``s = S``.

``S = epochs * steps_per_epoch`` and ``S_w = round(warmup_epochs * steps_per_epoch)``. When the warm-up
is longer than training (a short smoke run with the default 10 warm-up epochs) the rate only rises, as
in the original code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ipslib.config import TrainConfig

__all__ = ["WarmupCosine", "steps_per_epoch"]


def steps_per_epoch(n_items: int, batch_size: int) -> int:
    """Optimiser steps in one epoch: the last partial batch is trained (``drop_last=False``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return math.ceil(n_items / batch_size)


@dataclass(frozen=True)
class WarmupCosine:
    """The rate at optimiser step ``s`` (1-based): ``schedule(s)``.

    Attributes:
        lr: lr_max, the peak rate.
        total_steps: S, the number of optimiser steps of the whole run.
        warmup_steps: S_w, steps of the linear warm-up (0: start the cosine at once).
        min_lr_ratio: the final rate as a fraction of ``lr``.
    """

    lr: float
    total_steps: int
    warmup_steps: int
    min_lr_ratio: float = 1e-3

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")

    @classmethod
    def from_config(cls, train: TrainConfig, steps_per_epoch: int) -> WarmupCosine:
        return cls(
            lr=train.lr,
            total_steps=train.epochs * steps_per_epoch,
            warmup_steps=round(train.warmup_epochs * steps_per_epoch),
            min_lr_ratio=train.min_lr_ratio,
        )

    def __call__(self, step: int) -> float:
        if step < 1:
            raise ValueError(f"steps are counted from 1, got {step}")
        if step < self.warmup_steps:
            return self.lr * step / self.warmup_steps
        decay_steps = self.total_steps - self.warmup_steps
        if decay_steps <= 0:
            return self.lr
        q = 0.5 * (1.0 + math.cos(math.pi * min(step - self.warmup_steps, decay_steps) / decay_steps))
        return self.lr * q + self.lr * self.min_lr_ratio * (1.0 - q)
