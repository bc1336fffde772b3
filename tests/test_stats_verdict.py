"""The verdict rule: table-driven cases, edge cases and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.stats.binomial import exact_lower_bound, exact_upper_bound
from audit.stats.verdict import Verdict, decide


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
    assert decision.rate is None
    assert decision.lower is None
    assert decision.upper is None
    assert decision.interval is None
    assert decision.wilson is None
    assert decision.if_inconclusive_failed is None
    assert decision.if_inconclusive_passed is None
    assert "target unreachable" in decision.reason


def test_too_few_measured_probes_is_not_measured() -> None:
    decision = decide(3, 3, 0, 0.95, 0.95, min_measured=10)
    assert decision.verdict is Verdict.NOT_MEASURED
    assert "fewer than the 10" in decision.reason
    assert decision.rate == 1.0  # the data are still reported


def test_nothing_measured_has_no_figures() -> None:
    decision = decide(0, 0, 7, 0.95, 0.95)
    assert decision.verdict is Verdict.NOT_MEASURED
    assert decision.rate is None
    assert decision.interval is None
    # Had the seven inconclusive probes all failed, 0/7 would already be non-compliant.
    assert decision.if_inconclusive_failed is Verdict.NON_COMPLIANT
    assert decision.if_inconclusive_passed is Verdict.INCONCLUSIVE


def test_sensitivity_shows_when_inconclusive_probes_could_flip_the_verdict() -> None:
    decision = decide(59, 59, 5, 0.95, 0.95)
    assert decision.verdict is Verdict.COMPLIANT
    assert decision.if_inconclusive_passed is Verdict.COMPLIANT  # 64/64
    assert decision.if_inconclusive_failed is Verdict.INCONCLUSIVE  # 59/64


def test_without_inconclusive_probes_sensitivity_equals_the_verdict() -> None:
    decision = decide(40, 59, 0, 0.95, 0.95)
    assert decision.if_inconclusive_failed is decision.verdict
    assert decision.if_inconclusive_passed is decision.verdict


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"successes": 5, "measured": 4}, "'successes' must be between 0 and measured=4"),
        ({"measured": -1}, "'measured' must be a non-negative integer"),
        ({"inconclusive": -2}, "'inconclusive' must be a non-negative integer"),
        ({"threshold": 1.5}, "'threshold' must be a rate between 0 and 1"),
        ({"confidence": 0.3}, "'confidence' must be at least 0.5 and below 1"),
        ({"confidence": 1.0}, "'confidence' must be at least 0.5 and below 1"),
        ({"min_measured": 0}, "'min_measured' must be a positive integer"),
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, float], message: str) -> None:
    arguments: dict[str, float] = {
        "successes": 1,
        "measured": 4,
        "inconclusive": 0,
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
def test_more_successes_never_worsen_the_verdict(
    kn: tuple[int, int], threshold: float, confidence: float, inconclusive: int
) -> None:
    order = {Verdict.NON_COMPLIANT: 0, Verdict.INCONCLUSIVE: 1, Verdict.COMPLIANT: 2}
    k, n = kn
    decision = decide(k, n, inconclusive, threshold, confidence)
    failed, passed = decision.if_inconclusive_failed, decision.if_inconclusive_passed
    assert failed is not None
    assert passed is not None
    assert order[failed] <= order[passed]
    if k < n:
        better = decide(k + 1, n, inconclusive, threshold, confidence)
        assert order[decision.verdict] <= order[better.verdict]
