"""Recurring audits: which cron slot of a plan is due, and when the next one comes.

A plan's ``schedule.cron`` is a five-field cron expression (minute, hour, day of month, month,
day of week), read in UTC unless it starts with ``CRON_TZ=<IANA zone>`` as in cronie and
systemd (``CRON_TZ=Asia/Ho_Chi_Minh 0 9 * * 1``: Mondays at 09:00 Hanoi time). A *slot* is one
time the expression names. ``poll --plan`` starts a plan's run for the latest slot that has
come, once: the run and its claim on the slot are stored in one transaction, so two pollers
never start the same slot twice. A slot found more than ``max_lateness`` after its time (the
machine was off) is skipped, and said so, rather than started at a random later hour.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from audit.errors import InputError

__all__ = ["DEFAULT_MAX_LATENESS", "CronSchedule", "SlotDecision", "decide_slot", "parse_cron"]

DEFAULT_MAX_LATENESS = 3600.0
_PREFIX = "CRON_TZ="


@dataclass(frozen=True)
class CronSchedule:
    expression: str  # the five fields
    zone: ZoneInfo

    @property
    def text(self) -> str:
        return (
            self.expression
            if self.zone.key == "UTC"
            else f"{_PREFIX}{self.zone.key} {self.expression}"
        )

    def _at(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, tz=UTC).astimezone(self.zone)

    def next_after(self, epoch: float) -> float:
        """The first slot strictly after ``epoch``."""
        return float(croniter(self.expression, self._at(epoch)).get_next(float))

    def latest_until(self, epoch: float) -> float:
        """The last slot at or before ``epoch``."""
        walk = croniter(self.expression, self._at(epoch) + timedelta(seconds=1))
        slot = float(walk.get_prev(float))
        while slot > epoch:
            slot = float(walk.get_prev(float))
        return slot

    def upcoming(self, epoch: float, count: int) -> list[float]:
        walk = croniter(self.expression, self._at(epoch))
        return [float(walk.get_next(float)) for _ in range(count)]


def parse_cron(text: str, source: Path | str | None = None) -> CronSchedule:
    """A plan's ``schedule.cron``; an :class:`InputError` naming the field otherwise."""
    value = text.strip()
    zone_name = "UTC"
    if value.startswith(_PREFIX):
        zone_name, _, value = value[len(_PREFIX) :].partition(" ")
        value = value.strip()
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"'schedule.cron' names an unknown time zone (got {zone_name!r}; "
            "expected an IANA name such as Asia/Ho_Chi_Minh)",
            source=source,
        ) from None
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise InputError(
            "'schedule.cron' must be a five-field cron expression such as '0 3 * * 1', "
            f"optionally after CRON_TZ=<zone> (got {text!r})",
            source=source,
        )
    return CronSchedule(value, zone)


@dataclass(frozen=True)
class SlotDecision:
    due: float | None  # the slot to start now, if any
    latest: float  # the latest slot that has come
    missed: bool  # the latest slot was too long ago to start now
    next_slot: float  # the first slot still to come


def decide_slot(
    schedule: CronSchedule,
    now: float,
    started: Collection[float],
    max_lateness: float = DEFAULT_MAX_LATENESS,
) -> SlotDecision:
    """Whether a run is due now for the latest slot, given the slots already ``started``."""
    latest = schedule.latest_until(now)
    upcoming = schedule.next_after(now)
    if latest in started:
        return SlotDecision(None, latest, False, upcoming)
    if now - latest > max_lateness:
        return SlotDecision(None, latest, True, upcoming)
    return SlotDecision(latest, latest, False, upcoming)
