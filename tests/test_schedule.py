"""Learning-rate schedule: closed-form values of spec §6 at the first step, end of warm-up and last step."""

import math

import pytest

from ipslib.config import TrainConfig
from ipslib.engine.schedule import WarmupCosine, steps_per_epoch


def test_steps_per_epoch_counts_the_last_partial_batch():
    assert steps_per_epoch(1000, 16) == 63
    assert steps_per_epoch(32, 16) == 2
    assert steps_per_epoch(0, 16) == 0


def test_warmup_then_cosine_matches_the_original_formula():
    # MNIST-D: 100 epochs of 63 steps, 10 warm-up epochs, lr 1e-3 -> 1e-6
    sched = WarmupCosine.from_config(TrainConfig(epochs=100, lr=1e-3, warmup_epochs=10, min_lr_ratio=1e-3), 63)
    total, warm = 6300, 630
    assert (sched.total_steps, sched.warmup_steps) == (total, warm)
    assert sched(1) == pytest.approx(1e-3 / warm)
    assert sched(warm - 1) == pytest.approx(1e-3 * (warm - 1) / warm)
    assert sched(warm) == pytest.approx(1e-3)  # q = 1 at the end of warm-up
    mid = (total + warm) // 2
    q = 0.5 * (1 + math.cos(math.pi * (mid - warm) / (total - warm)))
    assert sched(mid) == pytest.approx(1e-3 * q + 1e-6 * (1 - q))
    assert sched(total) == pytest.approx(1e-6)


def test_no_warmup_starts_at_the_peak():
    sched = WarmupCosine(lr=0.5, total_steps=10, warmup_steps=0, min_lr_ratio=0.1)
    assert sched(1) == pytest.approx(0.05 + 0.45 * 0.5 * (1 + math.cos(math.pi / 10)))
    assert sched(10) == pytest.approx(0.05)
    rates = [sched(s) for s in range(1, 11)]
    assert rates == sorted(rates, reverse=True)


def test_warmup_longer_than_training_only_rises():
    sched = WarmupCosine.from_config(TrainConfig(epochs=3, lr=1e-3, warmup_epochs=10), 5)
    assert [sched(s) for s in (1, 15)] == pytest.approx([1e-3 / 50, 1e-3 * 15 / 50])


def test_steps_are_one_based():
    with pytest.raises(ValueError):
        WarmupCosine(lr=1.0, total_steps=5, warmup_steps=1)(0)
