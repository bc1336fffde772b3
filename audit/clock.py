"""Injected time.

Nothing in the engine reads the wall clock directly: it asks a :class:`Clock`. The
:class:`SystemClock` is the real one; the :class:`VirtualClock` jumps straight to the time a
sleeper waits for, so days of simulated audit run in seconds. A simulated platform that shares
the same clock object sees the same time as the engine.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
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


def utc_iso(epoch: float | None) -> str | None:
    """ISO 8601 UTC with millisecond precision, or None."""
    if epoch is None:
        return None
    return to_utc(epoch).isoformat(timespec="milliseconds").replace("+00:00", "Z")
