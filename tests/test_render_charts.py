"""Chart geometry and the figures derived for display: pure functions, table-driven."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.report.charts import (
    clock_text,
    curve_chart,
    outcome_bar,
    rate_axis,
    rate_bar,
    share_at,
    trend_chart,
)
from audit.report.page import headline, time_text
from audit.scorecard import CurvePoint, Scorecard, TimeFigure
from audit.stats import Verdict


@pytest.mark.parametrize(
    ("values", "low", "labels"),
    [
        ([0.7147, 0.95], 0.6, ["60 %", "70 %", "80 %", "90 %", "100 %"]),
        ([0.951, 0.95], 0.9, ["90 %", "95 %", "100 %"]),
        ([0.2, 0.95], 0.0, ["0 %", "20 %", "40 %", "60 %", "80 %", "100 %"]),
        ([None], 0.0, ["0 %", "20 %", "40 %", "60 %", "80 %", "100 %"]),
    ],
)
def test_rate_axis_starts_at_a_round_tick_below_every_value(
    values: list[float | None], low: float, labels: list[str]
) -> None:
    axis = rate_axis(values)
    assert axis.low == pytest.approx(low)
    assert [t.label for t in axis.ticks] == labels
    assert axis.ticks[0].x == 0 and axis.ticks[-1].x == axis.width


@given(st.lists(st.floats(0, 1), min_size=1, max_size=6))
def test_every_value_lands_on_the_axis(values: list[float]) -> None:
    axis = rate_axis(values)
    for value in values:
        assert 0 <= axis.x(value) <= axis.width
    assert all(a.x < b.x for a, b in zip(axis.ticks, axis.ticks[1:], strict=False))


def test_rate_bar_without_bounds_draws_no_span() -> None:
    bar = rate_bar(rate_axis([0.0]), None, None, None, 0.95)
    assert bar.lower is bar.upper is bar.point is None
    assert bar.threshold == pytest.approx(bar.width * 0.95)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (86_400, "24 h"),
        (21_600, "6 h"),
        (129_600, "36 h"),
        (604_800, "7 d"),
        (2_700, "45 min"),
        (6, "6 s"),
    ],
)
def test_clock_text_uses_the_units_of_legal_deadlines(seconds: float, text: str) -> None:
    assert clock_text(seconds) == text


def test_time_text_scales_run_time_to_platform_time() -> None:
    figure = TimeFigure(seconds=1.5, low=1.0, high=None, text="1.5 s")
    assert time_text(figure, 1) == "1.5 s"
    assert time_text(figure, 3600) == "1 h 30 min (1 h – ∞)"


def test_share_at_bounds_the_step_function() -> None:
    curve = [
        CurvePoint(t=0, low=0, high=0),
        CurvePoint(t=10, low=0.2, high=0.5),
        CurvePoint(t=20, low=0.8, high=0.8),
    ]
    assert share_at(curve, 5) == (0.0, 0.5)
    assert share_at(curve, 10) == (0.2, 0.5)
    assert share_at(curve, 25) == (0.8, 0.8)


def test_outcome_bar_skips_empty_outcomes() -> None:
    bar = outcome_bar({"removed_in_time": 3, "survived": 1, "inconclusive": 0}, width=400)
    assert [(s.outcome, s.x, s.width) for s in bar.segments] == [
        ("removed_in_time", 0.0, 300.0),
        ("survived", 300.0, 100.0),
    ]


def test_trend_chart_places_runs_left_to_right() -> None:
    chart = trend_chart(
        [(0.5, 0.3, 0.7, "NON_COMPLIANT", "a"), (None, None, None, "NOT_MEASURED", "b")], 0.95
    )
    first, second = chart.points
    assert first.x < second.x and second.y is None
    assert first.y_upper is not None and first.y_lower is not None and first.y_upper < first.y_lower
    assert chart.line == f"{first.x},{first.y}"


def test_headline_names_failing_and_undecided_criteria(card: Scorecard) -> None:
    text = headline(card)
    failing = [c.id for c in card.criteria if c.verdict == Verdict.NON_COMPLIANT]
    assert all(cid in text for cid in failing)
    compliant = card.model_copy(
        update={
            "criteria": [c.model_copy(update={"verdict": Verdict.COMPLIANT}) for c in card.criteria]
        }
    )
    assert headline(compliant).endswith("on all 3 criteria.")
    assert "No criterion" in headline(card.model_copy(update={"criteria": []}))


def test_no_curve_without_removal_times(card: Scorecard) -> None:
    assert curve_chart(card.criteria[0].model_copy(update={"curve": []}), 1.0) is None
    chart = curve_chart(card.criteria[0], 1.0)
    assert chart is not None and chart.left < chart.deadline_x <= chart.right


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Scorecard:
    from tests.scorecards import gold_scorecard

    return gold_scorecard(tmp_path_factory.mktemp("charts"))
