"""The page view model: every figure and sentence a scorecard page shows, built from the
:class:`~audit.scorecard.Scorecard` in the page's language.

:func:`page_context` gives a :class:`ScorecardPage` — the headline, the verdict counts, one
:class:`CriterionView` per criterion (its bars, curve and outcome bar from
:mod:`audit.report.charts`, its times in platform time, its breakdowns and the sentences that
explain its verdict) and the evidence grouped by criterion. The HTML and Markdown templates
print it and compute nothing; the page knows nothing of templates or formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from audit.clock import utc_iso
from audit.durations import format_duration
from audit.i18n import Language, language
from audit.report.charts import (
    CurveChart,
    OutcomeBar,
    RateAxis,
    RateBar,
    curve_chart,
    outcome_bar,
    rate_axis,
    rate_bar,
)
from audit.scorecard import CriterionCard, Group, ProbeEvidence, Scorecard, TimeFigure
from audit.scorecard_probes import ProbeRecord, ProbeTable, probe_rows
from audit.scorecard_text import (
    by_deadline_text,
    cause_text,
    criterion_title,
    headline_text,
    legal_reference,
    localised_time,
    methodology_text,
    over_removal_text,
    overall_rule_text,
    pack_text,
    period_text,
    sensitivity_text,
    standing_text,
    verdict_text,
)

__all__ = [
    "CriterionView",
    "EvidenceGroup",
    "ScorecardPage",
    "headline",
    "page_context",
    "time_text",
]


def time_text(figure: TimeFigure, time_scale: float, lang: Language | None = None) -> str:
    """A time figure in platform time (run time × ``time_scale``), with its interval."""
    if lang is not None and lang.code != "en":
        return localised_time(lang, figure, time_scale)
    if time_scale == 1 or figure.seconds is None:
        return figure.text
    text = format_duration(figure.seconds * time_scale)
    if figure.low is not None:
        high = "∞" if figure.high is None else format_duration(figure.high * time_scale)
        text += f" ({format_duration(figure.low * time_scale)} – {high})"
    return text


@dataclass(frozen=True)
class CriterionView:
    """One criterion's figures and sentences, in the page's language."""

    card: CriterionCard
    bar: RateBar
    mini: RateBar
    curve: CurveChart | None
    outcomes: OutcomeBar
    median: str
    p90: str
    breakdowns: tuple[tuple[str, tuple[Group, ...]], ...]  # dimensions with several groups
    uniform: tuple[tuple[str, str], ...]  # dimensions where every probe had the same value
    title: str  # in the pack's language where the pack gives it
    reason: str  # why the verdict, and how unknowns were treated
    over_removal: str
    by_deadline: str
    causes: tuple[tuple[str, int], ...]
    legal: str  # the citation, in the pack's words for the page's language where given


@dataclass(frozen=True)
class EvidenceGroup:
    criterion_id: str
    title: str
    probes: Sequence[ProbeEvidence]  # violating first, then controls, by clock start


@dataclass(frozen=True)
class ScorecardPage:
    headline: str
    verdict_counts: tuple[tuple[str, int], ...]
    violating: int
    controls: int
    duration: str
    axis: RateAxis
    criteria: tuple[CriterionView, ...]
    evidence: tuple[EvidenceGroup, ...]
    # the probes to look at: violating not removed in time, controls removed, not measured
    to_look_at: Sequence[ProbeEvidence]
    disagreeing: Sequence[ProbeEvidence]  # probes whose views disagreed on some look
    evasions: dict[str, list[Any]]  # by criterion id, when the scorecard reports them
    lang: str = "en"
    pack_title: str = ""
    pack_instrument: str = ""
    pack_disclaimer: str = ""
    standing_note: str = ""
    overall_rule: str = ""
    methodology: tuple[str, ...] = ()


def _criterion_view(
    c: CriterionCard, axis: RateAxis, mini: RateAxis, card: Scorecard, lang: Language
) -> CriterionView:
    scale = card.time_scale
    dimensions: dict[str, list[Group]] = {}
    for group in c.breakdowns:
        dimensions.setdefault(group.dimension, []).append(group)
    return CriterionView(
        card=c,
        bar=rate_bar(
            axis, c.removal_in_deadline.rate, c.one_sided_lower, c.one_sided_upper, c.threshold
        ),
        mini=rate_bar(
            mini, c.removal_in_deadline.rate, c.one_sided_lower, c.one_sided_upper, c.threshold
        ),
        curve=curve_chart(c, scale, lang),
        outcomes=outcome_bar(c.counts),
        median=time_text(c.median_time, scale, lang),
        p90=time_text(c.p90_time, scale, lang),
        breakdowns=tuple((d, tuple(g)) for d, g in dimensions.items() if len(g) > 1),
        uniform=tuple((d, g[0].value) for d, g in dimensions.items() if len(g) == 1),
        title=criterion_title(lang, c),
        reason=f"{verdict_text(lang, card, c)} {sensitivity_text(lang, c)}",
        over_removal=over_removal_text(lang, card, c),
        by_deadline=by_deadline_text(lang, c),
        causes=tuple((cause_text(lang, k), n) for k, n in c.unknown_causes.items()),
        legal=legal_reference(lang, c),
    )


def headline(card: Scorecard, lang: Language | None = None) -> str:
    """One sentence a reader can act on: which criteria fail, or why there is no verdict."""
    return headline_text(lang or language("en"), card)


def _record_order(r: ProbeRecord) -> tuple[bool, str, str]:
    return (r.expectation != "violating", utc_iso(r.clock_start) or "", r.probe_id)


def _evidence_order(p: ProbeEvidence) -> tuple[bool, str, str]:
    return (p.expectation != "violating", p.clock_start_utc or "", p.probe_id)


def _by_criterion(probes: Sequence[ProbeEvidence]) -> dict[str, Sequence[ProbeEvidence]]:
    """Each criterion's probes in the appendix's order; a table's as a table of its records,
    whose rows are made only where the page lists them."""
    if isinstance(probes, ProbeTable):
        records: dict[str, list[ProbeRecord]] = {}
        for r in probes.records:
            records.setdefault(r.criterion_id, []).append(r)
        return {c: ProbeTable(sorted(rs, key=_record_order)) for c, rs in records.items()}
    listed: dict[str, list[ProbeEvidence]] = {}
    for p in probes:
        listed.setdefault(p.criterion_id, []).append(p)
    return {c: tuple(sorted(ps, key=_evidence_order)) for c, ps in listed.items()}


def _evidence(card: Scorecard, lang: Language) -> tuple[EvidenceGroup, ...]:
    by_criterion = _by_criterion(card.probes)
    return tuple(
        EvidenceGroup(
            criterion_id=c.id, title=criterion_title(lang, c), probes=by_criterion.get(c.id, ())
        )
        for c in card.criteria
    )


_TO_LOOK_AT = frozenset({"survived", "removed_late", "over_removed", "inconclusive"})


def _to_look_at(probes: Sequence[ProbeEvidence]) -> Sequence[ProbeEvidence]:
    if isinstance(probes, ProbeTable):
        return probes.where(lambda r: r.outcome is not None and r.outcome.value in _TO_LOOK_AT)
    return tuple(p for p in probes if p.outcome in _TO_LOOK_AT)


def _disagreeing(probes: Sequence[ProbeEvidence]) -> Sequence[ProbeEvidence]:
    if isinstance(probes, ProbeTable):
        return probes.where(lambda r: r.view_disagreements > 0)
    return tuple(p for p in probes if p.view_disagreements)


def page_context(card: Scorecard, lang: Language | None = None) -> ScorecardPage:
    lang = lang or language("en")
    bounds = [b for c in card.criteria for b in (c.one_sided_lower, c.removal_in_deadline.rate)]
    axis = rate_axis([*bounds, *(c.threshold for c in card.criteria)], lang=lang)
    mini = RateAxis(low=axis.low, width=150, ticks=())
    order = ("NON_COMPLIANT", "INCONCLUSIVE", "NOT_MEASURED", "COMPLIANT")
    verdicts = [str(c.verdict) for c in card.criteria]
    return ScorecardPage(
        headline=headline_text(lang, card),
        verdict_counts=tuple((v, verdicts.count(v)) for v in order if v in verdicts),
        violating=sum(1 for p in probe_rows(card.probes) if p.expectation == "violating"),
        controls=sum(1 for p in probe_rows(card.probes) if p.expectation == "control"),
        duration=period_text(lang, card),
        axis=axis,
        criteria=tuple(_criterion_view(c, axis, mini, card, lang) for c in card.criteria),
        evidence=_evidence(card, lang),
        to_look_at=_to_look_at(card.probes),
        disagreeing=_disagreeing(card.probes),
        evasions=_evasions(card),
        lang=lang.code,
        pack_title=pack_text(lang, card, "title"),
        pack_instrument=pack_text(lang, card, "instrument"),
        pack_disclaimer=pack_text(lang, card, "disclaimer"),
        standing_note=standing_text(lang, card),
        overall_rule=overall_rule_text(lang, card),
        methodology=tuple(methodology_text(lang, card)),
    )


def _evasions(card: Scorecard) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for finding in getattr(card, "evasions", None) or []:
        found.setdefault(str(getattr(finding, "criterion_id", "")), []).append(finding)
    return found
