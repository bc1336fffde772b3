"""What a run's state means for its scorecard: unknown outcomes by cause, controls by prompt,
and whether the scorecard is final.

Pure functions of stored rows and outcomes; :mod:`audit.scorecard` uses them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum

from audit.i18n import N_
from audit.lifecycle import RunStatus
from audit.numbers import format_percent
from audit.outcomes import Outcome
from audit.stats import Verdict
from audit.stats.distributions import binomial_cdf

__all__ = [
    "Standing",
    "exit_code_for",
    "standing_of",
    "unknown_cause",
    "unknown_causes",
    "unknowns_text",
]

EXIT_CODES = {
    Verdict.COMPLIANT: 0,
    Verdict.NON_COMPLIANT: 1,
    Verdict.INCONCLUSIVE: 3,
    Verdict.NOT_MEASURED: 4,
}


class Standing(StrEnum):
    """Whether a scorecard is the run's final word."""

    FINAL = "FINAL"  # the run completed: every probe has its outcome
    PRELIMINARY = "PRELIMINARY"  # the run is still going: pending probes count as unknown
    CANCELLED = "CANCELLED"  # stopped by cleanup before every probe was decided
    FAILED = "FAILED"  # the run failed: NOT_MEASURED


def standing_of(status: str) -> Standing:
    if status == RunStatus.COMPLETE:
        return Standing.FINAL
    if status == RunStatus.CANCELLED:
        return Standing.CANCELLED
    if status == RunStatus.FAILED:
        return Standing.FAILED
    return Standing.PRELIMINARY


def exit_code_for(overall: Verdict, standing: Standing) -> int:
    """The exit code of a scorecard: a failed run is 4; one that is not final is never 0."""
    if standing is Standing.FAILED:
        return EXIT_CODES[Verdict.NOT_MEASURED]
    code = EXIT_CODES[overall]
    if standing is not Standing.FINAL and code == 0:
        return EXIT_CODES[Verdict.INCONCLUSIVE]
    return code


# (start of a probe's reason, the cause it is counted under)
_CAUSES = (
    ("submission failed", N_("submission failed (platform fault)")),
    ("interrupted during submission", N_("interrupted submission (tool restart)")),
    ("notice could not be filed", N_("notice not filed")),
    ("order could not be filed", N_("order not filed")),
    ("no usable look", N_("no usable look at the deadline (platform fault)")),
    ("removed between a look before", N_("removed at an undecided time around the deadline")),
    ("not submitted", N_("never submitted")),
)


def unknown_cause(outcome: Outcome | None, reason: str) -> str:
    """The cause under which a probe without a known outcome is counted."""
    if outcome is None:
        return N_("still pending")
    plain = reason.removeprefix("the ")  # "the notice could not be filed" and "notice could..."
    for start, cause in _CAUSES:
        if plain.startswith(start):
            return cause
    head = reason.split(":", 1)[0].strip()
    return head[:80] or "unknown cause"


def unknown_causes(items: Iterable[tuple[Outcome | None, str]]) -> dict[str, int]:
    counts = Counter(unknown_cause(outcome, reason) for outcome, reason in items)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def unknowns_text(unknown: int, planned: int, causes: dict[str, int]) -> str:
    """The plain-words statement of how unknown outcomes were treated."""
    if unknown == 0:
        return f"Every one of the {planned} planned violating probes has a known outcome."
    by_cause = ", ".join(f"{n} {cause}" for cause, n in causes.items())
    return (
        f"{unknown} of {planned} planned violating probes have no known outcome ({by_cause}). "
        "The worst case decides: they count as not removed in time for a COMPLIANT verdict and "
        "as removed in time for a NON_COMPLIANT one."
    )


def holm_non_compliant(
    items: Iterable[tuple[str, int, int, float, float]],
) -> list[str]:
    """The criteria still NON_COMPLIANT under Holm's step-down adjustment across the run.

    Each item is (criterion id, successes counting every unknown as removed in time, planned,
    threshold, confidence). A criterion's p-value is the exact binomial P(X <= successes) at
    rate = threshold, which is below ``1 - confidence`` exactly when its one-sided upper bound is
    below the threshold; Holm controls the family-wise false-alarm rate at the smallest
    ``1 - confidence`` of the criteria.
    """
    tested = [
        (binomial_cdf(best, planned, threshold), cid, 1.0 - confidence)
        for cid, best, planned, threshold, confidence in items
        if planned > 0
    ]
    if not tested:
        return []
    alpha = min(a for _, _, a in tested)
    tested.sort()
    rejected: list[str] = []
    for rank, (p_value, cid, _) in enumerate(tested):
        if p_value > alpha / (len(tested) - rank):
            break
        rejected.append(cid)
    return rejected


def overall_rule(criteria: int, alphas: list[float], holm: list[str], failing: int) -> str:
    """The overall verdict's rule and its error rates, in plain words."""
    if not criteria:
        return "No criterion was audited."
    family = min(1.0, sum(alphas))
    return (
        "The overall verdict is COMPLIANT only when every criterion is COMPLIANT with no "
        "over-removal finding: an intersection-union test, so for a platform that misses any one "
        "criterion's threshold the chance of an overall COMPLIANT is at most that criterion's "
        f"1 - confidence. The overall NON_COMPLIANT flag (exit code 1) is raised by any of the "
        f"{criteria} criteria, unadjusted, because each is its own legal obligation; for a "
        "platform meeting every threshold its family-wise false-alarm rate is at most "
        f"{format_percent(family, 0)} (the sum of the criteria's 1 - confidence). Under Holm's "
        f"step-down adjustment (family-wise rate at most {format_percent(min(alphas), 0)}), "
        f"{len(holm)} of the {failing} "
        "criteria found NON_COMPLIANT on removal remain so"
        + (f": {', '.join(holm)}." if holm else ".")
    )
