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
from audit.i18n import N_
from audit.outcomes import Outcome
from audit.stats import clopper_pearson

__all__ = [
    "ENDED",
    "IN_DEADLINE",
    "MONITORING",
    "SOURCES",
    "UNKNOWN",
    "WITHIN_48_HOURS",
    "WITHIN_A_WEEK",
    "AuthorityMeasure",
    "ProbeTimes",
    "authority_measures",
]

HOURS_48 = 48 * 3600.0
ONE_WEEK = 7 * 86400.0
_TRIGGERS = frozenset({"order", "notice"})
# the measures' names, sources and notes (English in the model; the catalogs translate them)
IN_DEADLINE = N_("requests complied with within the deadline (%(deadline)s)")
WITHIN_48_HOURS = N_("removed within 48 hours")
WITHIN_A_WEEK = N_("removed within one week")
MONITORING = N_("EU Code of conduct monitoring exercises")
SOURCES = {
    "order": N_("the requesting authority's compliance rate: orders complied with in time"),
    "notice": N_("the requesting authority's compliance rate: notices complied with in time"),
}
UNKNOWN = N_("%(unknown)s of %(planned)s probes with no known state at %(at)s")
ENDED = N_(
    "; observation ended by %(ended)s, before this time, so a post still up then counts as unknown"
)


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
        note = UNKNOWN % {"unknown": unknown, "planned": planned, "at": format_duration(horizon)}
        if watched and max(watched) * time_scale < horizon:
            note += ENDED % {"ended": format_duration(max(watched) * time_scale)}
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
    legal = format_duration(deadline * time_scale)
    return [
        _measure(
            criterion_id,
            IN_DEADLINE % {"deadline": legal},
            SOURCES[trigger],
            deadline * time_scale,
            probes,
            time_scale,
            level,
            at_deadline=True,
        ),
        _measure(criterion_id, WITHIN_48_HOURS, MONITORING, HOURS_48, probes, time_scale, level),
        _measure(criterion_id, WITHIN_A_WEEK, MONITORING, ONE_WEEK, probes, time_scale, level),
    ]
