"""The statistics behind the book's verdicts: seed-level intervals, equivalence tests, the learned check.

An *arm* is every recorded run with one setting (its training seeds are its samples). The difference of
two arms is estimated at the seed level: mean difference with Welch's t interval from the sample standard
deviations (ddof = 1), so a 95 % interval needs at least two seeds per arm and is honest about the
seed-to-seed spread. No scipy: Student's t quantiles come from the regularised incomplete beta function
(continued fraction), inverted by bisection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["t_cdf", "t_ppf", "Interval", "welch_interval", "tost_equivalent", "beats_chance", "binomial_se"]


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz), for x < (a + 1) / (a + b + 2)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return result


def _regularised_beta(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df > 0, real)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    tail = 0.5 * _regularised_beta(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t (0 < q < 1), to about 1e-10."""
    if not 0 < q < 1:
        raise ValueError(f"quantile level must be in (0, 1), got {q}")
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < q else (lo, mid)
        if hi - lo < 1e-11:
            break
    return (lo + hi) / 2


@dataclass(frozen=True)
class Interval:
    """A difference of two arm means with its confidence interval (same units as the samples)."""

    estimate: float
    low: float
    high: float
    df: float
    level: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def width(self) -> float:
        return self.high - self.low


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, sum((v - mean) ** 2 for v in values) / (n - 1)


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Interval | None:
    """mean(a) − mean(b) with Welch's t interval; None with fewer than two samples in an arm.

    When both arms have zero spread the interval collapses to the estimate (df = ∞): the seeds agree exactly.
    """
    if len(a) < 2 or len(b) < 2:
        return None
    (ma, va), (mb, vb) = _mean_var(a), _mean_var(b)
    sa, sb = va / len(a), vb / len(b)
    se = math.sqrt(sa + sb)
    if se == 0:
        return Interval(ma - mb, ma - mb, ma - mb, math.inf, level)
    df = (sa + sb) ** 2 / ((sa**2 / (len(a) - 1) if sa else 0) + (sb**2 / (len(b) - 1) if sb else 0))
    half = t_ppf(0.5 + level / 2, df) * se
    return Interval(ma - mb, ma - mb - half, ma - mb + half, df, level)


def tost_equivalent(a: Sequence[float], b: Sequence[float], margin: float, alpha: float = 0.05) -> bool | None:
    """Two one-sided tests: True when the (1 − 2·alpha) Welch interval lies inside (−margin, +margin)."""
    interval = welch_interval(a, b, level=1 - 2 * alpha)
    if interval is None:
        return None
    return -margin < interval.low and interval.high < margin


def binomial_se(p: float, n: int) -> float:
    """Standard error of an accuracy ``p`` measured on ``n`` independent items."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else math.inf


def beats_chance(accuracy: float, chance: float, n_items: int, *, floor: float, z: float = 2.0) -> bool:
    """True when ``accuracy`` exceeds ``chance`` by more than ``z`` binomial standard errors of a chance
    classifier on ``n_items`` items and by more than ``floor`` (a fraction, e.g. 0.05 = 5 points)."""
    margin = z * binomial_se(chance, n_items) if n_items > 0 else 0.0
    return accuracy - chance > max(margin, floor)
