"""Exact and score confidence intervals for a binomial proportion.

A criterion's removal rate is ``k`` removals in time out of ``n`` measured violating probes. Two
intervals are offered:

* **Clopper–Pearson** (1934), the "exact" interval: it inverts two one-sided binomial tests, so
  its coverage is at least the nominal level for every true rate and every ``n``. The price is that
  it is conservative (often 96–99 % coverage at a nominal 95 %). Verdicts use it.
* **Wilson** (1927) score interval: its coverage is close to nominal *on average* but dips below
  it for some true rates; it is shown beside Clopper–Pearson for readers who expect it.

Quantiles come from the beta distribution (the exact link between the binomial tail and it),
evaluated as :func:`scipy.stats.beta.ppf` does (:mod:`audit.stats.distributions`); nothing here
approximates a quantile by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from audit.stats.distributions import beta_quantile, normal_quantile

__all__ = [
    "Interval",
    "clopper_pearson",
    "exact_lower_bound",
    "exact_upper_bound",
    "wilson",
]

IntervalMethod = Literal["clopper-pearson", "wilson"]


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval ``[low, high]`` for a proportion at ``level``."""

    low: float
    high: float
    level: float
    method: IntervalMethod

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the closed interval."""
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low


def _check_counts(k: int, n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"'n' must be a non-negative integer (got {n!r})")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"'k' must be an integer between 0 and n={n} (got {k!r})")


def _check_probability(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(f"{name!r} must be a probability strictly between 0 and 1 (got {value!r})")


def exact_lower_bound(k: int, n: int, confidence: float) -> float:
    """One-sided Clopper–Pearson lower bound: ``P(rate >= bound)`` holds with ``confidence``.

    It is the rate ``p`` at which seeing ``k`` or more successes out of ``n`` has probability
    ``1 - confidence``; with ``k == 0`` (or ``n == 0``) it is 0. For ``k == n`` it reduces to
    ``(1 - confidence) ** (1 / n)``: 59/59 at 95 % gives 0.05 ** (1/59) = 0.9505.
    """
    _check_counts(k, n)
    _check_probability("confidence", confidence)
    if k == 0:
        return 0.0
    return beta_quantile(1.0 - confidence, k, n - k + 1)


def exact_upper_bound(k: int, n: int, confidence: float) -> float:
    """One-sided Clopper–Pearson upper bound: ``P(rate <= bound)`` holds with ``confidence``.

    With ``k == n`` (or ``n == 0``) it is 1.
    """
    _check_counts(k, n)
    _check_probability("confidence", confidence)
    if k == n:
        return 1.0
    return beta_quantile(confidence, k + 1, n - k)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> Interval:
    """Two-sided exact interval: each tail holds ``(1 - level) / 2``; ``n == 0`` gives (0, 1)."""
    _check_counts(k, n)
    _check_probability("level", level)
    if n == 0:
        return Interval(0.0, 1.0, level, "clopper-pearson")
    tail = (1.0 - level) / 2.0
    low = 0.0 if k == 0 else beta_quantile(tail, k, n - k + 1)
    high = 1.0 if k == n else beta_quantile(1.0 - tail, k + 1, n - k)
    return Interval(low, high, level, "clopper-pearson")


def wilson(k: int, n: int, level: float = 0.95) -> Interval:
    """Wilson score interval (no continuity correction); ``n == 0`` gives (0, 1)."""
    _check_counts(k, n)
    _check_probability("level", level)
    if n == 0:
        return Interval(0.0, 1.0, level, "wilson")
    z = normal_quantile(1.0 - (1.0 - level) / 2.0)
    z2 = z * z
    centre = (k + z2 / 2.0) / (n + z2)
    half = z * math.sqrt(k * (n - k) / n + z2 / 4.0) / (n + z2)
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Interval(low, high, level, "wilson")
