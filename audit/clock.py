"""Injected time.

Nothing in the engine reads the wall clock directly: it asks a :class:`Clock`. The
:class:`SystemClock` is the real one; the :class:`VirtualClock` jumps straight to the time a
sleeper waits for, so days of simulated audit run in seconds. A simulated platform that shares
the same clock object sees the same time as the engine.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Protocol

__all__ = ["Clock", "SystemClock", "VirtualClock", "to_utc", "utc_iso"]


class Clock(Protocol):
    """A source of time the engine can wait on."""

    real: bool  # False for a virtual clock: in-flight work completes without time passing

    def now(self) -> float:
        """Seconds since the Unix epoch (UTC)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    async def sleep_until(self, when: float) -> None:
        """Return once ``now() >= when``."""


class SystemClock:
    """The machine's clock."""

    real = True

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep_until(self, when: float) -> None:
        delay = when - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """A clock that only moves when someone sleeps: sleeping jumps to the wake-up time."""

    real = False

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds
            self._mono += seconds

    async def sleep_until(self, when: float) -> None:
        self.advance(when - self._now)
        await asyncio.sleep(0)


def to_utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


_DAY = 86_400
_UNIX_ORDINAL = date(1970, 1, 1).toordinal()
_YEAR_10000 = 253_402_300_800  # the first second datetime cannot hold
# the text of each minute of a day, second of a minute and millisecond, made once
_MINUTE_TEXT = [f"T{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
_SECOND_TEXT = [f"{s:02d}." for s in range(60)]
_MILLI_TEXT = [f"{m:03d}Z" for m in range(1000)]


def utc_iso(epoch: float | None) -> str | None:
    """ISO 8601 UTC with millisecond precision, or None: the text of
    ``to_utc(epoch).isoformat(timespec="milliseconds")`` with ``Z`` for ``+00:00``, made
    without a datetime (a report writes several per probe, millions at 100,000 probes)."""
    if epoch is None:
        return None
    if not 0 <= epoch < _YEAR_10000 - 1:  # before 1970, near 10000, NaN: datetime decides
        return to_utc(epoch).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # as datetime.fromtimestamp: the fraction rounded half to even to microseconds
    fraction, whole = math.modf(epoch)
    micro = round(fraction * 1e6)
    second = int(whole)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    days, in_day = divmod(second, _DAY)
    minute, sec = divmod(in_day, 60)
    return _day_text(days) + _MINUTE_TEXT[minute] + _SECOND_TEXT[sec] + _MILLI_TEXT[micro // 1000]


@lru_cache(maxsize=4096)
def _day_text(days: int) -> str:
    return date.fromordinal(_UNIX_ORDINAL + days).isoformat()
