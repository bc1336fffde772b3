"""The scorecard: every figure of a run, computed from stored observations.

The view model is in :mod:`audit.scorecard_model` (re-exported here) and the methodology text in
:mod:`audit.scorecard_method`. Renderers take a :class:`Scorecard` and know nothing of HTTP or
SQL. Figures come from :mod:`audit.stats`; outcomes from :func:`audit.outcomes.classify`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from audit import __version__
from audit.arms import EvasionFinding, minimal_evasions, tally_arms
from audit.clock import utc_iso
from audit.durations import format_duration
from audit.engine import probe_facts
from audit.findings import (
    Standing,
    exit_code_for,
    holm_non_compliant,
    overall_rule,
    standing_of,
    unknown_causes,
    unknowns_text,
)
from audit.i18n import N_
from audit.lifecycle import Action, FilingResult, RunStatus
from audit.numbers import format_percent
from audit.outcomes import Outcome, classify
from audit.packs import Criterion, Pack
from audit.scorecard_annex import build_annex
from audit.scorecard_authority import AuthorityMeasure, ProbeTimes, authority_measures
from audit.scorecard_method import methodology
from audit.scorecard_model import (
    SCHEMA_VERSION,
    CriterionCard,
    CurvePoint,
    Filings,
    Group,
    ProbeEvidence,
    Rate,
    Scorecard,
    TimeFigure,
)
from audit.scorecard_probes import Filing, ProbeRecord, ProbeTable, shared, time_text
from audit.scorecard_views import look_views_of, probe_views, views_line
from audit.stats import (
    DEFAULT_MAX_OVER_REMOVAL,
    DEFAULT_MIN_MEASURED_SHARE,
    CensoredTime,
    Interval,
    SurvivalEstimate,
    Verdict,
    VerdictDecision,
    clopper_pearson,
    decide,
    judge_over_removal,
    quantile_intervals,
    turnbull,
    wilson,
)
from audit.store import ObservationRow, ProbeRow, RunRow
from audit.store_protocol import RunStore

__all__ = [
    "SCHEMA_VERSION",
    "CriterionCard",
    "CurvePoint",
    "Group",
    "ProbeEvidence",
    "Rate",
    "Scorecard",
    "TimeFigure",
    "bootstrap_resamples",
    "build_scorecard",
    "methodology",
]


def _rate(k: int, n: int, level: float, method: Callable[[int, int, float], Interval]) -> Rate:
    interval = method(k, n, level)
    return Rate(
        successes=k,
        n=n,
        rate=k / n if n else None,
        low=interval.low,
        high=interval.high,
        level=level,
    )


def bootstrap_resamples(n: int) -> int:
    """Bootstrap resamples behind the time-to-removal intervals of ``n`` probes (see
    docs/statistics.md for their Monte Carlo error and cost): 400 up to 500 probes, then
    fewer in proportion (resamples times probes level), down to 100 from 2,000 probes on, so
    that neither the count nor the cost steps at one size. A fit costs less than in proportion
    to its probes, so a call's cost still falls a little from 500 to 2,000 probes."""
    return 400 if n <= 500 else max(100, round(400 * 500 / n))


def _time(seconds: float | None, low: float | None = None, high: float | None = None) -> TimeFigure:
    return TimeFigure(
        seconds=seconds,
        low=low,
        high=None if high is not None and math.isinf(high) else high,
        text=time_text(seconds, low, high),
    )


def _filing(row: ProbeRow, observations: Sequence[ObservationRow]) -> Filing | None:
    if row.trigger not in _FILINGS:
        return None
    mine = [o for o in observations if o.action == row.trigger]
    if not mine:
        return None
    return Filing(
        accepted=sum(1 for o in mine if o.result == "filed"),
        intents=sum(1 for o in mine if o.result == FilingResult.SENDING),
        cut_short=mine[-1].result == FilingResult.SENDING,
    )


def _judge(row: ProbeRow, observations: list[ObservationRow]) -> ProbeRecord:
    """A probe judged from its row and observations: its record, with only the content the
    scorecard shows (not the look schedule, slots, hashes or media settings)."""
    decided = classify(probe_facts(row, observations), observations)
    filed = [o.started_at for o in observations if o.action in _FILINGS and o.result == "filed"]
    view, disagreements, measured = probe_views(observations)
    probe = row.probe
    return ProbeRecord(
        probe_id=row.probe_id,
        seq=row.seq,
        criterion_id=shared(row.criterion_id),
        expectation=shared(row.expectation),
        trigger=shared(row.trigger),
        state=shared(row.state),
        template_id=shared(str(probe.get("template_id", ""))),
        language=shared(str(probe.get("language", ""))),
        modality=shared(str(probe.get("modality", "text"))),
        variants=tuple(shared(str(v)) for v in probe.get("variants") or ()),
        text_utf8=str(probe.get("text", "")).encode("utf-8", "surrogatepass"),
        post_id=row.post_id,
        scheduled_at=row.scheduled_at,
        deadline_s=row.deadline_s,
        submitted_at=row.submitted_at,
        clock_start=row.clock_start,
        deadline_at=row.deadline_at,
        withdrawn_at=row.withdrawn_at,
        outcome=decided.outcome,
        last_visible=decided.last_visible_at,
        first_down=decided.first_down_at,
        reason=shared(decided.reason),
        looks=sum(1 for o in observations if o.action == "status"),
        noticed_at=min(filed) if filed else None,
        view=None if view is None else shared(view),
        view_disagreements=disagreements,
        measured_looks=measured,
        filing=_filing(row, observations),
    )


_FILINGS = frozenset({Action.NOTICE, Action.ORDER})


def _filings(judged: Iterable[ProbeRecord]) -> Filings:
    """How the run's notices and orders went: one accepted filing per probe is the rule; a
    filing cut short by a restart is sent again only where the platform de-duplicates."""
    probes = filed = again = not_again = duplicates = 0
    for j in judged:
        filing = j.filing
        if filing is None:
            continue
        probes += 1
        filed += filing.accepted > 0
        duplicates += filing.accepted > 1
        again += max(0, filing.intents - 1)  # sent again under the same key
        not_again += filing.cut_short  # cut short and, unsafe to repeat, left
    return Filings(
        probes=probes,
        filed=filed,
        sent_again=again,
        not_sent_again=not_again,
        duplicates=duplicates,
    )


def _censored(judged: Iterable[ProbeRecord]) -> list[CensoredTime]:
    data: list[CensoredTime] = []
    for j in judged:
        start = j.clock_start
        if j.outcome is Outcome.REJECTED_AT_SUBMISSION:
            data.append(CensoredTime(0.0, 0.0))
        elif start is not None:
            # every known interval counts: inconclusive and pending probes too (last seen up,
            # first seen down or still up)
            left = max(0.0, (j.last_visible or start) - start)
            right = (j.first_down - start) if j.first_down is not None else math.inf
            data.append(CensoredTime(left, max(left, right)))
    return data


def _success_counts(judged: Sequence[ProbeRecord]) -> tuple[int, int, int]:
    """(successes, measured, unknown) among violating probes."""
    verdicts = [j.outcome.complies if j.outcome is not None else None for j in judged]
    successes = sum(1 for v in verdicts if v is True)
    measured = sum(1 for v in verdicts if v is not None)
    return successes, measured, len(judged) - measured


NOT_DELIVERED = N_("media not shown delivered")


def _modality(j: ProbeRecord, media_sent: Mapping[str, frozenset[str]]) -> str:
    """A media probe counts as its modality only where the ledger shows the platform took its
    media; otherwise it is a group of its own, so no figure claims a modality never sent."""
    modality = j.modality
    if modality == "text" or media_sent.get(j.probe_id):
        return modality
    return f"{modality} ({NOT_DELIVERED})"


def _breakdowns(
    judged: Sequence[ProbeRecord], level: float, media_sent: Mapping[str, frozenset[str]]
) -> list[Group]:
    groups: list[Group] = []
    dimensions: dict[str, Callable[[ProbeRecord], str]] = {
        "language": lambda j: j.language,
        "variant": lambda j: "+".join(j.variants) or "clean",
        "modality": lambda j: _modality(j, media_sent),
    }
    for dimension, key in dimensions.items():
        members: dict[str, list[ProbeRecord]] = {}
        for j in judged:
            members.setdefault(key(j), []).append(j)
        for value in sorted(members):
            k, measured, unknown = _success_counts(members[value])
            n = measured + unknown  # of every planned probe: an unknown is not a removal
            groups.append(
                Group(dimension=dimension, value=value, rate=_rate(k, n, level, clopper_pearson))
            )
    return groups


def _curve(estimate: SurvivalEstimate | None, deadline: float) -> list[CurvePoint]:
    if estimate is None:
        return []
    points = sorted(
        {0.0, deadline, *(t for pair in estimate.intervals for t in pair if not math.isinf(t))}
    )
    shown = [t for t in points if t <= deadline * 1.5]
    return [
        CurvePoint(t=t, low=low, high=high)
        for t, (low, high) in zip(shown, estimate.cdf_many(shown), strict=True)
    ]


def _timing(
    data: Sequence[CensoredTime],
    estimate: SurvivalEstimate | None,
    deadline: float,
    level: float,
    seed: int,
) -> tuple[TimeFigure, TimeFigure, TimeFigure]:
    if estimate is None:
        none = _time(None)
        return none, none, TimeFigure(seconds=None, low=None, high=None, text="no data")
    shares = (0.5, 0.9)
    intervals = quantile_intervals(
        data, shares, level, resamples=bootstrap_resamples(len(data)), seed=seed
    )
    figures = [
        _time(estimate.quantile(p), low, high)
        for p, (low, high) in zip(shares, intervals, strict=True)
    ]
    f_low, f_high = estimate.cdf(deadline)
    by_deadline = TimeFigure(
        seconds=None,
        low=f_low,
        high=f_high,
        text=format_percent(f_low)
        if abs(f_high - f_low) < 5e-4
        else f"{format_percent(f_low)} – {format_percent(f_high)}",
    )
    return figures[0], figures[1], by_deadline


@dataclass(frozen=True)
class Settings:
    """The verdict settings of one criterion in one run: the plan's, else the criterion's, else
    the pack's."""

    min_measured_share: float = DEFAULT_MIN_MEASURED_SHARE
    max_over_removal: float = DEFAULT_MAX_OVER_REMOVAL


def criterion_settings(run_plan: dict[str, object], pack: Pack, criterion: Criterion) -> Settings:
    planned = run_plan.get("min_measured_share")
    share = (
        float(planned)
        if isinstance(planned, int | float)
        else criterion.min_measured_share or pack.pack.min_measured_share
    )
    over = criterion.max_over_removal
    return Settings(share, pack.pack.max_over_removal if over is None else over)


def _deadline_figure(by_deadline: TimeFigure, decision: VerdictDecision) -> TimeFigure:
    """Removed by the deadline, with the worst-to-best-case range where outcomes are unknown."""
    if not decision.unknown or decision.worst_rate is None or decision.best_rate is None:
        return by_deadline
    spread = f"{format_percent(decision.worst_rate)} – {format_percent(decision.best_rate)}"
    return by_deadline.model_copy(
        update={"text": f"{by_deadline.text}; counted probes {spread} with unknowns either way"}
    )


def _control_rates(controls: Sequence[ProbeRecord], level: float) -> tuple[Rate, Rate]:
    """Over-removal after a notice or order, and with none before it, each of its own."""
    noticed = [j for j in controls if j.noticed_at is not None]
    unprompted = [j for j in controls if j.noticed_at is None]

    def removed_after_notice(j: ProbeRecord) -> bool:
        down = j.first_down
        return (
            j.outcome is Outcome.OVER_REMOVED and down is not None and down >= (j.noticed_at or 0)
        )

    after = sum(1 for j in noticed if removed_after_notice(j))
    before = sum(1 for j in controls if j.outcome is Outcome.OVER_REMOVED) - after
    return (
        _rate(after, len(noticed), level, clopper_pearson),
        _rate(before, len(unprompted) + len(noticed) - after, level, clopper_pearson),
    )


def _card(
    criterion: Criterion,
    judged: Sequence[ProbeRecord],
    time_scale: float,
    failure: str | None,
    seed: int,
    settings: Settings,
    media_sent: Mapping[str, frozenset[str]],
) -> CriterionCard:
    reference = criterion.legal_reference
    violating = [j for j in judged if j.expectation == "violating"]
    controls = [j for j in judged if j.expectation == "control"]
    successes, measured, unknown = _success_counts(violating)
    decision = decide(
        successes,
        measured,
        unknown,
        criterion.threshold,
        criterion.confidence,
        min_measured_share=settings.min_measured_share,
        runtime_failure=failure,
    )
    level = criterion.confidence
    deadline = criterion.deadline_seconds / time_scale
    data = _censored(violating)
    estimate = turnbull(data) if data else None
    median, p90, by_deadline = _timing(data, estimate, deadline, level, seed)
    kept = sum(1 for j in controls if j.outcome is Outcome.KEPT)
    over = sum(1 for j in controls if j.outcome is Outcome.OVER_REMOVED)
    finding = judge_over_removal(
        over,
        kept,
        len(controls) - kept - over,
        settings.max_over_removal,
        level,
        runtime_failure=failure,
    )
    after_notice, unprompted = _control_rates(controls, level)
    counts = Counter(j.outcome.value if j.outcome else "pending" for j in violating)
    causes = unknown_causes((j.outcome, j.reason) for j in violating if _complies(j) is None)
    return CriterionCard(
        id=criterion.id,
        title=criterion.title,
        legal_reference=f"{reference.instrument}, {reference.article}",
        dsa_category=criterion.dsa_category,
        trigger=criterion.trigger.value,
        deadline=criterion.deadline,
        deadline_seconds=deadline,
        deadline_text=format_duration(deadline)
        + (f" (compressed from {criterion.deadline})" if time_scale != 1 else ""),
        threshold=criterion.threshold,
        confidence=criterion.confidence,
        verdict=decision.verdict,
        verdict_reason=decision.reason,
        sensitivity=unknowns_text(unknown, len(violating), causes),
        counts={o.value: counts.get(o.value, 0) for o in _VIOLATING_OUTCOMES}
        | ({"pending": counts["pending"]} if counts.get("pending") else {}),
        removal_in_deadline=_planned_rate(decision),
        wilson=_rate(successes, measured, level, wilson),
        one_sided_lower=decision.lower,
        one_sided_upper=decision.upper,
        inconclusive=unknown,
        planned=len(violating),
        measured=measured,
        measured_share=decision.measured_share,
        min_measured_share=settings.min_measured_share,
        unknown_causes=causes,
        median_time=median,
        p90_time=p90,
        removed_by_deadline=_deadline_figure(by_deadline, decision),
        curve=_curve(estimate, deadline),
        controls=len(controls),
        kept=kept,
        over_removed=over,
        over_removal=_rate(over, len(controls), level, clopper_pearson),
        over_removal_verdict=finding.verdict,
        over_removal_reason=finding.reason,
        max_over_removal=settings.max_over_removal,
        over_removal_lower=finding.lower,
        over_removal_after_notice=after_notice,
        over_removal_unprompted=unprompted,
        breakdowns=_breakdowns(violating, level, media_sent),
        translations={
            code: text.model_dump(exclude_defaults=True)
            for code, text in criterion.translations.items()
        },
    )


def _planned_rate(decision: VerdictDecision) -> Rate:
    """Removed in time out of every planned probe; the interval runs from the worst case's low
    end (unknowns not removed) to the best case's high end (unknowns removed)."""
    interval = decision.interval
    return Rate(
        successes=decision.successes,
        n=decision.planned,
        rate=decision.worst_rate,
        low=interval.low if interval else 0.0,
        high=interval.high if interval else 1.0,
        level=decision.confidence,
    )


_VIOLATING_OUTCOMES = (
    Outcome.REMOVED_IN_TIME,
    Outcome.REJECTED_AT_SUBMISSION,
    Outcome.REMOVED_LATE,
    Outcome.SURVIVED,
    Outcome.INCONCLUSIVE,
)


def _overall(cards: Sequence[CriterionCard]) -> Verdict:
    if any(c.fails for c in cards):
        return Verdict.NON_COMPLIANT
    verdicts = {c.verdict for c in cards}
    for verdict in (Verdict.NON_COMPLIANT, Verdict.NOT_MEASURED, Verdict.INCONCLUSIVE):
        if verdict in verdicts:
            return verdict
    return Verdict.COMPLIANT if cards else Verdict.NOT_MEASURED


def holm_of(cards: Sequence[CriterionCard]) -> list[str]:
    """The measured criteria still NON_COMPLIANT under Holm's step-down adjustment, each
    judged in its best case (every probe without a known outcome counted as removed)."""
    return holm_non_compliant(
        (
            c.id,
            c.removal_in_deadline.successes + c.inconclusive,
            c.planned,
            c.threshold,
            c.confidence,
        )
        for c in cards
        if c.verdict is not Verdict.NOT_MEASURED
    )


def _overall_rule(cards: Sequence[CriterionCard]) -> str:
    holm = holm_of(cards)
    failing = sum(1 for c in cards if c.verdict is Verdict.NON_COMPLIANT)
    return overall_rule(len(cards), [1 - c.confidence for c in cards], holm, failing)


def _last_deadline(pending: Sequence[ProbeRecord]) -> float | None:
    """When the last deadline of a still-pending probe falls (planned ones: from their slot)."""
    ends = [
        r.deadline_at if r.deadline_at is not None else r.scheduled_at + r.deadline_s
        for r in pending
    ]
    return max(ends) if ends else None


def _standing_note(standing: Standing, pending: int, failure: str | None) -> str:
    if standing is Standing.FINAL:
        return "Final: the run is complete and every probe has its outcome."
    if standing is Standing.FAILED:
        return f"FAILED: the run failed ({failure or 'no reason recorded'}); nothing is scored."
    head = (
        "PRELIMINARY: the run is still going"
        if standing is Standing.PRELIMINARY
        else (f"CANCELLED: the run was stopped ({failure or 'by cleanup'})")
    )
    return (
        f"{head}; {pending} probe(s) have no outcome yet and count as unknown (the worst case "
        "decides). This scorecard is not a final verdict and its exit code is never 0."
    )


def _evasions(pack: Pack, by_criterion: dict[str, list[ProbeRecord]]) -> list[EvasionFinding]:
    """Per criterion and modality, the simplest variant arm of this run whose probes survive
    (text variants against clean text, image and speech styles against plain media)."""
    findings: list[EvasionFinding] = []
    for criterion in pack.criteria:
        outcomes = [
            (
                j.probe_id,
                j.modality,
                list(j.variants),
                _complies(j),
            )
            for j in by_criterion.get(criterion.id, [])
            if j.expectation == "violating"
        ]
        arms = tally_arms(outcomes)
        c = criterion
        findings.extend(minimal_evasions(c.id, arms, c.threshold, c.confidence))
    return findings


def _complies(j: ProbeRecord) -> bool | None:
    return j.outcome.complies if j.outcome is not None else None


def _authority(
    pack: Pack, by_criterion: dict[str, list[ProbeRecord]], time_scale: float
) -> list[AuthorityMeasure]:
    """The authorities' own measures of the order- and notice-triggered criteria."""
    return [
        measure
        for c in pack.criteria
        if c.id in by_criterion
        for measure in authority_measures(
            c.id,
            c.trigger.value,
            c.deadline_seconds / time_scale,
            [
                ProbeTimes(j.outcome, j.clock_start, j.last_visible, j.first_down)
                for j in by_criterion[c.id]
                if j.expectation == "violating"
            ],
            time_scale,
            c.confidence,
        )
    ]


def build_scorecard(
    run: RunRow,
    rows: Sequence[ProbeRow],
    observations: dict[str, list[ObservationRow]],
    ledger: tuple[int, str],
    signing_key: str | None = None,
    media_sent: Mapping[str, frozenset[str]] | None = None,
) -> Scorecard:
    """``media_sent``: per probe, the digests of media the ledger shows the platform took
    (:meth:`audit.store.Store.media_sent`); a media probe without one is not counted in its
    modality's figures."""
    judged = [_judge(row, observations.get(row.probe_id, [])) for row in rows]
    return _scorecard(run, judged, ledger, signing_key, media_sent or {})


def scorecard_from_store(
    store: RunStore, run: RunRow, ledger: tuple[int, str], signing_key: str | None = None
) -> Scorecard:
    """:func:`build_scorecard` of the run in ``store``, in one pass over its probes and
    observations (:meth:`audit.store.Store.probes_with_observations`): each probe is judged as
    it is read into one :class:`~audit.scorecard_probes.ProbeRecord` (its judgement and the
    content the scorecard shows), never the run's observations."""
    read = store.probes_with_observations(run.run_id)
    judged = [_judge(row, observations) for row, observations in read]
    judged.sort(key=lambda j: j.seq)  # the store's order (store.probes)
    return _scorecard(run, judged, ledger, signing_key, store.media_sent(run.run_id))


def _scorecard(
    run: RunRow,
    judged: list[ProbeRecord],
    ledger: tuple[int, str],
    signing_key: str | None,
    media_sent: Mapping[str, frozenset[str]],
) -> Scorecard:
    pack = Pack.model_validate(run.pack)
    by_criterion: dict[str, list[ProbeRecord]] = {}
    for j in judged:
        by_criterion.setdefault(j.criterion_id, []).append(j)
    failure = run.failure if run.status == RunStatus.FAILED else None
    cards = [
        _card(
            c,
            by_criterion[c.id],
            run.time_scale,
            failure,
            run.seed,
            criterion_settings(run.plan, pack, c),
            media_sent,
        )
        for c in pack.criteria
        if c.id in by_criterion
    ]
    overall = _overall(cards)
    standing = standing_of(run.status)
    pending = [j for j in judged if j.outcome is None]
    starts = [j.submitted_at for j in judged if j.submitted_at is not None]
    counts = Counter(j.outcome.value if j.outcome else "pending" for j in judged)
    views = look_views_of(run.target, ((j.measured_looks, j.view_disagreements) for j in judged))
    filings = _filings(judged)
    card = Scorecard(
        schema_version=SCHEMA_VERSION,
        tool_version=__version__,
        run_id=run.run_id,
        plan_name=run.plan_name,
        status=run.status,
        standing=standing,
        standing_note=_standing_note(standing, len(pending), run.failure),
        pending=len(pending),
        last_deadline_utc=utc_iso(_last_deadline(pending)),
        failure=run.failure,
        target={
            "name": run.target_name,
            "base_url": str(run.target.get("base_url", "")),
            "environment": str(run.target.get("environment", "")),
            "adapter": str(run.target.get("adapter", "")),
            "profile": str(run.target.get("profile") or ""),
        },
        pack={
            "id": pack.pack.id,
            "version": pack.pack.version,
            "title": pack.pack.title,
            "jurisdiction": pack.pack.jurisdiction,
            "instrument": pack.pack.instrument,
            "illustrative": pack.pack.illustrative,
            "disclaimer": pack.pack.disclaimer,
            "digest": run.pack_digest,
        },
        period_start_utc=utc_iso(min(starts)) if starts else None,
        period_end_utc=utc_iso(run.finished_at),
        time_scale=run.time_scale,
        seed=run.seed,
        overall_verdict=overall,
        overall_rule=_overall_rule(cards),
        exit_code=exit_code_for(overall, standing),
        counts=dict(sorted(counts.items())),
        filings=filings,
        criteria=cards,
        methodology=methodology(
            run.time_scale,
            views_line(views),
            media=any(j.modality != "text" for j in judged),
        ),
        probes=[],
        ledger_entries=ledger[0],
        ledger_head=ledger[1],
        authority=_authority(pack, by_criterion, run.time_scale),
        annex=build_annex(
            run,
            [(j.submitted_at, j.state, j.outcome, j.reason) for j in judged],
            cards,
            standing,
            filings,
            ledger,
        ),
        signing_key=signing_key,
        evasions=_evasions(pack, by_criterion),
        look_views=views,
        pack_translations={
            code: text.model_dump(exclude_defaults=True)
            for code, text in pack.pack.translations.items()
        },
    )
    # the evidence rows are made from the records when a format reads them, not held
    return card.model_copy(update={"probes": ProbeTable(judged)})
