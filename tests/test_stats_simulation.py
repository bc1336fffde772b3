"""Simulated audits with a known truth: do the statistics behave as documented?

Every simulation is seeded, so a run is reproducible; the thresholds leave room for Monte Carlo
noise (stated per test) but would fail if an interval were mis-scaled or a bound one-sided the
wrong way. The larger study behind docs/statistics.md is bench/statistics_study.py.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from scipy.stats import binom, lognorm

from audit.stats.binomial import Interval, clopper_pearson, wilson
from audit.stats.survival import CensoredTime, turnbull
from audit.stats.verdict import Verdict, decide

AUDITS = 2000  # simulated audits per setting


@cache
def _interval(method: str, k: int, n: int) -> Interval:
    return clopper_pearson(k, n) if method == "clopper-pearson" else wilson(k, n)


def _coverage(method: str, rate: float, n: int, seed: int) -> float:
    successes = np.random.default_rng(seed).binomial(n, rate, AUDITS)
    return float(np.mean([_interval(method, int(k), n).contains(rate) for k in successes]))


def _exact_coverage(method: str, rate: float, n: int) -> float:
    return sum(
        float(binom.pmf(k, n, rate)) for k in range(n + 1) if _interval(method, k, n).contains(rate)
    )


SETTINGS = [(rate, n) for rate in (0.5, 0.8, 0.9, 0.95, 0.99) for n in (30, 59, 150)]


@pytest.mark.parametrize(("rate", "n"), SETTINGS)
def test_clopper_pearson_covers_the_true_rate(rate: float, n: int) -> None:
    # Clopper–Pearson is conservative: its exact coverage is never below 95 %, usually above.
    # The simulated share of 2,000 audits may fall a little below 95 % by chance (one standard
    # error is about 0.5 point), so the test asks for 93.5 %.
    seed = int(rate * 1000) + n
    assert _coverage("clopper-pearson", rate, n, seed) >= 0.935
    assert _exact_coverage("clopper-pearson", rate, n) >= 0.95


def test_wilson_coverage_is_near_nominal_on_average() -> None:
    # Wilson aims at 95 % on average and dips below it for some rates; report, not guarantee.
    coverages = [_coverage("wilson", rate, n, seed=i) for i, (rate, n) in enumerate(SETTINGS)]
    assert 0.93 <= float(np.mean(coverages)) <= 0.97


@pytest.mark.parametrize(("threshold", "n"), [(0.95, 59), (0.95, 93), (0.9, 100), (0.95, 300)])
def test_false_compliant_rate_at_the_threshold_is_at_most_five_percent(
    threshold: float, n: int
) -> None:
    # A platform that removes exactly the required share must not be called COMPLIANT more
    # often than 1 - confidence = 5 %. Exact probability first, then 20,000 simulated audits
    # (allowing three standard errors of Monte Carlo noise above 5 %).
    verdicts = [decide(k, n, 0, threshold, 0.95).verdict for k in range(n + 1)]
    compliant = np.array([verdict is Verdict.COMPLIANT for verdict in verdicts])
    exact = float(binom.pmf(np.arange(n + 1), n, threshold)[compliant].sum())
    assert exact <= 0.05
    audits = 20_000
    successes = np.random.default_rng(n).binomial(n, threshold, audits)
    simulated = float(compliant[successes].mean())
    assert simulated <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / audits)


def test_false_non_compliant_rate_at_the_threshold_is_at_most_five_percent() -> None:
    n, threshold = 200, 0.9
    verdicts = [decide(k, n, 0, threshold, 0.95).verdict for k in range(n + 1)]
    non_compliant = np.array([verdict is Verdict.NON_COMPLIANT for verdict in verdicts])
    assert float(binom.pmf(np.arange(n + 1), n, threshold)[non_compliant].sum()) <= 0.05


def test_estimates_converge_as_the_audit_grows() -> None:
    rng = np.random.default_rng(11)
    rate = 0.9
    errors, widths = [], []
    for n in (25, 100, 400, 1600):
        successes = rng.binomial(n, rate, AUDITS)
        errors.append(float(np.mean(np.abs(successes / n - rate))))
        width = [_interval("clopper-pearson", int(k), n).width for k in successes]
        widths.append(float(np.mean(width)))
    assert errors == sorted(errors, reverse=True)
    assert widths == sorted(widths, reverse=True)
    # Error falls like 1 / sqrt(n): 64 times the probes, about an eighth of the error.
    assert errors[-1] / errors[0] < 0.2
    assert widths[-1] / widths[0] < 0.2


def _poll_interval(time: float, polls: np.ndarray) -> CensoredTime:
    index = int(np.searchsorted(polls, time))
    if index == polls.size:
        return CensoredTime(float(polls[-1]), math.inf)
    return CensoredTime(float(polls[index - 1]), float(polls[index]))


def test_turnbull_recovers_a_lognormal_removal_time_under_random_polling() -> None:
    # Removal times: lognormal with a 6-hour median. Each probe is polled on its own grid (a
    # random first look, then gaps drawn between 0.5 and 4 hours) until 48 hours.
    rng = np.random.default_rng(2024)
    truth = lognorm(s=1.0, scale=6.0)
    data = []
    for time in truth.rvs(size=3000, random_state=rng):
        gaps = rng.uniform(0.5, 4.0, 100)
        polls = np.concatenate(([0.0], rng.uniform(0.0, 1.0) + np.cumsum(gaps)))
        data.append(_poll_interval(float(time), polls[polls <= 48.0]))
    estimate = turnbull(data)
    assert estimate.converged
    for t in (1.0, 3.0, 6.0, 12.0, 24.0, 40.0):
        lower, upper = estimate.cdf(t)
        assert abs((lower + upper) / 2 - truth.cdf(t)) < 0.03, t
    median = estimate.quantile(0.5)
    assert median is not None
    assert abs(median - 6.0) < 1.0
