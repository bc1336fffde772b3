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
    """Human-readable duration: ``24 h``, ``1 h 30 min``, ``45 s``, ``7 d``."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 60:
        return f"{seconds:.3g} s"
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    parts: list[str] = []
    rest = round(seconds)
    for name, size in units:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count} {name}")
        if len(parts) == 2:
            break
    return " ".join(parts)


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
