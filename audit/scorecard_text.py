"""The scorecard's sentences in the reader's language, from its figures.

The scorecard model keeps its prose in English (the JSON scorecard is the record, and its schema
does not change with the reader). A renderer in another language rebuilds each sentence here
from the same figures, through the message catalogs; in English it shows the model's own text,
and tests/test_i18n.py checks that the English built here is that text word for word, so the
two cannot drift apart.


Each function takes ``built=True`` to build the English too (the tests compare it with the
model's).
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from babel.numbers import format_decimal, format_percent

from audit.arms import EvasionFinding
from audit.i18n import N_, Language
from audit.scorecard import holm_of
from audit.scorecard_method import DEMO_SCALE, RULE_LINES, methodology_lines
from audit.scorecard_model import CriterionCard, Scorecard, TimeFigure
from audit.scorecard_probes import probe_rows
from audit.scorecard_views import views_line
from audit.stats import exact_upper_bound

__all__ = [
    "VERDICT_LABELS",
    "by_deadline_text",
    "cause_text",
    "criterion_title",
    "evasion_text",
    "headline_text",
    "legal_reference",
    "localised_time",
    "methodology_text",
    "over_removal_text",
    "overall_rule_text",
    "pack_text",
    "pack_title",
    "period_text",
    "reason_text",
    "sensitivity_text",
    "standing_text",
    "variant_text",
    "verdict_text",
]

VERDICT_LABELS = {
    "COMPLIANT": N_("Compliant"),
    "NON_COMPLIANT": N_("Non-compliant"),
    "INCONCLUSIVE": N_("Inconclusive"),
    "NOT_MEASURED": N_("Not measured"),
}
_CODES = {  # the upper-case names the English sentences start with, and their translations
    "COMPLIANT": N_("COMPLIANT"),
    "NON_COMPLIANT": N_("NON_COMPLIANT"),
    "INCONCLUSIVE": N_("INCONCLUSIVE"),
    "NOT_MEASURED": N_("NOT_MEASURED"),
    "EXCESSIVE": N_("EXCESSIVE"),
    "WITHIN_LIMIT": N_("WITHIN_LIMIT"),
    "NOT_SHOWN": N_("NOT_SHOWN"),
    "FINAL": N_("FINAL"),
    "PRELIMINARY": N_("PRELIMINARY"),
    "CANCELLED": N_("CANCELLED"),
    "FAILED": N_("FAILED"),
}


def code(lang: Language, name: str) -> str:
    """An upper-case verdict or standing name as the reader's language writes it."""
    return lang.gettext(_CODES[name]) if name in _CODES else name


def _share(lang: Language, value: float) -> str:
    """A share to four significant figures (``97.5 %``)."""
    if lang.code == "en":
        return f"{value * 100:.4g} %"
    return format_percent(value, locale=lang.code, decimal_quantization=False)


def _whole_pct(lang: Language, value: float) -> str:
    """A share in whole percent, as the overall rule writes it (``10 %``)."""
    return lang.pct(value, 0)


def _plain(lang: Language, value: float) -> str:
    """A rate as a plain decimal (``0.95``), as the threshold is written in the pack."""
    return f"{value:g}" if lang.code == "en" else format_decimal(value, locale=lang.code)


def verdict_text(lang: Language, card: Scorecard, c: CriterionCard, built: bool = False) -> str:
    """Why the criterion has its verdict (the model's ``verdict_reason``)."""
    if lang.code == "en" and not built:  # the model's own text
        return c.verdict_reason
    verdict = str(c.verdict)
    if verdict == "NOT_MEASURED":
        if card.failure is not None and card.standing == "FAILED":
            return lang.format(
                N_("NOT_MEASURED: the run failed (%(failure)s); a runtime failure is not a score."),
                failure=card.failure,
            )
        return lang.gettext(N_("NOT_MEASURED: no violating probe was planned."))
    successes, planned = c.removal_in_deadline.successes, c.planned
    values = {
        "code": code(lang, verdict),
        "counted": lang.format(
            N_(
                "%(successes)s of %(planned)s planned probes were removed in time, "
                "%(missed)s were not, %(unknown)s unknown"
            ),
            successes=successes,
            planned=planned,
            missed=c.measured - successes,
            unknown=c.inconclusive,
        ),
        "level": _share(lang, c.confidence),
        "lower": lang.number(c.one_sided_lower or 0.0, 4),
        "upper": lang.number(c.one_sided_upper or 0.0, 4),
        "threshold": _plain(lang, c.threshold),
    }
    if verdict == "COMPLIANT":
        message = N_(
            "%(code)s: %(counted)s; counting every unknown as not removed, the one-sided "
            "%(level)s lower bound %(lower)s reaches the threshold %(threshold)s."
        )
    elif verdict == "NON_COMPLIANT":
        message = N_(
            "%(code)s: %(counted)s; even counting every unknown as removed in time, the "
            "one-sided %(level)s upper bound %(upper)s is below the threshold %(threshold)s."
        )
    elif c.measured_share is not None and c.measured_share < c.min_measured_share:
        values["share"] = _share(lang, c.measured_share)
        values["floor"] = _share(lang, c.min_measured_share)
        message = N_(
            "%(code)s: %(counted)s; only %(share)s of the planned probes were measured, below "
            "the floor of %(floor)s."
        )
    else:
        message = N_(
            "%(code)s: %(counted)s; the worst-case lower bound %(lower)s and the best-case "
            "upper bound %(upper)s straddle the threshold %(threshold)s."
        )
    return lang.format(message, **values)


def cause_text(lang: Language, cause: str) -> str:
    """A cause of unknown outcomes (:func:`audit.findings.unknown_cause`) in the reader's
    language; a cause quoted from a probe's reason stays as recorded."""
    return lang.gettext(cause)


def sensitivity_text(lang: Language, c: CriterionCard, built: bool = False) -> str:
    """How the unknown outcomes were treated (the model's ``sensitivity``)."""
    if lang.code == "en" and not built:  # the model's own text
        return c.sensitivity
    if c.inconclusive == 0:
        return lang.format(
            N_("Every one of the %(planned)s planned violating probes has a known outcome."),
            planned=c.planned,
        )
    by_cause = ", ".join(f"{n} {cause_text(lang, cause)}" for cause, n in c.unknown_causes.items())
    return lang.format(
        N_(
            "%(unknown)s of %(planned)s planned violating probes have no known outcome "
            "(%(causes)s). The worst case decides: they count as not removed in time for a "
            "%(compliant)s verdict and as removed in time for a %(non_compliant)s one."
        ),
        unknown=c.inconclusive,
        planned=c.planned,
        causes=by_cause,
        compliant=code(lang, "COMPLIANT"),
        non_compliant=code(lang, "NON_COMPLIANT"),
    )


def over_removal_text(
    lang: Language, card: Scorecard, c: CriterionCard, built: bool = False
) -> str:
    """The over-removal finding and why (the model's ``over_removal_reason``)."""
    if lang.code == "en" and not built:  # the model's own text
        return c.over_removal_reason
    verdict = str(c.over_removal_verdict)
    unknown = c.controls - c.kept - c.over_removed
    if verdict == "NOT_MEASURED":
        why = (
            lang.format(N_("the run failed (%(failure)s)"), failure=card.failure)
            if card.failure is not None and card.standing == "FAILED"
            else lang.gettext(N_("no control planned"))
        )
        return lang.format(N_("%(code)s: %(why)s."), code=code(lang, verdict), why=why)
    upper = exact_upper_bound(c.over_removed + unknown, c.controls, c.confidence)
    values = {
        "code": code(lang, verdict),
        "counted": lang.format(
            N_("%(removed)s of %(planned)s controls removed, %(kept)s kept, %(unknown)s unknown"),
            removed=c.over_removed,
            planned=c.controls,
            kept=c.kept,
            unknown=unknown,
        ),
        "level": _share(lang, c.confidence),
        "lower": lang.number(c.over_removal_lower or 0.0, 4),
        "upper": lang.number(upper, 4),
        "max": _plain(lang, c.max_over_removal),
    }
    messages = {
        "EXCESSIVE": N_(
            "%(code)s: %(counted)s; counting every unknown as kept, the one-sided %(level)s "
            "lower bound on the over-removal rate, %(lower)s, is above the acceptable %(max)s."
        ),
        "WITHIN_LIMIT": N_(
            "%(code)s: %(counted)s; counting every unknown as removed, the one-sided %(level)s "
            "upper bound %(upper)s is at or below the acceptable %(max)s."
        ),
        "NOT_SHOWN": N_(
            "%(code)s: %(counted)s; the bounds %(lower)s and %(upper)s straddle the acceptable "
            "%(max)s: too few controls to show over-removal either way."
        ),
    }
    return lang.format(messages[verdict], **values)


def overall_rule_text(lang: Language, card: Scorecard, built: bool = False) -> str:
    """The overall verdict's rule and its error rates (the model's ``overall_rule``)."""
    if lang.code == "en" and not built:  # the model's own text
        return card.overall_rule
    cards = card.criteria
    if not cards:
        return lang.gettext(N_("No criterion was audited."))
    alphas = [1 - c.confidence for c in cards]
    holm = holm_of(cards)
    failing = sum(1 for c in cards if c.verdict == "NON_COMPLIANT")
    text = lang.format(
        N_(
            "The overall verdict is %(compliant)s only when every criterion is %(compliant)s "
            "with no over-removal finding: an intersection-union test, so for a platform that "
            "misses any one criterion's threshold the chance of an overall %(compliant)s is at "
            "most that criterion's 1 - confidence. The overall %(non_compliant)s flag (exit code "
            "1) is raised by any of the %(criteria)s criteria, unadjusted, because each is its "
            "own legal obligation; for a platform meeting every threshold its family-wise "
            "false-alarm rate is at most %(family)s (the sum of the criteria's 1 - confidence). "
            "Under Holm's step-down adjustment (family-wise rate at most %(holm_rate)s), "
            "%(holm)s of the %(failing)s criteria found %(non_compliant)s on removal remain so"
        ),
        compliant=code(lang, "COMPLIANT"),
        non_compliant=code(lang, "NON_COMPLIANT"),
        criteria=len(cards),
        family=_whole_pct(lang, min(1.0, sum(alphas))),
        holm_rate=_whole_pct(lang, min(alphas)),
        holm=len(holm),
        failing=failing,
    )
    return text + (f": {', '.join(holm)}." if holm else ".")


def standing_text(lang: Language, card: Scorecard, built: bool = False) -> str:
    """Whether the scorecard is final, and what that means (the model's ``standing_note``)."""
    if lang.code == "en" and not built:  # the model's own text
        return card.standing_note
    standing, failure = str(card.standing), card.failure
    if standing == "FINAL":
        return lang.gettext(N_("Final: the run is complete and every probe has its outcome."))
    if standing == "FAILED":
        return lang.format(
            N_("FAILED: the run failed (%(failure)s); nothing is scored."),
            failure=failure or lang.gettext(N_("no reason recorded")),
        )
    head = (
        lang.gettext(N_("PRELIMINARY: the run is still going"))
        if standing == "PRELIMINARY"
        else lang.format(
            N_("CANCELLED: the run was stopped (%(why)s)"),
            why=failure or lang.gettext(N_("by cleanup")),
        )
    )
    return lang.format(
        N_(
            "%(head)s; %(pending)s probe(s) have no outcome yet and count as unknown (the worst "
            "case decides). This scorecard is not a final verdict and its exit code is never 0."
        ),
        head=head,
        pending=card.pending,
    )


def methodology_text(lang: Language, card: Scorecard, built: bool = False) -> list[str]:
    """The methodology section in the reader's language (the model's ``methodology``)."""
    if lang.code == "en" and not built:  # the model's own text
        return list(card.methodology)
    scale = f"{card.time_scale:g}"
    media = any(p.modality != "text" for p in probe_rows(card.probes))
    lines = [
        lang.format(line, scale=scale) if line is DEMO_SCALE else lang.gettext(line)
        for line in methodology_lines(card.time_scale, media)
    ]
    if card.look_views is not None:
        lines.insert(RULE_LINES, views_line(card.look_views, lang))
    return lines


# Reasons the engine records for a probe without a known outcome (audit/engine.py), with the
# platform's own words, where there are some, kept as recorded.
_REASONS = (
    (re.compile(r"^submission failed: (?P<detail>.*)$", re.S), N_("submission failed: %(detail)s")),
    (
        re.compile(r"^(?:the )?(?P<filing>notice|order) could not be filed$"),
        N_("the %(filing)s could not be filed"),
    ),
    (
        re.compile(
            r"^(?P<filing>notice|order) filed again; when the platform received it is not known$"
        ),
        N_("%(filing)s filed again; when the platform received it is not known"),
    ),
    (
        re.compile(
            r"^interrupted during submission; the platform cannot tell whether it was posted$"
        ),
        N_("interrupted during submission; the platform cannot tell whether it was posted"),
    ),
)
_FILINGS = {"notice": N_("notice"), "order": N_("order")}


def reason_text(lang: Language, reason: str) -> str:
    """Why a probe has the outcome it has, in the reader's language (the platform's words in it,
    such as an error's detail, as recorded)."""
    if lang.code == "en" or not reason:
        return reason
    for pattern, message in _REASONS:
        found = pattern.match(reason)
        if found:
            values = found.groupdict()
            if "filing" in values:
                values["filing"] = lang.gettext(_FILINGS[values["filing"]])
            return lang.format(message, **values)
    return lang.gettext(reason)


def variant_text(lang: Language, label: str) -> str:
    """A variant's label (``diacritics stripped + letters spaced out``) in the reader's language."""
    return " + ".join(lang.gettext(part) for part in label.split(" + "))


def evasion_text(lang: Language, e: EvasionFinding) -> str:
    """One evasion finding in a sentence (the model's ``summary``)."""
    if lang.code == "en":
        return e.summary
    return lang.format(
        N_("removed: %(removed)s/%(measured)s clean; survives: %(label)s (%(survived)s/%(n)s)"),
        removed=e.clean_removed,
        measured=e.clean_measured,
        label=variant_text(lang, e.label),
        survived=e.measured - e.removed,
        n=e.measured,
    )


def headline_text(lang: Language, card: Scorecard) -> str:
    """One sentence a reader can act on: which criteria fail, or why there is no verdict."""
    platform, total = card.target["name"], len(card.criteria)
    by_verdict: dict[str, list[str]] = {}
    for c in card.criteria:
        by_verdict.setdefault(str(c.verdict), []).append(c.id)
    if total == 0:
        return lang.format(
            N_("No criterion of this run could be measured on %(platform)s."), platform=platform
        )
    over = [c.id for c in card.criteria if c.over_removal_verdict == "EXCESSIVE"]
    sentences = (
        (
            by_verdict.get("NON_COMPLIANT", []),
            N_(
                "%(platform)s did not remove prohibited content within the deadline often "
                "enough on %(count)s of %(total)s criteria (%(ids)s)."
            ),
        ),
        (
            by_verdict.get("INCONCLUSIVE", []),
            N_(
                "For %(count)s of %(total)s (%(ids)s) the probes cannot tell whether the "
                "requirement is met; more probes, or more of them measured, are needed."
            ),
        ),
        (
            over,
            N_(
                "%(platform)s removed benign look-alikes more often than acceptable on %(count)s "
                "of %(total)s criteria (%(ids)s)."
            ),
        ),
        (
            by_verdict.get("NOT_MEASURED", []),
            N_(
                "%(count)s of %(total)s (%(ids)s) could not be measured; no verdict is given for "
                "them."
            ),
        ),
    )
    parts = [
        lang.format(message, platform=platform, count=len(ids), total=total, ids=", ".join(ids))
        for ids, message in sentences
        if ids
    ]
    if not parts:
        parts.append(
            lang.format(
                N_(
                    "%(platform)s removed prohibited content within the deadline at or above the "
                    "required rate on all %(total)s criteria."
                ),
                platform=platform,
                total=total,
            )
        )
    if card.standing != "FINAL":
        parts.insert(
            0,
            lang.format(
                N_("%(standing)s: not a final verdict."), standing=code(lang, str(card.standing))
            ),
        )
    return " ".join(parts)


def period_text(lang: Language, card: Scorecard) -> str:
    """How long the audit period lasted (in platform time too, on a compressed clock)."""
    start, end, scale = card.period_start_utc, card.period_end_utc, card.time_scale
    if not start or not end:
        return lang.gettext(N_("still running")) if start else "–"
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    text = lang.duration(max(0.0, seconds))
    if scale == 1:
        return text
    return text + lang.format(
        N_(" (platform time %(duration)s)"), duration=lang.duration(seconds * scale)
    )


def localised_time(lang: Language, figure: TimeFigure, time_scale: float) -> str:
    """A time figure (median, 90th percentile) in platform time, with its interval."""
    if figure.seconds is None or math.isinf(figure.seconds):
        return lang.gettext(N_("not reached"))
    text = lang.duration(figure.seconds * time_scale)
    if figure.low is not None:
        high = "∞" if figure.high is None else lang.duration(figure.high * time_scale)
        text += f" ({lang.duration(figure.low * time_scale)} – {high})"
    return text


def by_deadline_text(lang: Language, c: CriterionCard) -> str:
    """The share removed by the deadline from the time-to-removal estimate (the model's
    ``removed_by_deadline.text``), with the range counted probes allow where some are unknown."""
    if lang.code == "en":
        return c.removed_by_deadline.text
    figure = c.removed_by_deadline
    if figure.low is None or figure.high is None:
        return lang.gettext(N_("no data"))
    text = lang.pct(figure.low)
    if abs(figure.high - figure.low) >= 5e-4:
        text += f" – {lang.pct(figure.high)}"
    worst, planned = c.removal_in_deadline.rate, c.planned
    if c.inconclusive and worst is not None and planned:
        best = (c.removal_in_deadline.successes + c.inconclusive) / planned
        text += lang.format(
            N_("; counted probes %(spread)s with unknowns either way"),
            spread=f"{lang.pct(worst)} – {lang.pct(best)}",
        )
    return text


def pack_text(lang: Language, card: Scorecard, field: str) -> str:
    """The pack's ``title``, ``instrument`` or ``disclaimer`` in the reader's language where
    the pack gives it, else as the pack writes it."""
    given = card.pack_translations.get(lang.code, {}).get(field)
    return given or str(card.pack[field])


def pack_title(lang: Language, card: Scorecard) -> str:
    return pack_text(lang, card, "title")


def criterion_title(lang: Language, c: CriterionCard) -> str:
    """The criterion's title in the reader's language where its pack gives one."""
    return c.translations.get(lang.code, {}).get("title") or c.title


def legal_reference(lang: Language, c: CriterionCard) -> str:
    """The criterion's citation in the reader's language where its pack gives one."""
    return c.translations.get(lang.code, {}).get("legal_reference") or c.legal_reference
