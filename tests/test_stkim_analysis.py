"""Survival of a salient patch under the author's STKIM: closed form (spec §5 numbers) and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ipslib.analysis.stkim_survival import (
    baseline_config,
    config_survival,
    mask_probability,
    n_iterations,
    simulate_survival,
    spearman,
    survival_by_position,
    survival_probability,
)
from ipslib.config import RunConfig


@pytest.mark.parametrize(
    "n, m, i, p, expected",
    [
        (900, 100, 100, 0.1, 0.62),
        (900, 100, 100, 0.2, 0.39),
        (900, 100, 100, 0.4, 0.17),
        (900, 100, 100, 0.6, 0.07),
        (900, 100, 100, 0.8, 0.03),  # MNIST 1500², 8 iterations
        (192, 10, 32, 0.05, 0.83),
        (192, 10, 32, 0.1, 0.68),  # traffic, 6 iterations
        (3600, 100, 100, 0.2, 0.11),  # MNIST 3000², 35 iterations
    ],
)
def test_spec_numbers(n, m, i, p, expected):
    assert survival_probability(n, m, i, p) == pytest.approx(expected, abs=0.005)


def test_iterations_match_spec_table():
    assert [
        n_iterations(*a)
        for a in [(900, 100, 100), (3600, 100, 100), (14400, 100, 100), (400, 50, 50), (192, 10, 32), (3072, 20, 32)]
    ] == [8, 35, 143, 7, 6, 96]


def test_by_position_exponents():
    s = survival_by_position(192, 10, 32, 0.1)  # chunks of 32 x5 then 22
    assert s.shape == (192,)
    assert np.allclose(s[:10], 0.9**6) and np.allclose(s[10:42], 0.9**6)
    assert np.allclose(s[42:74], 0.9**5) and np.allclose(s[170:], 0.9)


def test_no_masking_or_no_iterations_means_survival():
    assert survival_probability(900, 100, 100, 0.0) == 1.0
    assert survival_probability(50, 100, 100, 0.9) == 1.0


def test_exact_fraction_probability():
    assert mask_probability(0.25, k=10, sampling="exact_fraction") == 0.2
    with pytest.raises(ValueError):
        mask_probability(0.2, sampling="top")


def test_config_survival_per_arm():
    base = dict(canvas_size=1500, digit_size=28, patch_size=50, memory_size=100, iter_size=100, stkim_k=10, stkim_p=0.2)
    assert config_survival(RunConfig.from_flat(base)) == pytest.approx(0.3885, abs=1e-4)
    assert config_survival(RunConfig.from_flat(base, stkim_mode="acmil_aggregation")) == 1.0
    assert config_survival(RunConfig.from_flat(base, stkim_in_eval=False)) == 1.0
    plain = baseline_config(RunConfig.from_flat(base))
    assert not plain.stkim.active and plain.key() == RunConfig.from_flat(base, stkim_k=0, stkim_p=0.0).key()


def _within_sampling_error(simulated: float, expected: float, n: int) -> bool:
    return abs(simulated - expected) < 4 * math.sqrt(expected * (1 - expected) / n) + 1e-9


@pytest.mark.parametrize("n, m, i, p, k", [(40, 5, 7, 0.3, 5), (192, 10, 32, 0.1, 10)])
def test_simulation_through_selection_loop_agrees(n, m, i, p, k):
    simulated = simulate_survival(n, m, i, p, k=k, n_images=3000, seed=1)
    assert _within_sampling_error(simulated, survival_probability(n, m, i, p), 3000)


class _Identity(nn.Module):
    def forward(self, x):
        return x.flatten(1)  # (n, 1, 1, 1) -> (n, 1): a patch's value is its embedding


def test_simulation_through_ipsnet_select_agrees():
    """IPSNet.select itself (shuffle, iterations, the author's STKIM in eval) with a stubbed scorer."""
    from ipslib.config import AggregatorConfig, EncoderConfig, IPSConfig, RegulariserConfig, STKIMConfig, TaskSpec
    from ipslib.model.ips import IPSNet

    n, m, i, p, b = 30, 4, 5, 0.25, 3000
    net = IPSNet(
        encoder=EncoderConfig(n_res_blocks=1),
        aggregator=AggregatorConfig(n_heads=1, head_dim=2, mlp_dim=2),
        ips=IPSConfig(
            patch_size=1,
            memory_size=m,
            iter_size=i,
            shuffle=True,
            shuffle_style="instance",
            use_pos=False,
            dedup_blank=False,
        ),
        regulariser=RegulariserConfig(),
        stkim=STKIMConfig(stkim_k=3, stkim_p=p),
        tasks={"t": TaskSpec(2, "multiclass")},
        in_channels=1,
        n_patches=n,
    ).eval()
    net.encoder = _Identity()
    net.aggregator.get_scores = lambda emb: emb[..., 0].softmax(dim=-1)
    torch.manual_seed(3)
    raw = torch.rand(b, n)
    raw[:, 7] = 2.0  # the salient patch
    kept = net.select(raw.view(b, n, 1, 1, 1)).indices
    simulated = float((kept == 7).any(dim=1).float().mean())
    assert _within_sampling_error(simulated, survival_probability(n, m, i, p), b)


def test_spearman_on_ranks_without_scipy():
    """Monotone relations give +-1 whatever their shape; ties share their mean rank (here rho = 0.9487)."""
    assert spearman([0.1, 0.5, 0.9, 1.0], [10, 11, 50, 99]) == pytest.approx(1.0)
    assert spearman([0.1, 0.5, 0.9, 1.0], [99, 50, 11, 10]) == pytest.approx(-1.0)
    # average ranks: x -> 1, 2.5, 2.5, 4 and y -> 1, 2, 3, 4
    xr, yr = np.array([1, 2.5, 2.5, 4]), np.array([1, 2, 3, 4])
    expected = np.corrcoef(xr, yr)[0, 1]
    assert spearman([0.2, 0.6, 0.6, 1.0], [1, 2, 3, 4]) == pytest.approx(expected)
    assert expected == pytest.approx(0.9487, abs=1e-4)
    with pytest.raises(ValueError, match="equal length"):
        spearman([1, 2], [1])
