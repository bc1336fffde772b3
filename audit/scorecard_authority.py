"""The authorities' own measures beside the verdicts, for criteria triggered by an order or a
notice: the share of requests complied with within the deadline, as a ministry reports a
platform's compliance (Facebook 91 %, YouTube 94 %, TikTok 98 % of its requests in one
published month), and the shares removed within 48 hours and within one week, the time frames
of the EU monitoring exercises of the Code of conduct on countering illegal hate speech online.

Each share is over every planned violating probe, with the worst case and the best case. At
the deadline the outcome the verdict rests on decides (so the first share is the verdict's
removal-in-deadline rate, under the authority's name). At a later time a probe counts as
removed by then only if it was refused at submission or a look found it gone
by then; as not removed only if a look found it still up at or after that time; otherwise its
state then is unknown (its removal fell between two looks either side of it, observation ended
before it, or the probe was never measured). The interval runs from the two-sided exact
(Clopper–Pearson) low end with every unknown counted as not removed to the high end with every
unknown counted as removed, at the criterion's confidence. Nothing past the end of observation
is guessed: a share at a time the run did not watch up to says how many probes it left unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from audit.durations import format_duration
from audit.outcomes import Outcome
from audit.stats import clopper_pearson

__all__ = ["AuthorityMeasure", "ProbeTimes", "authority_measures"]

HOURS_48 = 48 * 3600.0
ONE_WEEK = 7 * 86400.0
_TRIGGERS = frozenset({"order", "notice"})


class AuthorityMeasure(BaseModel):
    """One of the authority's measures for one criterion."""

    criterion_id: str
    name: str  # as the authority names it
    source: str  # which authority's practice the measure follows
    horizon_seconds: float  # platform time from the request
    removed: int  # known removed by then
    unknown: int  # state then not known
    planned: int
    rate: float | None  # worst case: removed / planned
    low: float  # two-sided exact, every unknown not removed
    high: float  # two-sided exact, every unknown removed
    level: float
    note: str


@dataclass(frozen=True)
class ProbeTimes:
    """One violating probe as the measures need it (seconds of run time)."""

    outcome: Outcome | None
    clock_start: float | None
    last_visible: float | None
    first_down: float | None


def _state_at(probe: ProbeTimes, horizon: float) -> bool | None:
    """Removed by ``horizon`` run seconds after its clock started: True, False or unknown."""
    if probe.outcome is Outcome.REJECTED_AT_SUBMISSION:
        return True
    if probe.clock_start is None:
        return None
    if probe.first_down is not None and probe.first_down - probe.clock_start <= horizon:
        return True
    if probe.last_visible is not None and probe.last_visible - probe.clock_start >= horizon:
        return False
    return None


def _in_time(probe: ProbeTimes) -> bool | None:
    """At the deadline itself, the outcome the verdict rests on decides."""
    return probe.outcome.complies if probe.outcome is not None else None


def _measure(
    criterion_id: str,
    name: str,
    source: str,
    horizon: float,
    probes: Sequence[ProbeTimes],
    time_scale: float,
    level: float,
    at_deadline: bool = False,
) -> AuthorityMeasure:
    states = [_in_time(p) if at_deadline else _state_at(p, horizon / time_scale) for p in probes]
    removed, unknown, planned = states.count(True), states.count(None), len(states)
    watched = [
        p.last_visible - p.clock_start
        for p in probes
        if p.clock_start is not None and p.last_visible is not None
    ]
    note = ""
    if unknown:
        note = f"{unknown} of {planned} probes with no known state at {format_duration(horizon)}"
        if watched and max(watched) * time_scale < horizon:
            note += (
                f"; observation ended by {format_duration(max(watched) * time_scale)}, before "
                "this time, so a post still up then counts as unknown"
            )
    return AuthorityMeasure(
        criterion_id=criterion_id,
        name=name,
        source=source,
        horizon_seconds=horizon,
        removed=removed,
        unknown=unknown,
        planned=planned,
        rate=removed / planned if planned else None,
        low=clopper_pearson(removed, planned, level).low,
        high=clopper_pearson(removed + unknown, planned, level).high,
        level=level,
        note=note,
    )


def authority_measures(
    criterion_id: str,
    trigger: str,
    deadline: float,
    probes: Sequence[ProbeTimes],
    time_scale: float,
    level: float,
) -> list[AuthorityMeasure]:
    """The measures of one criterion (``deadline`` in run seconds); none unless it is triggered
    by an order or a notice."""
    if trigger not in _TRIGGERS or not probes:
        return []
    request = "orders" if trigger == "order" else "notices"
    monitoring = "EU Code of conduct monitoring exercises"
    legal = format_duration(deadline * time_scale)
    return [
        _measure(
            criterion_id,
            f"requests complied with within the deadline ({legal})",
            f"the requesting authority's compliance rate: {request} complied with in time",
            deadline * time_scale,
            probes,
            time_scale,
            level,
            at_deadline=True,
        ),
        _measure(
            criterion_id, "removed within 48 hours", monitoring, HOURS_48, probes, time_scale, level
        ),
        _measure(
            criterion_id, "removed within one week", monitoring, ONE_WEEK, probes, time_scale, level
        ),
    ]
