"""A platform's own timestamp in an answer, read as seconds since the Unix epoch (UTC)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Literal

__all__ = ["platform_timestamp"]

_MS_EPOCH = 1e11  # numbers above this are milliseconds (1e11 s is the year 5138)


def platform_timestamp(value: object, unit: Literal["auto", "s", "ms"] = "auto") -> float | None:
    """Epoch seconds from an ISO 8601 date-time or a number (seconds or milliseconds, e.g.
    Matrix ``origin_server_ts``); None when the value is not a timestamp."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number) or number <= 0:
            return None
        if unit == "ms" or (unit == "auto" and number > _MS_EPOCH):
            number /= 1000.0
        return number
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            return platform_timestamp(float(value), unit)
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
