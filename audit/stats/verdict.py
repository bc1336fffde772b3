"""The verdict of one criterion, from its probe counts.

The rule, in plain words
------------------------
1. **NOT_MEASURED** when the run reports a runtime failure for the criterion, or when fewer than
   ``min_measured`` violating probes could be measured. A runtime failure is never a low score:
   no rate or bound is reported for it.
2. Otherwise take the one-sided exact (Clopper–Pearson) bounds on the rate of removal in time, each
   at the criterion's ``confidence``:

   * **COMPLIANT** if the *lower* bound is at or above the threshold — the data show, at that
     confidence, that the platform removes at least the required share in time;
   * **NON_COMPLIANT** if the *upper* bound is below the threshold — the data show, at that
     confidence, that it removes less than the required share;
   * **INCONCLUSIVE** otherwise: the bounds straddle the threshold and more probes are needed.

Each of the two claims is a one-sided test at level ``1 - confidence``, so a platform whose true
rate equals the threshold is called COMPLIANT with probability at most ``1 - confidence``, and a
platform whose rate is at or above the threshold is called NON_COMPLIANT with at most that
probability. With threshold 0.95 and confidence 0.95, 59 removals out of 59 give a lower bound of
0.05 ** (1/59) = 0.9505 (COMPLIANT) while 58 out of 58 give 0.9497 (INCONCLUSIVE).

Inconclusive probes (platform faults, probes that could not be watched) are not counted either
way. The decision reports what the verdict would have been had every one of them failed, or had
every one of them passed, so a reader can see whether they could have changed the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from audit.stats.binomial import (
    Interval,
    clopper_pearson,
    exact_lower_bound,
    exact_upper_bound,
    wilson,
)

__all__ = ["Verdict", "VerdictDecision", "decide"]


class Verdict(StrEnum):
    """The verdict of one criterion."""

    COMPLIANT = "COMPLIANT"
    NON_COMPLIANT = "NON_COMPLIANT"
    INCONCLUSIVE = "INCONCLUSIVE"
    NOT_MEASURED = "NOT_MEASURED"


@dataclass(frozen=True)
class VerdictDecision:
    """A verdict with every figure behind it.

    ``lower`` and ``upper`` are the one-sided exact bounds at ``confidence`` that the rule uses;
    ``interval`` (two-sided Clopper–Pearson) and ``wilson`` are for display. Figures are ``None``
    when nothing was measured or the criterion suffered a runtime failure.
    """

    verdict: Verdict
    successes: int
    measured: int
    inconclusive: int
    rate: float | None
    lower: float | None
    upper: float | None
    interval: Interval | None
    wilson: Interval | None
    threshold: float
    confidence: float
    reason: str
    if_inconclusive_failed: Verdict | None
    if_inconclusive_passed: Verdict | None


def _check_inputs(
    successes: int, measured: int, inconclusive: int, threshold: float, confidence: float
) -> None:
    for name, value in (("measured", measured), ("inconclusive", inconclusive)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name!r} must be a non-negative integer (got {value!r})")
    if isinstance(successes, bool) or not isinstance(successes, int):
        raise ValueError(f"'successes' must be an integer (got {successes!r})")
    if not 0 <= successes <= measured:
        raise ValueError(f"'successes' must be between 0 and measured={measured} (got {successes})")
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"'threshold' must be a rate between 0 and 1 (got {threshold!r})")
    if not isinstance(confidence, (int, float)) or not 0.5 <= confidence < 1.0:
        raise ValueError(f"'confidence' must be at least 0.5 and below 1 (got {confidence!r})")


def _rule(successes: int, measured: int, threshold: float, confidence: float) -> Verdict:
    """COMPLIANT / NON_COMPLIANT / INCONCLUSIVE from the one-sided exact bounds."""
    if exact_lower_bound(successes, measured, confidence) >= threshold:
        return Verdict.COMPLIANT
    if exact_upper_bound(successes, measured, confidence) < threshold:
        return Verdict.NON_COMPLIANT
    return Verdict.INCONCLUSIVE


def _sensitivity(
    successes: int,
    measured: int,
    inconclusive: int,
    threshold: float,
    confidence: float,
    min_measured: int,
) -> tuple[Verdict, Verdict]:
    """Verdicts had every inconclusive probe failed, and had every one passed."""
    total = measured + inconclusive
    if total < min_measured:
        return Verdict.NOT_MEASURED, Verdict.NOT_MEASURED
    failed = _rule(successes, total, threshold, confidence)
    passed = _rule(successes + inconclusive, total, threshold, confidence)
    return failed, passed


def _percent(value: float) -> str:
    return f"{value * 100:.4g} %"


def _reason(
    verdict: Verdict,
    successes: int,
    measured: int,
    lower: float,
    upper: float,
    threshold: float,
    confidence: float,
) -> str:
    counted = f"{successes} of {measured} measured probes were removed in time"
    level = _percent(confidence)
    if verdict is Verdict.COMPLIANT:
        return (
            f"COMPLIANT: {counted}; the one-sided {level} lower bound on the rate, {lower:.4f}, "
            f"is at or above the threshold {threshold:g}."
        )
    if verdict is Verdict.NON_COMPLIANT:
        return (
            f"NON_COMPLIANT: {counted}; the one-sided {level} upper bound on the rate, "
            f"{upper:.4f}, is below the threshold {threshold:g}."
        )
    return (
        f"INCONCLUSIVE: {counted}; the one-sided {level} bounds {lower:.4f} and {upper:.4f} "
        f"straddle the threshold {threshold:g}, so more probes are needed for a verdict."
    )


@dataclass(frozen=True)
class _Figures:
    rate: float | None = None
    lower: float | None = None
    upper: float | None = None
    interval: Interval | None = None
    wilson: Interval | None = None


def _figures(successes: int, measured: int, confidence: float) -> _Figures:
    if measured == 0:
        return _Figures()
    return _Figures(
        rate=successes / measured,
        lower=exact_lower_bound(successes, measured, confidence),
        upper=exact_upper_bound(successes, measured, confidence),
        interval=clopper_pearson(successes, measured, confidence),
        wilson=wilson(successes, measured, confidence),
    )


def decide(
    successes: int,
    measured: int,
    inconclusive: int,
    threshold: float,
    confidence: float,
    *,
    min_measured: int = 1,
    runtime_failure: str | None = None,
) -> VerdictDecision:
    """Decide a criterion's verdict; see the module docstring for the rule.

    ``successes`` violating probes were removed in time out of ``measured`` whose outcome is
    known; ``inconclusive`` more could not be measured and count neither way. ``min_measured``
    is the fewest measured probes for which a verdict is given at all. ``runtime_failure``
    names what went wrong when the criterion could not be audited; it forces NOT_MEASURED.
    """
    _check_inputs(successes, measured, inconclusive, threshold, confidence)
    if isinstance(min_measured, bool) or not isinstance(min_measured, int) or min_measured < 1:
        raise ValueError(f"'min_measured' must be a positive integer (got {min_measured!r})")
    if runtime_failure is not None:
        verdict, figures = Verdict.NOT_MEASURED, _Figures()
        sensitivity: tuple[Verdict | None, Verdict | None] = (None, None)
        reason = (
            f"NOT_MEASURED: the criterion could not be measured ({runtime_failure}); "
            "a runtime failure is not a score."
        )
    else:
        figures = _figures(successes, measured, confidence)
        sensitivity = _sensitivity(
            successes, measured, inconclusive, threshold, confidence, min_measured
        )
        if measured < min_measured:
            verdict = Verdict.NOT_MEASURED
            reason = (
                f"NOT_MEASURED: only {measured} probes were measured, fewer than the "
                f"{min_measured} needed for a verdict ({inconclusive} more were inconclusive)."
            )
        else:
            verdict = _rule(successes, measured, threshold, confidence)
            lower = exact_lower_bound(successes, measured, confidence)
            upper = exact_upper_bound(successes, measured, confidence)
            reason = _reason(verdict, successes, measured, lower, upper, threshold, confidence)
    return VerdictDecision(
        verdict=verdict,
        successes=successes,
        measured=measured,
        inconclusive=inconclusive,
        rate=figures.rate,
        lower=figures.lower,
        upper=figures.upper,
        interval=figures.interval,
        wilson=figures.wilson,
        threshold=threshold,
        confidence=confidence,
        reason=reason,
        if_inconclusive_failed=sensitivity[0],
        if_inconclusive_passed=sensitivity[1],
    )
