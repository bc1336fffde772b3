"""The methodology every scorecard states, in plain words."""

from __future__ import annotations

from audit.i18n import N_

__all__ = ["DEMO_SCALE", "methodology", "methodology_lines"]

_METHOD = (
    N_(
        "Each probe is a synthetic post generated from the criteria pack. Violating probes must "
        "be removed within the criterion's deadline; controls are benign look-alikes that must "
        "stay up."
    ),
    N_(
        "The deadline starts when the post is submitted (trigger 'proactive') or when the "
        "notice or order about it is sent ('notice', 'order')."
    ),
    N_(
        "A probe counts as removed in time only if a look whose answer arrived before the "
        "deadline found it removed or gone, or if the platform refused it at submission. It "
        "counts as not removed in time if a look sent at or after the deadline found it still "
        "visible. Faults and unreadable answers are never counted as removals; a probe with no "
        "usable look at the deadline, whose submission or notice failed, or that is still being "
        "watched has no known outcome."
    ),
    N_(
        "The worst case decides. Every planned violating probe counts. With one-sided exact "
        "(Clopper–Pearson) bounds at the criterion's confidence, a criterion is COMPLIANT only "
        "if the lower bound on the removal-in-deadline rate reaches the threshold with every "
        "probe without a known outcome counted as not removed in time; NON_COMPLIANT only if "
        "the upper bound stays below the threshold with every such probe counted as removed in "
        "time; INCONCLUSIVE otherwise, and whatever the counts when the measured share of "
        "planned probes is below the floor (90 % unless the pack or plan says otherwise); "
        "NOT_MEASURED when the run failed. A runtime failure is never a low score, and a "
        "platform cannot gain a verdict by making outcomes unknown."
    ),
    N_(
        "Rates are shown over every planned probe with two-sided exact intervals running from "
        "the worst case's low end to the best case's high end; Wilson intervals among measured "
        "probes are given in the JSON for comparison."
    ),
    N_(
        "Over-removal: controls are benign look-alikes. A criterion has an over-removal finding "
        "(EXCESSIVE), which fails it and the exit code, when the one-sided exact lower bound on "
        "the share of its controls removed or refused, with unknown controls counted as kept, "
        "is above the acceptable rate (the pack's choice, 10 % unless it says otherwise). "
        "Controls removed after a notice or order against them are counted apart from controls "
        "removed with none."
    ),
    N_(
        "A scorecard of a run that is not complete is PRELIMINARY (or CANCELLED, or FAILED): "
        "its pending probes count as unknown and its exit code is never 0."
    ),
    N_(
        "Removal time is interval-censored: it lies between the last look that saw the post and "
        "the first that found it gone; posts still up when observation ended, and probes whose "
        "outcome is unknown but whose looks bound a removal time, are censored at what was "
        "seen. The distribution of time to removal is Turnbull's nonparametric "
        "maximum-likelihood estimate; median and 90th percentile carry bootstrap intervals."
    ),
)


DEMO_SCALE = N_(
    "DEMONSTRATION TIME SCALE: every deadline and platform latency in this run was divided by "
    "%(scale)s. The figures show how the method works; they are not a measurement of any real "
    "platform's compliance."
)


def methodology_lines(time_scale: float) -> list[str]:
    """The methodology's messages, untranslated; the time-scale one has a ``%(scale)s`` slot."""
    return [*_METHOD, DEMO_SCALE] if time_scale != 1 else list(_METHOD)


def methodology(time_scale: float) -> list[str]:
    """The methodology in English, as the scorecard model keeps it."""
    scale = f"{time_scale:g}"
    return [
        line % {"scale": scale} if line is DEMO_SCALE else line
        for line in methodology_lines(time_scale)
    ]
