"""Turnbull's NPMLE: a published example, Kaplan–Meier agreement, conventions, intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.stats.binomial import clopper_pearson
from audit.stats.survival import (
    CensoredTime,
    SurvivalEstimate,
    cdf_interval,
    quantile_interval,
    turnbull,
)

INF = math.inf

# Breast cosmesis data, radiotherapy-only group (46 patients, months to breast retraction),
# Finkelstein & Wolfe (1985). Listed as data set RT in the SAS/STAT User's Guide, PROC
# ICLIFETEST, "Getting Started" (right-censored rows have a missing right end, here inf), and
# as treatment "Rad" of data(bcos) in the R package interval.
RT_ALONE = [
    (45, INF), (25, 37), (37, INF), (6, 10), (46, INF), (0, 5), (0, 7), (26, 40), (18, INF),
    (46, INF), (46, INF), (24, INF), (46, INF), (27, 34), (36, INF), (7, 16), (36, 44), (5, 11),
    (17, INF), (46, INF), (19, 35), (7, 14), (36, 48), (17, 25), (37, 44), (37, INF), (24, INF),
    (0, 8), (40, INF), (32, INF), (4, 11), (17, 25), (33, INF), (15, INF), (46, INF), (19, 26),
    (11, 15), (11, 18), (37, INF), (22, INF), (38, INF), (34, INF), (46, INF), (5, 12),
    (36, INF), (46, INF),
]  # fmt: skip

# The NPMLE for that group: the Turnbull intervals carrying positive mass, and the masses, as
# printed by summary(icfit(...)) for treatment "Rad" in Fay & Shaw (2010), "Exact and asymptotic
# weighted logrank tests for interval censored data: the interval R package", Journal of
# Statistical Software 36(2), section "Survival estimation" (the package vignette). The text of
# that section (checked in the vignette source) states S(5) = 1 - 0.0463 = 0.9537 and that the
# results match the Icens package; the printed table itself is Sweave output, not in the source,
# so the whole mass vector is also certified independently by the Kuhn–Tucker test below.
RT_ALONE_NPMLE = [
    ((4.0, 5.0), 0.0463),
    ((6.0, 7.0), 0.0334),
    ((7.0, 8.0), 0.0887),
    ((11.0, 12.0), 0.0708),
    ((24.0, 25.0), 0.0926),
    ((33.0, 34.0), 0.0818),
    ((38.0, 40.0), 0.1209),
    ((46.0, 48.0), 0.4656),
]


def _data(pairs: list[tuple[float, float]]) -> list[CensoredTime]:
    return [CensoredTime(float(left), float(right)) for left, right in pairs]


def _covers(obs: CensoredTime, interval: tuple[float, float]) -> bool:
    """Whether a Turnbull interval lies inside an observation (half-open; points allowed)."""
    a, b = interval
    if obs.exact:
        return a == b == obs.left
    if a == b:
        return obs.left < a <= obs.right
    return obs.left <= a and b <= obs.right


def _kuhn_tucker_gradient(data: list[CensoredTime], estimate: SurvivalEstimate) -> list[float]:
    """d_j = (1/n) sum_i [I_j in obs_i] / P_i, written out plainly (no shared code with the fit).

    An NPMLE has d_j <= 1 for every Turnbull interval, with equality where the mass is positive
    (Gentleman & Geyer 1994): this certifies a solution independently of any publication.
    """
    cover = [[_covers(obs, interval) for interval in estimate.intervals] for obs in data]
    probability = [
        sum(mass for mass, inside in zip(estimate.masses, row, strict=True) if inside)
        for row in cover
    ]
    return [
        sum(row[j] / p for row, p in zip(cover, probability, strict=True)) / len(data)
        for j in range(len(estimate.intervals))
    ]


def test_published_breast_cosmesis_example() -> None:
    data = _data(RT_ALONE)
    estimate = turnbull(data)
    assert estimate.converged
    assert estimate.n == 46
    positive = [
        (interval, round(mass, 4))
        for interval, mass in zip(estimate.intervals, estimate.masses, strict=True)
        if mass > 1e-6
    ]
    assert positive == RT_ALONE_NPMLE
    # The figure stated in the text: S(5) = 1 - 0.0463 = 0.9537, S(4) = 1.
    assert estimate.cdf(4.0) == (0.0, 0.0)
    low, high = estimate.cdf(5.0)
    assert round(1 - low, 4) == round(1 - high, 4) == 0.9537


def test_published_example_satisfies_the_kuhn_tucker_conditions() -> None:
    data = _data(RT_ALONE)
    estimate = turnbull(data)
    for mass, gradient in zip(estimate.masses, _kuhn_tucker_gradient(data, estimate), strict=True):
        assert gradient <= 1 + 1e-6
        if mass > 1e-6:
            assert gradient == pytest.approx(1.0, abs=1e-6)


def test_turnbull_intervals_of_the_sas_documentation_example() -> None:
    # SAS/STAT ICLIFETEST "Statistical Methods": (1,3], (2,4], (5,6] give the Turnbull
    # intervals (2,3] and (5,6]; two observations share the first, one has the second.
    estimate = turnbull(_data([(1, 3), (2, 4), (5, 6)]))
    assert estimate.intervals == ((2.0, 3.0), (5.0, 6.0))
    assert estimate.masses == pytest.approx((2 / 3, 1 / 3))


def test_touching_intervals_do_not_overlap_but_an_exact_time_sits_inside() -> None:
    # (0, 5] and (5, 9] share no time; the exact removal at 5 lies in (0, 5] only.
    estimate = turnbull(_data([(0, 5), (5, 9), (5, 5)]))
    assert estimate.intervals == ((5.0, 5.0), (5.0, 9.0))
    assert estimate.masses == pytest.approx((2 / 3, 1 / 3))


def test_exact_times_give_the_empirical_distribution() -> None:
    estimate = turnbull(_data([(1, 1), (2, 2), (2, 2), (4, 4)]))
    assert estimate.intervals == ((1.0, 1.0), (2.0, 2.0), (4.0, 4.0))
    assert estimate.masses == pytest.approx((0.25, 0.5, 0.25))
    assert estimate.cdf(2.0) == pytest.approx((0.75, 0.75))
    assert estimate.cdf(1.999) == pytest.approx((0.25, 0.25))


def test_right_censored_mass_is_never_removed_within_observation() -> None:
    estimate = turnbull(_data([(0, 1), (3, INF), (3, INF), (0, 1)]))
    assert estimate.intervals == ((0.0, 1.0), (3.0, INF))
    assert estimate.masses == pytest.approx((0.5, 0.5))
    assert estimate.cdf(100.0) == pytest.approx((0.5, 1.0))  # after 3 it is not identified
    assert estimate.quantile(0.5) == 1.0
    assert estimate.quantile(0.75) is None


def test_cdf_bounds_reflect_where_mass_may_sit() -> None:
    estimate = turnbull(_data([(2, 6), (2, 6)]))
    assert estimate.cdf(2.0) == (0.0, 0.0)
    assert estimate.cdf(4.0) == (0.0, 1.0)
    assert estimate.cdf(6.0) == (1.0, 1.0)


def test_quantile_is_the_right_end_where_the_mass_first_reaches_p() -> None:
    estimate = turnbull(_data([(0, 2), (4, 6), (8, 10), (12, 14)]))
    assert estimate.quantile(0.25) == 2.0
    assert estimate.quantile(0.5) == 6.0
    assert estimate.quantile(0.51) == 10.0
    assert estimate.quantile(1.0) == 14.0
    with pytest.raises(ValueError, match="'p' must be a probability in"):
        estimate.quantile(0.0)


@pytest.mark.parametrize(
    ("left", "right", "message"),
    [
        (-1.0, 2.0, "'left' must be 0 or more"),
        (3.0, 2.0, "'right' must be at or after 'left'"),
        (math.nan, 2.0, "'left' must be a finite number"),
        (INF, INF, "'left' must be a finite number"),
        (1.0, math.nan, "'right' must be a number or math.inf"),
    ],
)
def test_censored_time_validation(left: float, right: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CensoredTime(left, right)


def test_censored_time_kinds() -> None:
    assert CensoredTime(3.0, 3.0).exact
    assert CensoredTime(3.0, INF).right_censored
    assert not CensoredTime(0.0, 3.0).exact


def test_turnbull_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one observation"):
        turnbull([])
    with pytest.raises(ValueError, match="CensoredTime values"):
        turnbull([(1.0, 2.0)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="'tol' must be positive"):
        turnbull(_data([(0, 1)]), tol=0.0)
    with pytest.raises(ValueError, match="'max_iter' must be a positive integer"):
        turnbull(_data([(0, 1)]), max_iter=0)


def test_non_convergence_is_reported() -> None:
    estimate = turnbull(_data(RT_ALONE), tol=1e-15, max_iter=2)
    assert not estimate.converged
    assert estimate.iterations == 2
    assert sum(estimate.masses) == pytest.approx(1.0)


def test_large_irregular_grids_converge_in_few_iterations() -> None:
    # 10,000 probes, each polled on its own random grid: thousands of Turnbull intervals, most
    # of them ending with no mass. Plain EM needs tens of thousands of steps here.
    rng = np.random.default_rng(7)
    times = rng.lognormal(math.log(6.0), 1.0, 10_000)
    data = []
    for time in times:
        polls = np.concatenate(([0.0], np.sort(rng.uniform(0.0, 48.0, 12)), [48.0]))
        index = int(np.searchsorted(polls, time))
        right = INF if index == polls.size else float(polls[index])
        data.append(CensoredTime(float(polls[index - 1]), right))
    estimate = turnbull(data)
    assert estimate.converged
    assert estimate.iterations < 1000
    assert len(estimate.intervals) > 1000
    assert sum(estimate.masses) == pytest.approx(1.0)


# --- Kaplan–Meier agreement -------------------------------------------------------------------


def _kaplan_meier_cdf(times: list[float], events: list[bool], t: float) -> float:
    """Product-limit estimate of P(T <= t); a censoring tied with an event counts as later."""
    survival = 1.0
    for u in sorted({time for time, event in zip(times, events, strict=True) if event}):
        if u > t:
            break
        at_risk = sum(1 for time in times if time >= u)
        deaths = sum(1 for time, event in zip(times, events, strict=True) if event and time == u)
        survival *= 1.0 - deaths / at_risk
    return 1.0 - survival


exact_or_right_censored = st.lists(
    st.tuples(st.integers(min_value=0, max_value=30), st.booleans()), min_size=1, max_size=40
)


@settings(deadline=None, max_examples=150)
@given(exact_or_right_censored)
def test_turnbull_equals_kaplan_meier_without_interval_censoring(
    rows: list[tuple[int, bool]],
) -> None:
    times = [float(time) for time, _ in rows]
    events = [event for _, event in rows]
    data = [
        CensoredTime(time, time if event else INF)
        for time, event in zip(times, events, strict=True)
    ]
    estimate = turnbull(data, tol=1e-12)
    assert estimate.converged
    for t in [*sorted(set(times)), max(times) + 1.0]:
        expected = _kaplan_meier_cdf(times, events, t)
        assert estimate.cdf(t)[0] == pytest.approx(expected, abs=1e-7)


# --- interval estimates -----------------------------------------------------------------------


def test_cdf_interval_is_exact_when_every_status_is_known() -> None:
    # Polled at 24 h exactly: whether each probe was gone by then is known, so the count is
    # binomial and the Clopper–Pearson interval applies.
    data = _data([(0, 6)] * 30 + [(6, 24)] * 15 + [(24, INF)] * 5)
    interval = clopper_pearson(45, 50, 0.95)
    assert cdf_interval(data, 24.0) == (interval.low, interval.high)


def test_cdf_interval_bootstraps_when_status_is_unknown() -> None:
    data = _data(RT_ALONE)
    low, high = cdf_interval(data, 20.0, resamples=200, seed=1)
    lower, upper = turnbull(data).cdf(20.0)
    assert 0.0 <= low <= lower <= upper <= high <= 1.0
    assert cdf_interval(data, 20.0, resamples=200, seed=1) == (low, high)  # seeded
    assert cdf_interval(data, 20.0, resamples=200, seed=2) != (low, high)


def test_quantile_interval_is_seeded_and_brackets_the_estimate() -> None:
    data = _data(RT_ALONE)
    estimate = turnbull(data).quantile(0.25)
    low, high = quantile_interval(data, 0.25, resamples=200, seed=3)
    assert low is not None
    assert high is not None
    assert estimate is not None
    assert low <= estimate <= high
    assert quantile_interval(data, 0.25, resamples=200, seed=3) == (low, high)


def test_quantile_interval_reports_a_share_never_reached() -> None:
    # Only the probe seen at (36, 48] lets the estimate reach 90 %; in resamples without it the
    # last Turnbull interval runs to infinity and the 90 % point is never reached.
    data = _data(RT_ALONE)
    low, high = quantile_interval(data, 0.9, resamples=100, seed=0)
    assert high is None
    assert low is None or low >= 40.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": 1.0}, "'level' must be strictly between 0 and 1"),
        ({"resamples": 5}, "'resamples' must be an integer of at least 10"),
    ],
)
def test_interval_functions_refuse_bad_input(kwargs: dict[str, float], message: str) -> None:
    data = _data(RT_ALONE)
    with pytest.raises(ValueError, match=message):
        quantile_interval(data, 0.5, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        cdf_interval(data, 10.0, **kwargs)  # type: ignore[arg-type]
