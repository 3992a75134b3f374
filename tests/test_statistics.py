"""Seed-level statistics of the verdicts, against published t quantiles and hand computations."""

import math

import pytest

from ipslib.study.statistics import beats_chance, t_cdf, t_ppf, tost_equivalent, welch_interval

# Two-sided 95 % critical values of Student's t (any statistics table).
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 10: 2.2281, 30: 2.0423}


@pytest.mark.parametrize("df,value", sorted(T975.items()))
def test_t_quantiles_match_the_table(df, value):
    assert t_ppf(0.975, df) == pytest.approx(value, abs=1e-4)
    assert t_cdf(value, df) == pytest.approx(0.975, abs=1e-5)
    assert t_ppf(0.025, df) == pytest.approx(-value, abs=1e-4)


def test_t_tends_to_the_normal():
    assert t_ppf(0.975, 1e6) == pytest.approx(1.95996, abs=1e-4)
    assert t_cdf(0.0, 7) == pytest.approx(0.5)


def test_welch_interval_by_hand():
    a, b = [0.60, 0.64, 0.62], [0.50, 0.55, 0.45]
    got = welch_interval(a, b)
    va, vb = 0.0004, 0.0025  # sample variances (ddof = 1)
    se = math.sqrt(va / 3 + vb / 3)
    df = (va / 3 + vb / 3) ** 2 / ((va / 3) ** 2 / 2 + (vb / 3) ** 2 / 2)
    assert got.estimate == pytest.approx(0.12)
    assert got.df == pytest.approx(df)
    assert got.high - got.estimate == pytest.approx(t_ppf(0.975, df) * se)
    assert got.excludes_zero


def test_welch_interval_needs_two_seeds_and_handles_zero_spread():
    assert welch_interval([0.5], [0.4, 0.41]) is None
    flat = welch_interval([0.5, 0.5], [0.4, 0.4])
    assert flat.low == flat.high == pytest.approx(0.1)


def test_overlapping_arms_do_not_exclude_zero():
    assert not welch_interval([0.50, 0.60, 0.55], [0.52, 0.58, 0.50]).excludes_zero


def test_equivalence_needs_a_narrow_interval():
    close = [0.500, 0.505, 0.498], [0.502, 0.499, 0.503]
    assert tost_equivalent(*close, margin=0.05) is True
    spread = [0.40, 0.60, 0.50], [0.45, 0.62, 0.41]
    assert tost_equivalent(*spread, margin=0.05) is False
    assert tost_equivalent([0.5], [0.5, 0.5], margin=0.05) is None


def test_beats_chance_uses_the_larger_margin():
    assert not beats_chance(0.14, 0.10, 200, floor=0.05)  # 4 points: under the floor
    assert beats_chance(0.16, 0.10, 200, floor=0.05)
    assert not beats_chance(0.36, 0.29, 50, floor=0.05)  # 7 points, but 2 SE of chance on 50 items is 12.8
