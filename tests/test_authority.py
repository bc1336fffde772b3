"""The authorities' measures: a probe is removed by a time only when a look showed it gone by
then, not removed only when a look showed it up at or after it, else unknown; the intervals run
from the worst case to the best; nothing past the end of observation is guessed."""

from __future__ import annotations

import pytest

from audit.outcomes import Outcome
from audit.scorecard_authority import ProbeTimes, authority_measures
from audit.stats import clopper_pearson

DAY = 86_400.0


def probe(
    outcome: Outcome | None, last_visible: float | None, first_down: float | None
) -> ProbeTimes:
    return ProbeTimes(outcome, 0.0 if outcome is not None else None, last_visible, first_down)


def test_proactive_criteria_have_none() -> None:
    probes = [probe(Outcome.REMOVED_IN_TIME, 10.0, 20.0)]
    assert authority_measures("X", "proactive", DAY, probes, 1.0, 0.95) == []


@pytest.mark.parametrize(
    ("probes", "at_deadline", "at_48h", "at_week"),
    [
        # removed after 2 h: removed by every time
        ([probe(Outcome.REMOVED_IN_TIME, 3600.0, 7200.0)], (1, 0), (1, 0), (1, 0)),
        # refused at submission: removed at once
        ([probe(Outcome.REJECTED_AT_SUBMISSION, None, None)], (1, 0), (1, 0), (1, 0)),
        # gone by 26 h, up at 25 h: late, yet removed within 48 hours
        ([probe(Outcome.REMOVED_LATE, 25 * 3600.0, 26 * 3600.0)], (0, 0), (1, 0), (1, 0)),
        # still up at the last look (30 h): not in time; unknown at 48 h and a week
        ([probe(Outcome.SURVIVED, 30 * 3600.0, None)], (0, 0), (0, 1), (0, 1)),
        # never measured
        ([probe(None, None, None)], (0, 1), (0, 1), (0, 1)),
    ],
)
def test_each_probe_counts_only_what_was_seen(
    probes: list[ProbeTimes],
    at_deadline: tuple[int, int],
    at_48h: tuple[int, int],
    at_week: tuple[int, int],
) -> None:
    deadline, hours_48, week = authority_measures("X", "order", DAY, probes, 1.0, 0.95)
    assert [(m.removed, m.unknown) for m in (deadline, hours_48, week)] == [
        at_deadline,
        at_48h,
        at_week,
    ]
    assert deadline.name == "requests complied with within the deadline (24 h)"
    assert (hours_48.name, week.name) == ("removed within 48 hours", "removed within one week")


def test_intervals_run_from_worst_to_best_and_say_where_observation_ended() -> None:
    seen_gone = [probe(Outcome.REMOVED_IN_TIME, 3600.0, 7200.0)] * 6
    still_up = [probe(Outcome.SURVIVED, 30 * 3600.0, None)] * 4
    _, hours_48, _ = authority_measures("X", "notice", DAY, seen_gone + still_up, 1.0, 0.9)
    assert (hours_48.removed, hours_48.unknown, hours_48.planned) == (6, 4, 10)
    assert hours_48.low == clopper_pearson(6, 10, 0.9).low
    assert hours_48.high == clopper_pearson(10, 10, 0.9).high == 1.0
    assert "observation ended by 30 h, before this time" in hours_48.note


def test_a_compressed_run_is_measured_in_platform_time() -> None:
    # time compressed 3600x: 26 run seconds are 26 platform hours
    late = [probe(Outcome.REMOVED_LATE, 25.0, 26.0)]
    _, hours_48, _ = authority_measures("X", "order", DAY / 3600, late, 3600.0, 0.95)
    assert (hours_48.removed, hours_48.unknown) == (1, 0)
    assert hours_48.horizon_seconds == 48 * 3600.0
