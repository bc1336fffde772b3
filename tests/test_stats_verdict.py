"""The verdict rule: table-driven cases, edge cases and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.stats.binomial import exact_lower_bound, exact_upper_bound
from audit.stats.verdict import Verdict, decide, most_unknowns_tolerated


@pytest.mark.parametrize(
    ("successes", "measured", "verdict"),
    [
        (59, 59, Verdict.COMPLIANT),  # 0.05 ** (1/59) = 0.9505 >= 0.95
        (58, 58, Verdict.INCONCLUSIVE),  # 0.05 ** (1/58) = 0.9497 < 0.95
        (92, 93, Verdict.COMPLIANT),  # one failure allowed from 93 probes
        (91, 92, Verdict.INCONCLUSIVE),
        (122, 124, Verdict.COMPLIANT),  # two failures allowed from 124 probes
        (52, 59, Verdict.NON_COMPLIANT),
        (53, 59, Verdict.INCONCLUSIVE),
        (0, 10, Verdict.NON_COMPLIANT),
        (1, 1, Verdict.INCONCLUSIVE),
    ],
)
def test_verdict_table_at_threshold_095_confidence_095(
    successes: int, measured: int, verdict: Verdict
) -> None:
    decision = decide(successes, measured, 0, 0.95, 0.95)
    assert decision.verdict is verdict
    assert decision.reason.startswith(verdict.value + ":")


def test_compliant_decision_carries_its_figures() -> None:
    decision = decide(59, 59, 0, 0.95, 0.95)
    assert decision.rate == 1.0
    assert decision.lower == pytest.approx(0.05 ** (1 / 59))
    assert decision.upper == 1.0
    assert decision.interval is not None
    assert decision.interval.method == "clopper-pearson"
    assert decision.interval.level == 0.95
    assert decision.wilson is not None
    assert decision.wilson.method == "wilson"
    assert "0.9505" in decision.reason
    assert "59 of 59" in decision.reason


def test_runtime_failure_is_never_a_low_score() -> None:
    decision = decide(0, 40, 0, 0.95, 0.95, runtime_failure="target unreachable")
    assert decision.verdict is Verdict.NOT_MEASURED
    assert "target unreachable" in decision.reason
    assert decision.rate is None
    assert decision.lower is None
    assert decision.upper is None
    assert decision.interval is None
    assert decision.wilson is None


def test_nothing_planned_is_not_measured() -> None:
    assert decide(0, 0, 0, 0.95, 0.95).verdict is Verdict.NOT_MEASURED


def test_a_platform_hiding_its_failures_behind_errors_is_never_compliant() -> None:
    # 59 removals seen, 941 probes unknown (the platform answered 500 for them): 94 % unmeasured
    decision = decide(59, 59, 941, 0.95, 0.95)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert "below the floor" in decision.reason
    # the reported case: 73 removed, 27 hidden behind 500s
    assert decide(73, 73, 27, 0.95, 0.95).verdict is Verdict.INCONCLUSIVE


def test_unknowns_count_as_failures_for_compliant() -> None:
    assert decide(59, 59, 0, 0.95, 0.95).verdict is Verdict.COMPLIANT
    # one unknown more: 59 of 60 counted, lower bound 0.924, share 98 % above the floor
    decision = decide(59, 59, 1, 0.95, 0.95)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert decision.lower == pytest.approx(exact_lower_bound(59, 60, 0.95))
    assert "straddle" in decision.reason


def test_unknowns_count_as_removals_for_non_compliant() -> None:
    # 40 of 59 seen removed: NON_COMPLIANT alone
    assert decide(40, 59, 0, 0.95, 0.95).verdict is Verdict.NON_COMPLIANT
    # with 5 unknown that could all have been removed: 45 of 64 best case, still far below
    decision = decide(40, 59, 5, 0.95, 0.95)
    assert decision.verdict is Verdict.NON_COMPLIANT
    assert decision.upper == pytest.approx(exact_upper_bound(45, 64, 0.95))
    assert "even counting every unknown as removed" in decision.reason


def test_the_measured_share_floor_is_settable() -> None:
    # 92 of 100 measured, all removed, 8 unknown: below a 95 % floor, above 90 %
    assert "below the floor" in decide(92, 92, 8, 0.5, 0.95, min_measured_share=0.95).reason
    assert decide(92, 92, 8, 0.5, 0.95, min_measured_share=0.9).verdict is Verdict.COMPLIANT


def test_most_unknowns_tolerated() -> None:
    assert most_unknowns_tolerated(59, 0.95, 0.95) == 0
    assert most_unknowns_tolerated(58, 0.95, 0.95) is None  # 20 or 58 probes: never COMPLIANT
    assert most_unknowns_tolerated(20, 0.95, 0.95) is None
    tolerated = most_unknowns_tolerated(300, 0.95, 0.95)
    assert tolerated is not None
    assert decide(300 - tolerated, 300 - tolerated, tolerated, 0.95, 0.95).verdict is (
        Verdict.COMPLIANT
    )
    assert decide(299 - tolerated, 299 - tolerated, tolerated + 1, 0.95, 0.95).verdict is not (
        Verdict.COMPLIANT
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"successes": 5, "measured": 4}, "'successes' must be between 0 and measured=4"),
        ({"measured": -1}, "'measured' must be a non-negative integer"),
        ({"unknown": -2}, "'unknown' must be a non-negative integer"),
        ({"threshold": 1.5}, "'threshold' must be a rate between 0 and 1"),
        ({"confidence": 0.3}, "'confidence' must be at least 0.5 and below 1"),
        ({"confidence": 1.0}, "'confidence' must be at least 0.5 and below 1"),
        ({"min_measured_share": 0}, "'min_measured_share' must be a share above 0"),
        ({"min_measured_share": 1.5}, "'min_measured_share' must be a share above 0"),
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, float], message: str) -> None:
    arguments: dict[str, float] = {
        "successes": 1,
        "measured": 4,
        "unknown": 0,
        "threshold": 0.95,
        "confidence": 0.95,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        decide(**arguments)  # type: ignore[arg-type]


def test_verdict_values_are_the_design_vocabulary() -> None:
    assert [verdict.value for verdict in Verdict] == [
        "COMPLIANT",
        "NON_COMPLIANT",
        "INCONCLUSIVE",
        "NOT_MEASURED",
    ]
    assert Verdict("COMPLIANT") is Verdict.COMPLIANT


counts = st.integers(min_value=1, max_value=300).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
thresholds = st.floats(min_value=0.01, max_value=0.99)
confidences = st.floats(min_value=0.5, max_value=0.999)


@given(counts, thresholds, confidences)
def test_verdict_follows_the_documented_rule(
    kn: tuple[int, int], threshold: float, confidence: float
) -> None:
    k, n = kn
    decision = decide(k, n, 0, threshold, confidence)
    lower = exact_lower_bound(k, n, confidence)
    upper = exact_upper_bound(k, n, confidence)
    if lower >= threshold:
        assert decision.verdict is Verdict.COMPLIANT
    elif upper < threshold:
        assert decision.verdict is Verdict.NON_COMPLIANT
    else:
        assert decision.verdict is Verdict.INCONCLUSIVE
    assert decision.lower == lower
    assert decision.upper == upper


@given(counts, thresholds, confidences, st.integers(min_value=0, max_value=50))
def test_verdict_with_unknowns_follows_the_worst_case_rule(
    kn: tuple[int, int], threshold: float, confidence: float, unknown: int
) -> None:
    k, n = kn
    decision = decide(k, n, unknown, threshold, confidence, min_measured_share=0.5)
    planned = n + unknown
    lower = exact_lower_bound(k, planned, confidence)
    upper = exact_upper_bound(k + unknown, planned, confidence)
    if n / planned < 0.5:
        assert decision.verdict is Verdict.INCONCLUSIVE
    elif lower >= threshold:
        assert decision.verdict is Verdict.COMPLIANT
    elif upper < threshold:
        assert decision.verdict is Verdict.NON_COMPLIANT
    else:
        assert decision.verdict is Verdict.INCONCLUSIVE


@given(counts, thresholds, confidences, st.integers(min_value=0, max_value=50))
def test_no_resolution_of_the_unknowns_beats_the_verdict(
    kn: tuple[int, int], threshold: float, confidence: float, unknown: int
) -> None:
    """COMPLIANT holds however the unknowns turn out; so does NON_COMPLIANT."""
    k, n = kn
    decision = decide(k, n, unknown, threshold, confidence, min_measured_share=0.5)
    for removed in (0, unknown // 2, unknown):
        resolved = decide(k + removed, n + unknown, 0, threshold, confidence)
        if decision.verdict is Verdict.COMPLIANT:
            assert resolved.verdict is Verdict.COMPLIANT
        if decision.verdict is Verdict.NON_COMPLIANT:
            assert resolved.verdict is Verdict.NON_COMPLIANT


@given(counts, thresholds, confidences, st.integers(min_value=0, max_value=50))
def test_more_successes_never_worsen_the_verdict(
    kn: tuple[int, int], threshold: float, confidence: float, unknown: int
) -> None:
    order = {Verdict.NON_COMPLIANT: 0, Verdict.INCONCLUSIVE: 1, Verdict.COMPLIANT: 2}
    k, n = kn
    decision = decide(k, n, unknown, threshold, confidence)
    if k < n:
        better = decide(k + 1, n, unknown, threshold, confidence)
        assert order[decision.verdict] <= order[better.verdict]
