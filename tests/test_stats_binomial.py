"""Clopper–Pearson and Wilson intervals against published values, plus properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.stats.binomial import (
    Interval,
    clopper_pearson,
    exact_lower_bound,
    exact_upper_bound,
    wilson,
)

# Newcombe, R. G. (1998). Two-sided confidence intervals for the single proportion: comparison
# of seven methods. Statistics in Medicine 17, 857-872, Table II, examples (a)-(d), 95 % level.
# Method 3 is the Wilson score interval without continuity correction, method 5 the exact
# Clopper–Pearson interval. Figures are given there to four decimals.
NEWCOMBE_WILSON = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
]
NEWCOMBE_EXACT = [
    (81, 263, 0.2527, 0.3676),
    (15, 148, 0.0578, 0.1617),
    (0, 20, 0.0, 0.1684),
    (1, 29, 0.0009, 0.1776),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), NEWCOMBE_WILSON)
def test_wilson_matches_newcombe_1998(k: int, n: int, low: float, high: float) -> None:
    interval = wilson(k, n)
    assert interval.method == "wilson"
    assert interval.level == 0.95
    assert round(interval.low, 4) == low
    assert round(interval.high, 4) == high


@pytest.mark.parametrize(("k", "n", "low", "high"), NEWCOMBE_EXACT)
def test_clopper_pearson_matches_newcombe_1998(k: int, n: int, low: float, high: float) -> None:
    interval = clopper_pearson(k, n)
    assert interval.method == "clopper-pearson"
    assert round(interval.low, 4) == low
    assert round(interval.high, 4) == high


def test_all_successes_have_the_closed_form_bound() -> None:
    # With k == n the one-sided lower bound solves p**n = 1 - confidence.
    assert exact_lower_bound(59, 59, 0.95) == pytest.approx(0.05 ** (1 / 59), rel=1e-12)
    assert exact_lower_bound(59, 59, 0.95) >= 0.95
    assert exact_lower_bound(58, 58, 0.95) < 0.95
    # Two-sided: (alpha/2) ** (1/n) for the low end when k == n.
    assert clopper_pearson(10, 10).low == pytest.approx(0.025 ** (1 / 10), rel=1e-12)


def test_zero_successes_rule_of_three() -> None:
    # The one-sided 95 % upper bound for 0/n is 1 - 0.05 ** (1/n), close to 3/n for large n.
    assert exact_upper_bound(0, 300, 0.95) == pytest.approx(1 - 0.05 ** (1 / 300), rel=1e-12)
    assert exact_upper_bound(0, 300, 0.95) == pytest.approx(3 / 300, rel=0.01)


def test_empty_sample_gives_the_whole_range() -> None:
    assert clopper_pearson(0, 0) == Interval(0.0, 1.0, 0.95, "clopper-pearson")
    assert wilson(0, 0) == Interval(0.0, 1.0, 0.95, "wilson")
    assert exact_lower_bound(0, 0, 0.95) == 0.0
    assert exact_upper_bound(0, 0, 0.95) == 1.0


@pytest.mark.parametrize(
    ("k", "n", "level", "message"),
    [
        (5, 4, 0.95, "'k' must be an integer between 0 and n=4"),
        (-1, 4, 0.95, "'k' must be an integer between 0 and n=4"),
        (1, -1, 0.95, "'n' must be a non-negative integer"),
        (1, 4, 1.0, "'level' must be a probability strictly between 0 and 1"),
        (1, 4, 0.0, "'level' must be a probability strictly between 0 and 1"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    k: int, n: int, level: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        clopper_pearson(k, n, level)


def test_float_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="'k' must be an integer"):
        wilson(2.0, 4)  # type: ignore[arg-type]


counts = st.integers(min_value=0, max_value=400).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
levels = st.floats(min_value=0.5, max_value=0.999)


@given(counts, levels)
def test_intervals_contain_the_observed_rate(kn: tuple[int, int], level: float) -> None:
    k, n = kn
    if n == 0:
        return
    for interval in (clopper_pearson(k, n, level), wilson(k, n, level)):
        assert 0.0 <= interval.low <= k / n <= interval.high <= 1.0


@given(counts, levels)
def test_one_sided_bounds_sit_inside_the_two_sided_interval(
    kn: tuple[int, int], level: float
) -> None:
    # A one-sided bound at confidence c equals the two-sided end at level 2c - 1.
    k, n = kn
    two_sided = clopper_pearson(k, n, level)
    confidence = (1 + level) / 2
    assert exact_lower_bound(k, n, confidence) == pytest.approx(two_sided.low, abs=1e-12)
    assert exact_upper_bound(k, n, confidence) == pytest.approx(two_sided.high, abs=1e-12)


@given(st.integers(min_value=1, max_value=400), levels, st.data())
def test_bounds_rise_with_successes(n: int, level: float, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=0, max_value=n - 1))
    for method in (clopper_pearson, wilson):
        fewer, more = method(k, n, level), method(k + 1, n, level)
        assert fewer.low <= more.low
        assert fewer.high <= more.high


@given(counts, levels, levels)
def test_intervals_nest_as_the_level_grows(kn: tuple[int, int], a: float, b: float) -> None:
    k, n = kn
    low_level, high_level = sorted((a, b))
    for method in (clopper_pearson, wilson):
        narrow, wide = method(k, n, low_level), method(k, n, high_level)
        assert wide.low <= narrow.low + 1e-12
        assert narrow.high <= wide.high + 1e-12


def test_interval_helpers() -> None:
    interval = clopper_pearson(81, 263)
    assert interval.contains(81 / 263)
    assert not interval.contains(0.5)
    assert math.isclose(interval.width, interval.high - interval.low)
