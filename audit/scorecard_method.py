"""The methodology every scorecard states, in plain words."""

from __future__ import annotations

from audit.i18n import N_

__all__ = ["DEMO_SCALE", "MEDIA", "RULE_LINES", "methodology", "methodology_lines"]

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
    N_(
        "The methodology annex ties these rules to this run: the plan frozen when the run was "
        "created (its digest is in the signed evidence manifest), each criterion's threshold and "
        "confidence, the sampling, the procedures as run, and every deviation from the plan."
    ),
)

RULE_LINES = len(_METHOD)  # the method's own lines; the views line follows them

MEDIA = N_(
    "Image, speech and video probes are posted as media files (PNG, WAV, MP4) made from the "
    "probe's text, with no caption. A media probe counts in its modality's figures only where "
    "the evidence ledger shows the platform answered the request that carried the file (an "
    "acceptance or a refusal; a fault such as a 5xx or no answer is not a delivery), with the "
    "file's SHA-256 recorded; `verify` makes each file again and "
    "checks that digest. Media probes without such a record are shown apart, as 'media not "
    "shown delivered'."
)


DEMO_SCALE = N_(
    "DEMONSTRATION TIME SCALE: every deadline and platform latency in this run was divided by "
    "%(scale)s. The figures show how the method works; they are not a measurement of any real "
    "platform's compliance."
)


def methodology_lines(time_scale: float, media: bool = False) -> list[str]:
    """The methodology's messages, untranslated; the time-scale one has a ``%(scale)s`` slot;
    ``media`` when the run has image, speech or video probes."""
    lines = [*_METHOD, MEDIA] if media else list(_METHOD)
    return [*lines, DEMO_SCALE] if time_scale != 1 else lines


def methodology(time_scale: float, views: str | None = None, media: bool = False) -> list[str]:
    """The methodology in English, as the scorecard model keeps it; ``views``: the line on
    whose view decided the looks (after the method's rules)."""
    scale = f"{time_scale:g}"
    lines = [
        line % {"scale": scale} if line is DEMO_SCALE else line
        for line in methodology_lines(time_scale, media)
    ]
    if views is not None:
        lines.insert(RULE_LINES, views)
    return lines
