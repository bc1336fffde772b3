"""Numbers as every output writes them: one percent style (``71.7 %``, a space before the sign,
as the scorecards, the packs and the statistics notes write it)."""

from __future__ import annotations

__all__ = ["format_percent"]


def format_percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage: ``0.717`` -> ``71.7 %``; a dash when there is none."""
    return "–" if value is None else f"{value * 100:.{digits}f} %"
