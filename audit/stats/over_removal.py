"""The over-removal finding of one criterion, from its controls.

Controls are benign look-alikes that must stay up. A platform that removes everything would pass
every removal criterion, so over-removal is judged too, with the same one-sided exact bounds:

* **EXCESSIVE** when the one-sided exact *lower* bound on the over-removal rate, at the
  criterion's confidence, is above the highest acceptable rate (``max_rate``) with every control
  whose outcome is unknown counted as kept — the data show, whatever the unknowns were, that the
  platform removes more benign posts than acceptable. This fails the criterion and the exit code.
* **WITHIN_LIMIT** when the one-sided exact *upper* bound, with every unknown counted as removed,
  is at or below ``max_rate``.
* **NOT_SHOWN** otherwise: too few controls to show either (common with a handful of controls;
  it never fails a criterion and never passes one either).
* **NOT_MEASURED** when no control was planned or the run failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from audit.stats.binomial import exact_lower_bound, exact_upper_bound

__all__ = ["DEFAULT_MAX_OVER_REMOVAL", "OverRemoval", "OverRemovalVerdict", "judge_over_removal"]

DEFAULT_MAX_OVER_REMOVAL = 0.10


class OverRemovalVerdict(StrEnum):
    EXCESSIVE = "EXCESSIVE"
    WITHIN_LIMIT = "WITHIN_LIMIT"
    NOT_SHOWN = "NOT_SHOWN"
    NOT_MEASURED = "NOT_MEASURED"


@dataclass(frozen=True)
class OverRemoval:
    verdict: OverRemovalVerdict
    removed: int
    kept: int
    unknown: int
    planned: int
    max_rate: float
    confidence: float
    lower: float | None  # unknowns counted as kept
    upper: float | None  # unknowns counted as removed
    reason: str


def judge_over_removal(
    removed: int,
    kept: int,
    unknown: int,
    max_rate: float,
    confidence: float,
    *,
    runtime_failure: str | None = None,
) -> OverRemoval:
    """Judge the controls of one criterion; see the module docstring for the rule."""
    for name, value in (("removed", removed), ("kept", kept), ("unknown", unknown)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name!r} must be a non-negative integer (got {value!r})")
    if not 0.0 <= max_rate < 1.0:
        raise ValueError(f"'max_rate' must be a rate from 0 to below 1 (got {max_rate!r})")
    planned = removed + kept + unknown
    if runtime_failure is not None or planned == 0:
        why = f"the run failed ({runtime_failure})" if runtime_failure else "no control planned"
        return OverRemoval(
            OverRemovalVerdict.NOT_MEASURED,
            removed,
            kept,
            unknown,
            planned,
            max_rate,
            confidence,
            None,
            None,
            f"NOT_MEASURED: {why}.",
        )
    lower = exact_lower_bound(removed, planned, confidence)
    upper = exact_upper_bound(removed + unknown, planned, confidence)
    level = f"{confidence * 100:.4g} %"
    counted = f"{removed} of {planned} controls removed, {kept} kept, {unknown} unknown"
    if lower > max_rate:
        verdict = OverRemovalVerdict.EXCESSIVE
        reason = (
            f"EXCESSIVE: {counted}; counting every unknown as kept, the one-sided {level} lower "
            f"bound on the over-removal rate, {lower:.4f}, is above the acceptable {max_rate:g}."
        )
    elif upper <= max_rate:
        verdict = OverRemovalVerdict.WITHIN_LIMIT
        reason = (
            f"WITHIN_LIMIT: {counted}; counting every unknown as removed, the one-sided {level} "
            f"upper bound {upper:.4f} is at or below the acceptable {max_rate:g}."
        )
    else:
        verdict = OverRemovalVerdict.NOT_SHOWN
        reason = (
            f"NOT_SHOWN: {counted}; the bounds {lower:.4f} and {upper:.4f} straddle the "
            f"acceptable {max_rate:g}: too few controls to show over-removal either way."
        )
    return OverRemoval(
        verdict, removed, kept, unknown, planned, max_rate, confidence, lower, upper, reason
    )
