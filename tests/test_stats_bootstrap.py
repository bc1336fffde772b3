"""The bootstrap and curve fast paths give the same figures as the plain definitions, and
Turnbull's iteration stops where reviving a zero mass no longer raises the likelihood."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from audit.stats.survival import (
    CensoredTime,
    quantile_interval,
    quantile_intervals,
    turnbull,
)

INF = math.inf

# A subsample of 100 removal intervals of one criterion of a virtual-clock audit (jittered
# geometric polls over 24 h, grace 6 h). Before the stall rule, Turnbull's iteration revived one
# zero mass whose likelihood gradient exceeded 1 by 2e-6, the ICM step took it straight back,
# and the cycle ran to max_iter (seconds per fit, in a bootstrap of hundreds).
CYCLING = [
    (23762.9, 33861.967), (10130.168, 14435.419), (2690.698, 3834.226), (40542.349, 57772.564),
    (108000.0, INF), (4094.984, 5835.323), (7659.817, 10915.186), (17377.151, 24762.318),
    (27395.892, 39038.954), (108000.0, INF), (22796.564, 32484.945), (10879.531, 15503.256),
    (108000.0, INF), (5948.423, 8476.461), (2598.933, 3703.462), (12815.35, 18261.783),
    (108000.0, INF), (21650.425, 30851.705), (10980.185, 15646.687), (9283.586, 13229.044),
    (12585.394, 17934.098), (2335.132, 3327.547), (4466.684, 6364.994), (3848.292, 5483.79),
    (1798.975, 2563.526), (3268.527, 4657.628), (108000.0, INF), (108000.0, INF),
    (108000.0, INF), (108000.0, INF), (108000.0, INF), (6991.217, 9962.435),
    (6083.778, 8669.342), (1459.202, 2079.352), (21965.253, 31300.332), (108000.0, INF),
    (4356.374, 6207.802), (18276.346, 26043.666), (108000.0, INF), (108000.0, INF),
    (5332.216, 7598.371), (2598.96, 3703.5), (108000.0, INF), (2361.885, 3365.67),
    (1090.01, 1553.256), (108000.0, INF), (108000.0, INF), (24700.363, 35197.844),
    (17448.312, 24863.723), (108000.0, INF), (11999.803, 17099.635), (108000.0, INF),
    (108000.0, INF), (29973.503, 42712.031), (2634.805, 3754.579), (108000.0, INF),
    (108000.0, INF), (60583.915, 86313.6), (4241.016, 6043.418), (108000.0, INF),
    (13729.051, 19563.802), (108000.0, INF), (108000.0, INF), (108000.0, INF),
    (4606.37, 6564.045), (3182.841, 4535.526), (20327.411, 28966.419), (31915.649, 45479.577),
    (15170.364, 21617.662), (108000.0, INF), (5465.457, 7788.238), (108000.0, INF),
    (2444.164, 3482.916), (35672.294, 50832.77), (12442.823, 17730.936), (32356.464, 46107.734),
    (108000.0, INF), (108000.0, INF), (108000.0, INF), (13189.678, 18795.198),
    (7742.447, 11032.932), (108000.0, INF), (108000.0, INF), (18029.663, 25692.144),
    (5786.689, 8245.991), (15024.625, 21409.986), (108000.0, INF), (108000.0, INF),
    (4126.769, 5880.617), (10275.228, 14642.128), (108000.0, INF), (15976.784, 22766.806),
    (6514.502, 9283.12), (108000.0, INF), (108000.0, INF), (108000.0, INF),
    (28493.621, 40603.21), (108000.0, INF), (7433.964, 10593.347), (13746.745, 19589.015),
]  # fmt: skip


def _data(pairs: list[tuple[float, float]]) -> list[CensoredTime]:
    return [CensoredTime(float(a), float(b)) for a, b in pairs]


def test_cycling_revival_stops_as_converged() -> None:
    estimate = turnbull(_data(CYCLING), tol=1e-6)
    assert estimate.converged
    assert estimate.iterations < 100
    assert estimate.quantile(0.5) == 24762.318
    assert estimate.quantile(0.9) is None  # more than 10 % never seen removed


intervals = st.tuples(st.integers(0, 40), st.integers(0, 12), st.booleans(), st.booleans()).map(
    lambda v: (float(v[0]), INF if v[3] else float(v[0] + (0 if v[2] else v[1] + 1)))
)


@settings(max_examples=60, deadline=None)
@given(st.lists(intervals, min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_one_bootstrap_gives_each_quantile_interval(
    pairs: list[tuple[float, float]], seed: int
) -> None:
    data = _data(pairs)
    together = quantile_intervals(data, [0.5, 0.9], 0.9, resamples=20, seed=seed)
    alone = [quantile_interval(data, p, 0.9, resamples=20, seed=seed) for p in (0.5, 0.9)]
    assert together == alone


@settings(max_examples=100, deadline=None)
@given(st.lists(intervals, min_size=1, max_size=40), st.lists(st.integers(-2, 60), max_size=30))
def test_cdf_many_is_cdf_at_each_time(pairs: list[tuple[float, float]], times: list[int]) -> None:
    estimate = turnbull(_data(pairs))
    ends = sorted({t for pair in estimate.intervals for t in pair if not math.isinf(t)})
    asked = [float(t) for t in times] + ends + [t + 0.5 for t in ends]
    assert estimate.cdf_many(asked) == [estimate.cdf(t) for t in asked]


def test_quantile_intervals_checks_every_share() -> None:
    with pytest.raises(ValueError, match="'p' must be a probability"):
        quantile_intervals(_data([(0, 1)]), [0.5, 1.5])


@given(st.integers(min_value=1, max_value=10**6))
@example(500)
@example(2000)
def test_bootstrap_work_does_not_drop_at_a_size(n: int) -> None:
    """The scorecard's resamples: 400 up to 500 probes, never under 100, never more for a
    larger criterion, and resamples times probes (the bootstrap's cost) never lower for one
    more probe than it was for n, so the cost has no step down (or up) at any size."""
    from audit.scorecard import bootstrap_resamples

    b, after = bootstrap_resamples(n), bootstrap_resamples(n + 1)
    assert 100 <= after <= b <= 400
    assert (n + 1) * after >= n * b - n  # within rounding of one resample
    assert b == 400 or n > 500
