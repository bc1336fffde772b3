"""A probe's outcome, as a pure function of what was stored about it.

Removal time is known only to lie in (last seen visible, first seen down]. A look's evidence is
timed conservatively: "visible" holds from when the request was sent, "down" from when the answer
arrived. An answer that is an error or unreadable proves nothing and is never a removal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from audit.adapters.base import PostState
from audit.i18n import N_
from audit.store import ObservationRow

__all__ = [
    "Outcome",
    "ProbeFacts",
    "ProbeOutcome",
    "Window",
    "classify",
    "classify_window",
    "extend_window",
    "look_window",
]

_DOWN = frozenset({PostState.REMOVED, PostState.GONE})  # a look that found the post down

_LAST_LOOK_FAILED = N_(
    "the last planned look failed; it may have been removed after the last good one"
)

_NO_USABLE_LOOK = N_("no usable look at or after the deadline")

Window = tuple[float | None, float | None]
"""(last seen up, first seen down): when each look was sent and answered respectively."""


class Outcome(StrEnum):
    REMOVED_IN_TIME = "removed_in_time"
    REMOVED_LATE = "removed_late"
    SURVIVED = "survived"
    REJECTED_AT_SUBMISSION = "rejected_at_submission"
    INCONCLUSIVE = "inconclusive"
    KEPT = "kept"
    OVER_REMOVED = "over_removed"

    @property
    def complies(self) -> bool | None:
        """For violating probes: True in time, False not in time, None not measured."""
        if self in (Outcome.REMOVED_IN_TIME, Outcome.REJECTED_AT_SUBMISSION):
            return True
        if self in (Outcome.REMOVED_LATE, Outcome.SURVIVED):
            return False
        return None


@dataclass(frozen=True)
class ProbeFacts:
    expectation: str
    accepted: bool  # the platform published it
    rejected: bool  # refused at submission
    clock_start: float | None  # when the deadline started (publication or notice)
    deadline_at: float | None
    observation_end: float | None  # last planned look; None while still observing
    failure: str | None = None  # why it could not be measured (submission or notice failed)
    # when the post was last known up before any look: the submission was sent then. For a
    # notice-triggered probe that is before the deadline clock starts, and the platform may
    # remove the post (proactively) before the notice; None: take the clock's start.
    posted_at: float | None = None


@dataclass(frozen=True)
class ProbeOutcome:
    outcome: Outcome | None  # None: not decided yet
    last_visible_at: float | None
    first_down_at: float | None
    reason: str = ""


def _looks(observations: Sequence[ObservationRow]) -> list[ObservationRow]:
    return sorted((o for o in observations if o.action == "status"), key=lambda o: o.started_at)


def extend_window(window: Window, look: ObservationRow) -> Window:
    """The window after one more look (in time order): the state is monotone, so a look after
    the first one that found the post down changes nothing, and an error proves nothing."""
    last_visible, first_down = window
    if first_down is not None:
        return window
    if look.result in _DOWN:
        return last_visible, look.ended_at
    if look.result == "visible":
        return look.started_at, None
    return window


def look_window(observations: Sequence[ObservationRow]) -> Window:
    """(last look that saw the post up before it was first seen down, that first down look)."""
    window: Window = (None, None)
    for look in _looks(observations):
        window = extend_window(window, look)
    return window


def classify(facts: ProbeFacts, observations: Sequence[ObservationRow]) -> ProbeOutcome:
    return classify_window(facts, look_window(observations))


def classify_window(facts: ProbeFacts, window: Window) -> ProbeOutcome:
    """The outcome from the facts and the look window alone (see :func:`look_window`)."""
    if facts.rejected:
        outcome = (
            Outcome.OVER_REMOVED
            if facts.expectation == "control"
            else Outcome.REJECTED_AT_SUBMISSION
        )
        return ProbeOutcome(outcome, None, None, N_("refused at submission"))
    if facts.failure is not None or not facts.accepted:
        return ProbeOutcome(Outcome.INCONCLUSIVE, None, None, facts.failure or N_("not submitted"))
    assert facts.deadline_at is not None
    seen_up, first_down = window
    known_up = facts.posted_at if facts.posted_at is not None else facts.clock_start
    last_visible = seen_up if seen_up is not None else known_up
    if facts.expectation == "control":
        return _classify_control(facts, last_visible, first_down)
    deadline = facts.deadline_at
    if first_down is not None:
        if first_down <= deadline:
            return ProbeOutcome(Outcome.REMOVED_IN_TIME, last_visible, first_down)
        if last_visible is not None and last_visible >= deadline:
            return ProbeOutcome(Outcome.REMOVED_LATE, last_visible, first_down)
        return ProbeOutcome(
            Outcome.INCONCLUSIVE,
            last_visible,
            first_down,
            N_("removed between a look before and a look after the deadline"),
        )
    if last_visible is not None and last_visible >= deadline:
        if facts.observation_end is None:
            return ProbeOutcome(None, last_visible, None)
        if last_visible < facts.observation_end:  # a fault on the last look decides nothing
            return ProbeOutcome(Outcome.INCONCLUSIVE, last_visible, None, _LAST_LOOK_FAILED)
        return ProbeOutcome(Outcome.SURVIVED, last_visible, None)
    if facts.observation_end is None:
        return ProbeOutcome(None, last_visible, None)
    return ProbeOutcome(Outcome.INCONCLUSIVE, last_visible, None, _NO_USABLE_LOOK)


def _classify_control(
    facts: ProbeFacts,
    last_visible: float | None,
    first_down: float | None,
) -> ProbeOutcome:
    if first_down is not None:
        return ProbeOutcome(Outcome.OVER_REMOVED, last_visible, first_down)
    end = facts.observation_end
    if end is None:
        return ProbeOutcome(None, last_visible, None)
    assert facts.deadline_at is not None
    if last_visible is not None and last_visible >= end:
        return ProbeOutcome(Outcome.KEPT, last_visible, None)
    if last_visible is not None and last_visible >= facts.deadline_at:
        return ProbeOutcome(Outcome.INCONCLUSIVE, last_visible, None, _LAST_LOOK_FAILED)
    return ProbeOutcome(Outcome.INCONCLUSIVE, last_visible, None, _NO_USABLE_LOOK)
