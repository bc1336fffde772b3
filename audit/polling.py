"""When to look at a probe.

The verdict needs the probe's state at the deadline; the time-to-removal figures need resolution
where removals happen. The schedule spends its status requests on a geometric grid from a small
fraction of the deadline up to just before it, one look at the deadline itself and a few during
the grace period:

* a look that ends before the deadline and finds the post gone proves a removal in time;
* a look that starts at or after the deadline and finds it up proves it was not removed in time;
  so a removal is undecided only if it falls between the start of the last look before the
  deadline and the deadline. By default that look is placed from the target's measured
  lateness (how long after its planned time a look's answer arrives: queueing, rate limits,
  round trip): :data:`LEAD_FACTOR` times its recent 90th percentile before the deadline, at
  least :data:`LEAD_MIN` — so its answer arrives before the deadline and the band is the
  round trip, not a share of the deadline. A plan's ``margin`` (a share of the deadline, at
  least ``min_margin_seconds``) fixes it instead;
* geometric spacing keeps each removal's censoring interval a fixed fraction of its time;
* each probe's looks are moved by seeded random factors, so that across probes the looks cover
  the time axis densely and the censoring-aware estimate (Turnbull) resolves finer than any one
  grid. ``jitter: each`` moves every look by its own factor between ratio^-1/2 and
  ratio^1/2, so neighbouring looks can end up to ratio^2 apart; ``jitter: phase`` (the
  default) slides the whole grid by one such factor, so the ratio between looks, hence each
  removal's censoring interval relative to its time, stays fixed; ``none`` gives every probe
  the same grid.

``bench/polling_cost.py`` measures what schedules cost and buy; docs/performance.md has the
figures behind the defaults ``jitter: phase, first: 0.01, grace_polls: 1``.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "LEAD_FACTOR",
    "LEAD_MIN",
    "PollingPolicy",
    "lead_from",
    "next_poll_index",
    "poll_offsets",
]

Jitter = Literal["phase", "each", "none"]
LEAD_FACTOR = 3.0  # the last look before the deadline: this many times the recent p90 lateness
LEAD_MIN = 0.05  # seconds, at least


class PollingPolicy(BaseModel):
    """When and how often each probe is looked at (see the module's text)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    requests: int = Field(default=16, ge=3, le=10_000)
    """Status looks per probe, including the one at the deadline and the grace looks."""
    first: float = Field(default=0.01, gt=0, lt=1)
    """The first look, as a share of the deadline; later looks follow a geometric grid."""
    grace_polls: int = Field(default=1, ge=0, le=100)
    """Looks after the deadline, during the plan's grace, to tell late from never."""
    margin: float | None = Field(default=None, ge=0, lt=0.5)
    """How long before the deadline the last look before it starts, as a share of the
    deadline; null: placed from the target's measured lateness."""
    min_margin_seconds: float = Field(default=0.25, ge=0)
    """With margin: at least this many seconds before the deadline."""
    jitter: Jitter = "phase"
    """phase: each probe's grid slides by one random factor; each: every look moves on its
    own; none: every probe has the same grid."""

    @field_validator("jitter", mode="before")
    @classmethod
    def _jitter_flag(cls, value: object) -> object:
        if isinstance(value, bool):  # the older yes/no form
            return "each" if value else "none"
        return value

    @model_validator(mode="after")
    def _room_for_grid(self) -> PollingPolicy:
        if self.requests - 1 - self.grace_polls < 1:
            raise ValueError("requests must leave at least one look before the deadline")
        return self

    def margin_seconds(self, deadline: float, lead: float = LEAD_MIN) -> float:
        """How long before the deadline the last look before it starts: the plan's margin,
        else ``lead`` (from the measured lateness); never more than a tenth of the deadline."""
        if self.margin is None:
            return min(max(lead, LEAD_MIN), deadline / 10)
        return min(max(self.margin * deadline, self.min_margin_seconds), deadline / 10)


def lead_from(lateness: list[float]) -> float:
    """:data:`LEAD_FACTOR` times the 90th percentile of recent lateness (seconds from a look's
    planned time to its answer), at least :data:`LEAD_MIN`."""
    if not lateness:
        return LEAD_MIN
    ordered = sorted(max(0.0, x) for x in lateness)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return max(LEAD_MIN, LEAD_FACTOR * p90)


def _grid(start: float, last: float, count: int, jitter: Jitter, rng: random.Random) -> list[float]:
    """``count`` looks from about ``start`` to exactly ``last``, geometric."""
    if count == 1:
        return [last]
    ratio = (last / start) ** (1.0 / (count - 1))
    if jitter == "phase" and ratio > 1.0:
        phase = rng.random() - 0.5
        grid = [start * ratio ** (i + phase) for i in range(count - 1)]
    else:
        grid = [start * ratio**i for i in range(count - 1)]
        if jitter == "each" and ratio > 1.0:
            grid = [t * ratio ** (rng.random() - 0.5) for t in grid]
    return [*sorted(min(t, last) for t in grid), last]


def poll_offsets(
    deadline: float,
    grace: float,
    policy: PollingPolicy,
    rng: random.Random,
    lead: float = LEAD_MIN,
) -> list[float]:
    """Seconds after the deadline clock starts at which to look, ascending (``lead``: see
    :meth:`PollingPolicy.margin_seconds`)."""
    before = policy.requests - 1 - (policy.grace_polls if grace > 0 else 0)
    last_before = deadline - policy.margin_seconds(deadline, lead)
    start = min(deadline * policy.first, last_before)
    offsets = _grid(start, last_before, before, policy.jitter, rng)
    offsets.append(deadline)
    if grace > 0:
        offsets.extend(
            deadline + grace * k / policy.grace_polls for k in range(1, policy.grace_polls + 1)
        )
    return offsets


def next_poll_index(offsets: list[float], clock_start: float, index: int, looked_at: float) -> int:
    """The planned look to make after the look planned at ``offsets[index]``, made at
    ``looked_at``: looks whose time has passed meanwhile (the auditor was down) are skipped,
    since one late look tells all they would have. ``len(offsets)`` when none is left."""
    following = index + 1
    while following < len(offsets) and clock_start + offsets[following] <= looked_at:
        following += 1
    return following
