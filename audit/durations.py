"""ISO 8601 durations (``PT24H``, ``P7D``, ``PT1H30M``) as seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["IsoDuration", "format_duration", "parse_duration"]

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
MAX_SECONDS = 10 * 366 * 86400.0
_UNIT_SECONDS = {
    "weeks": 604800.0,
    "days": 86400.0,
    "hours": 3600.0,
    "minutes": 60.0,
    "seconds": 1.0,
}


def parse_duration(text: str) -> float:
    """Seconds in a positive ISO 8601 duration; ``ValueError`` for anything else.

    Years and months are refused: their length in seconds is not fixed.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 duration string, got {type(text).__name__}")
    match = _DURATION.match(text.strip())
    if match is None or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise ValueError(f"not an ISO 8601 duration such as PT24H or P7D: {text!r}")
    seconds = sum(
        float(value) * _UNIT_SECONDS[unit] for unit, value in match.groupdict().items() if value
    )
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration must be at most ten years: {text[:40]!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Human-readable duration in one style everywhere: ``24 h``, ``1 h 30 min``, ``45 s``,
    ``7 d``, ``2 d 6 h``.

    Hours up to 48 h (a "24 h" deadline reads as the law writes it, never "1 d"), days beyond.
    At most two adjacent units, the second rounded: ``2 h 1 min``, never ``2 h 43 s``.
    """
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 60:
        return f"{seconds:.3g} s"
    index = _largest_unit(seconds)
    index = _largest_unit(round(seconds / _UNITS[index + 1][1]) * _UNITS[index + 1][1])
    (big, big_size), (small, small_size) = _UNITS[index], _UNITS[index + 1]
    count, rest = divmod(round(seconds / small_size), big_size // small_size)
    return f"{count} {big}" + (f" {rest} {small}" if rest else "")


_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def _largest_unit(seconds: float) -> int:
    """Index in :data:`_UNITS` of the unit a duration is told in (hours up to 48 h)."""
    if seconds > 2 * 86400:
        return 0
    return next(i for i, (_, size) in enumerate(_UNITS) if i > 0 and seconds >= size)


def _checked(value: str) -> str:
    try:
        parse_duration(value)
    except ValueError:
        raise ValueError(
            f"must be a positive ISO 8601 duration such as PT24H or PT10M (got {value!r})"
        ) from None
    return value


# A pydantic field holding an ISO 8601 duration, kept as text and checked on load.
IsoDuration = Annotated[str, AfterValidator(_checked)]
