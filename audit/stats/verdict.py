"""The verdict of one criterion, from its probe counts: the worst case decides.

The rule, in plain words
------------------------
Every violating probe planned for the criterion counts. Its outcome is *known* (removed in time,
or not) or *unknown* (a fault hid it, the notice could not be filed, it was never sent, it is
still being watched). A platform under audit controls most of what makes an outcome unknown, so
an unknown outcome can never help it:

1. **NOT_MEASURED** when the run failed (a runtime failure is never a low score) or when no
   violating probe was planned.
2. **INCONCLUSIVE** when the measured share — known outcomes over planned probes — is below the
   floor ``min_measured_share`` (default 90 %), whatever the counts.
3. Otherwise, with one-sided exact (Clopper–Pearson) bounds at the criterion's ``confidence``
   over all planned probes:

   * **COMPLIANT** if the *lower* bound reaches the threshold with every unknown counted as
     **not removed in time**;
   * **NON_COMPLIANT** if the *upper* bound stays below the threshold with every unknown counted
     as **removed in time**;
   * **INCONCLUSIVE** otherwise.

Each claim is a one-sided test at level ``1 - confidence`` that holds whatever the unknown
outcomes were, so a platform whose true rate is at most the threshold is called COMPLIANT with
probability at most ``1 - confidence`` even when it chooses which of its probes become unknown
(it hides exactly the posts it did not remove); see docs/statistics.md for the table.
With threshold 0.95 and confidence 0.95, 59 removals out of 59 give a lower bound of
0.05 ** (1/59) = 0.9505 (COMPLIANT); 59 removals with one probe unknown give 59/60 counted,
lower bound 0.9237 (INCONCLUSIVE).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from audit.stats.binomial import (
    Interval,
    clopper_pearson,
    exact_lower_bound,
    exact_upper_bound,
    wilson,
)

__all__ = [
    "DEFAULT_MIN_MEASURED_SHARE",
    "Verdict",
    "VerdictDecision",
    "decide",
    "most_unknowns_tolerated",
]

DEFAULT_MIN_MEASURED_SHARE = 0.9


class Verdict(StrEnum):
    """The verdict of one criterion."""

    COMPLIANT = "COMPLIANT"
    NON_COMPLIANT = "NON_COMPLIANT"
    INCONCLUSIVE = "INCONCLUSIVE"
    NOT_MEASURED = "NOT_MEASURED"


@dataclass(frozen=True)
class VerdictDecision:
    """A verdict with every figure behind it.

    ``lower`` is the one-sided exact lower bound with every unknown counted as a failure,
    ``upper`` the one-sided exact upper bound with every unknown counted as a success: the two
    bounds the rule uses. ``interval`` spans the two-sided Clopper–Pearson interval from its
    worst-case low end to its best-case high end; ``wilson`` is over the measured probes, for
    display. Figures are ``None`` when nothing was planned or the run failed.
    """

    verdict: Verdict
    successes: int
    measured: int
    unknown: int
    planned: int
    rate: float | None  # among measured probes
    worst_rate: float | None  # every unknown a failure
    best_rate: float | None  # every unknown a success
    lower: float | None
    upper: float | None
    interval: Interval | None
    wilson: Interval | None
    threshold: float
    confidence: float
    min_measured_share: float
    measured_share: float | None
    reason: str


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name!r} must be a non-negative integer (got {value!r})")
    return value


def _check_inputs(
    successes: int,
    measured: int,
    unknown: int,
    threshold: float,
    confidence: float,
    min_measured_share: float,
) -> None:
    _check_count("measured", measured)
    _check_count("unknown", unknown)
    if isinstance(successes, bool) or not isinstance(successes, int):
        raise ValueError(f"'successes' must be an integer (got {successes!r})")
    if not 0 <= successes <= measured:
        raise ValueError(f"'successes' must be between 0 and measured={measured} (got {successes})")
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"'threshold' must be a rate between 0 and 1 (got {threshold!r})")
    if not isinstance(confidence, (int, float)) or not 0.5 <= confidence < 1.0:
        raise ValueError(f"'confidence' must be at least 0.5 and below 1 (got {confidence!r})")
    if (
        isinstance(min_measured_share, bool)
        or not isinstance(min_measured_share, (int, float))
        or not 0.0 < min_measured_share <= 1.0
    ):
        raise ValueError(
            "'min_measured_share' must be a share above 0 and at most 1 "
            f"(got {min_measured_share!r})"
        )


def _percent(value: float) -> str:
    return f"{value * 100:.4g} %"


def _rule(
    successes: int, unknown: int, planned: int, threshold: float, confidence: float
) -> tuple[Verdict, float, float]:
    lower = exact_lower_bound(successes, planned, confidence)
    upper = exact_upper_bound(successes + unknown, planned, confidence)
    if lower >= threshold:
        return Verdict.COMPLIANT, lower, upper
    if upper < threshold:
        return Verdict.NON_COMPLIANT, lower, upper
    return Verdict.INCONCLUSIVE, lower, upper


def _reason(d: VerdictDecision) -> str:
    assert d.lower is not None
    assert d.upper is not None
    level = _percent(d.confidence)
    counted = (
        f"{d.successes} of {d.planned} planned probes were removed in time, "
        f"{d.measured - d.successes} were not, {d.unknown} unknown"
    )
    if d.verdict is Verdict.COMPLIANT:
        return (
            f"COMPLIANT: {counted}; counting every unknown as not removed, the one-sided "
            f"{level} lower bound {d.lower:.4f} reaches the threshold {d.threshold:g}."
        )
    if d.verdict is Verdict.NON_COMPLIANT:
        return (
            f"NON_COMPLIANT: {counted}; even counting every unknown as removed in time, the "
            f"one-sided {level} upper bound {d.upper:.4f} is below the threshold {d.threshold:g}."
        )
    assert d.measured_share is not None
    if d.measured_share < d.min_measured_share:
        return (
            f"INCONCLUSIVE: {counted}; only {_percent(d.measured_share)} of the planned probes "
            f"were measured, below the floor of {_percent(d.min_measured_share)}."
        )
    return (
        f"INCONCLUSIVE: {counted}; the worst-case lower bound {d.lower:.4f} and the best-case "
        f"upper bound {d.upper:.4f} straddle the threshold {d.threshold:g}."
    )


def decide(
    successes: int,
    measured: int,
    unknown: int,
    threshold: float,
    confidence: float,
    *,
    min_measured_share: float = DEFAULT_MIN_MEASURED_SHARE,
    runtime_failure: str | None = None,
) -> VerdictDecision:
    """Decide a criterion's verdict; see the module docstring for the rule.

    ``successes`` violating probes were removed in time out of ``measured`` whose outcome is
    known; ``unknown`` more were planned whose outcome is not known, for whatever reason.
    ``runtime_failure`` names what went wrong when the run failed; it forces NOT_MEASURED.
    """
    _check_inputs(successes, measured, unknown, threshold, confidence, min_measured_share)
    planned = measured + unknown
    base = VerdictDecision(
        verdict=Verdict.NOT_MEASURED,
        successes=successes,
        measured=measured,
        unknown=unknown,
        planned=planned,
        rate=None,
        worst_rate=None,
        best_rate=None,
        lower=None,
        upper=None,
        interval=None,
        wilson=None,
        threshold=threshold,
        confidence=confidence,
        min_measured_share=min_measured_share,
        measured_share=None,
        reason="",
    )
    if runtime_failure is not None:
        reason = (
            f"NOT_MEASURED: the run failed ({runtime_failure}); a runtime failure is not a score."
        )
        return _replace(base, reason=reason)
    if planned == 0:
        return _replace(base, reason="NOT_MEASURED: no violating probe was planned.")
    verdict, lower, upper = _rule(successes, unknown, planned, threshold, confidence)
    share = measured / planned
    if share < min_measured_share:
        verdict = Verdict.INCONCLUSIVE
    worst = clopper_pearson(successes, planned, confidence)
    best = clopper_pearson(successes + unknown, planned, confidence)
    decision = _replace(
        base,
        verdict=verdict,
        rate=successes / measured if measured else None,
        worst_rate=successes / planned,
        best_rate=(successes + unknown) / planned,
        lower=lower,
        upper=upper,
        interval=Interval(worst.low, best.high, worst.level, worst.method),
        wilson=wilson(successes, measured, confidence) if measured else None,
        measured_share=share,
    )
    return _replace(decision, reason=_reason(decision))


def _replace(decision: VerdictDecision, **changes: object) -> VerdictDecision:
    return dataclasses.replace(decision, **changes)  # type: ignore[arg-type]


def most_unknowns_tolerated(
    planned: int,
    threshold: float,
    confidence: float,
    min_measured_share: float = DEFAULT_MIN_MEASURED_SHARE,
) -> int | None:
    """The most unknown outcomes a criterion with ``planned`` violating probes can have and still
    be COMPLIANT with every measured probe removed in time; None when even 0 unknowns cannot."""
    best: int | None = None
    for unknown in range(planned + 1) if planned else ():
        measured = planned - unknown
        if measured / planned < min_measured_share:
            break
        if exact_lower_bound(measured, planned, confidence) < threshold:
            break
        best = unknown
    return best
