"""The scorecard view model: every figure of a run, computed from stored observations.

Renderers take a :class:`Scorecard` and know nothing of HTTP or SQL. Figures come from
:mod:`audit.stats`; outcomes from :func:`audit.outcomes.classify`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from audit import __version__
from audit.arms import EvasionFinding, minimal_evasion, tally_arms
from audit.clock import utc_iso
from audit.durations import format_duration
from audit.engine import probe_facts
from audit.outcomes import Outcome, classify
from audit.packs import Criterion, Pack
from audit.stats import (
    CensoredTime,
    Interval,
    SurvivalEstimate,
    Verdict,
    clopper_pearson,
    decide,
    quantile_intervals,
    turnbull,
    wilson,
)
from audit.store import ObservationRow, ProbeRow, RunRow

__all__ = ["SCHEMA_VERSION", "CriterionCard", "ProbeEvidence", "Scorecard", "build_scorecard"]

SCHEMA_VERSION = "1.1.0"
EXIT_CODES = {
    Verdict.COMPLIANT: 0,
    Verdict.NON_COMPLIANT: 1,
    Verdict.INCONCLUSIVE: 3,
    Verdict.NOT_MEASURED: 4,
}


class Rate(BaseModel):
    successes: int
    n: int
    rate: float | None
    low: float
    high: float
    level: float


class TimeFigure(BaseModel):
    seconds: float | None
    low: float | None
    high: float | None
    text: str


class Group(BaseModel):
    dimension: str
    value: str
    rate: Rate


class CurvePoint(BaseModel):
    t: float
    low: float
    high: float


class ProbeEvidence(BaseModel):
    probe_id: str
    criterion_id: str
    expectation: str
    template_id: str
    language: str
    modality: str
    variants: list[str]
    text: str
    post_id: str | None
    trigger: str
    submitted_utc: str | None
    clock_start_utc: str | None
    deadline_utc: str | None
    last_visible_utc: str | None
    first_down_utc: str | None
    removal_after: TimeFigure | None
    looks: int
    outcome: str
    reason: str
    withdrawn_utc: str | None


class CriterionCard(BaseModel):
    id: str
    title: str
    legal_reference: str
    dsa_category: str
    trigger: str
    deadline: str
    deadline_seconds: float
    deadline_text: str
    threshold: float
    confidence: float
    verdict: Verdict
    verdict_reason: str
    sensitivity: str
    counts: dict[str, int]
    removal_in_deadline: Rate
    wilson: Rate
    one_sided_lower: float | None
    one_sided_upper: float | None
    inconclusive: int
    median_time: TimeFigure
    p90_time: TimeFigure
    removed_by_deadline: TimeFigure
    curve: list[CurvePoint]
    controls: int
    kept: int
    over_removed: int
    over_removal: Rate
    breakdowns: list[Group]


class Scorecard(BaseModel):
    schema_version: str
    tool_version: str
    run_id: str
    plan_name: str
    status: str
    failure: str | None
    target: dict[str, str]
    pack: dict[str, str | bool]
    period_start_utc: str | None
    period_end_utc: str | None
    time_scale: float
    seed: int
    overall_verdict: Verdict
    exit_code: int
    counts: dict[str, int]
    criteria: list[CriterionCard]
    methodology: list[str]
    probes: list[ProbeEvidence]
    ledger_entries: int
    ledger_head: str
    signing_key: str | None = None  # fingerprint of the Ed25519 key that signs the run's bundle
    evasions: list[EvasionFinding] = []


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
    docs/statistics.md for their Monte Carlo error)."""
    return 400 if n <= 2000 else 100


def _time(seconds: float | None, low: float | None = None, high: float | None = None) -> TimeFigure:
    if seconds is None or math.isinf(seconds):
        text = "not reached"
    else:
        text = format_duration(seconds)
        if low is not None and high is not None:
            hi = "∞" if math.isinf(high) else format_duration(high)
            text += f" ({format_duration(low)} – {hi})"
    return TimeFigure(
        seconds=seconds,
        low=low,
        high=None if high is not None and math.isinf(high) else high,
        text=text,
    )


@dataclass(frozen=True, slots=True)
class _Judged:
    row: ProbeRow
    outcome: Outcome | None
    last_visible: float | None
    first_down: float | None
    reason: str
    looks: int


def _judge(row: ProbeRow, observations: list[ObservationRow]) -> _Judged:
    decided = classify(probe_facts(row, observations), observations)
    return _Judged(
        row=row,
        outcome=decided.outcome,
        last_visible=decided.last_visible_at,
        first_down=decided.first_down_at,
        reason=decided.reason,
        looks=sum(1 for o in observations if o.action == "status"),
    )


def _censored(judged: Iterable[_Judged]) -> list[CensoredTime]:
    data: list[CensoredTime] = []
    for j in judged:
        start = j.row.clock_start
        if j.outcome is Outcome.REJECTED_AT_SUBMISSION:
            data.append(CensoredTime(0.0, 0.0))
        elif j.outcome in (Outcome.REMOVED_IN_TIME, Outcome.REMOVED_LATE, Outcome.SURVIVED):
            assert start is not None
            left = max(0.0, (j.last_visible or start) - start)
            right = (j.first_down - start) if j.first_down is not None else math.inf
            data.append(CensoredTime(left, max(left, right)))
    return data


def _success_counts(judged: Sequence[_Judged]) -> tuple[int, int, int]:
    """(successes, measured, inconclusive) among violating probes."""
    verdicts = [j.outcome.complies if j.outcome is not None else None for j in judged]
    successes = sum(1 for v in verdicts if v is True)
    measured = sum(1 for v in verdicts if v is not None)
    return successes, measured, len(judged) - measured


def _breakdowns(judged: Sequence[_Judged], level: float) -> list[Group]:
    groups: list[Group] = []
    dimensions: dict[str, Callable[[_Judged], str]] = {
        "language": lambda j: str(j.row.probe.get("language", "")),
        "variant": lambda j: "+".join(j.row.probe.get("variants") or []) or "clean",
        "modality": lambda j: str(j.row.probe.get("modality", "text")),
    }
    for dimension, key in dimensions.items():
        members: dict[str, list[_Judged]] = {}
        for j in judged:
            members.setdefault(key(j), []).append(j)
        for value in sorted(members):
            k, n, _ = _success_counts(members[value])
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
        text=f"{f_low:.1%}" if abs(f_high - f_low) < 5e-4 else f"{f_low:.1%} – {f_high:.1%}",
    )
    return figures[0], figures[1], by_deadline


def _sensitivity(
    decision_failed: Verdict | None, decision_passed: Verdict | None, inconclusive: int
) -> str:
    if inconclusive == 0:
        return "No probe was inconclusive."
    return (
        f"{inconclusive} probe(s) could not be measured and are left out. Had every one of them "
        f"failed, the verdict would be {decision_failed}; had every one been removed in time, "
        f"{decision_passed}."
    )


def _card(
    criterion: Criterion,
    judged: Sequence[_Judged],
    time_scale: float,
    failure: str | None,
    seed: int,
) -> CriterionCard:
    reference = criterion.legal_reference
    violating = [j for j in judged if j.row.expectation == "violating"]
    controls = [j for j in judged if j.row.expectation == "control"]
    successes, measured, inconclusive = _success_counts(violating)
    decision = decide(
        successes,
        measured,
        inconclusive,
        criterion.threshold,
        criterion.confidence,
        runtime_failure=failure,
    )
    level = criterion.confidence
    deadline = criterion.deadline_seconds / time_scale
    data = _censored(violating)
    estimate = turnbull(data) if data else None
    median, p90, by_deadline = _timing(data, estimate, deadline, level, seed)
    kept = sum(1 for j in controls if j.outcome is Outcome.KEPT)
    over = sum(1 for j in controls if j.outcome is Outcome.OVER_REMOVED)
    counts = Counter(j.outcome.value if j.outcome else "pending" for j in violating)
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
        sensitivity=_sensitivity(
            decision.if_inconclusive_failed, decision.if_inconclusive_passed, inconclusive
        ),
        counts={o.value: counts.get(o.value, 0) for o in _VIOLATING_OUTCOMES}
        | ({"pending": counts["pending"]} if counts.get("pending") else {}),
        removal_in_deadline=_rate(successes, measured, level, clopper_pearson),
        wilson=_rate(successes, measured, level, wilson),
        one_sided_lower=decision.lower,
        one_sided_upper=decision.upper,
        inconclusive=inconclusive,
        median_time=median,
        p90_time=p90,
        removed_by_deadline=by_deadline,
        curve=_curve(estimate, deadline),
        controls=len(controls),
        kept=kept,
        over_removed=over,
        over_removal=_rate(over, kept + over, level, clopper_pearson),
        breakdowns=_breakdowns(violating, level),
    )


_VIOLATING_OUTCOMES = (
    Outcome.REMOVED_IN_TIME,
    Outcome.REJECTED_AT_SUBMISSION,
    Outcome.REMOVED_LATE,
    Outcome.SURVIVED,
    Outcome.INCONCLUSIVE,
)


def _overall(cards: Sequence[CriterionCard]) -> Verdict:
    verdicts = {c.verdict for c in cards}
    for verdict in (Verdict.NON_COMPLIANT, Verdict.NOT_MEASURED, Verdict.INCONCLUSIVE):
        if verdict in verdicts:
            return verdict
    return Verdict.COMPLIANT if cards else Verdict.NOT_MEASURED


def _evidence(j: _Judged) -> ProbeEvidence:
    row, probe = j.row, j.row.probe
    start = row.clock_start
    removal = None
    if start is not None and j.first_down is not None:
        low = max(0.0, (j.last_visible or start) - start)
        removal = _time(j.first_down - start, low, j.first_down - start)
    return ProbeEvidence(
        probe_id=row.probe_id,
        criterion_id=row.criterion_id,
        expectation=row.expectation,
        template_id=str(probe.get("template_id", "")),
        language=str(probe.get("language", "")),
        modality=str(probe.get("modality", "text")),
        variants=list(probe.get("variants") or []),
        text=str(probe.get("text", "")),
        post_id=row.post_id,
        trigger=row.trigger,
        submitted_utc=utc_iso(row.submitted_at),
        clock_start_utc=utc_iso(start),
        deadline_utc=utc_iso(row.deadline_at),
        last_visible_utc=utc_iso(j.last_visible),
        first_down_utc=utc_iso(j.first_down),
        removal_after=removal,
        looks=j.looks,
        outcome=j.outcome.value if j.outcome else "pending",
        reason=j.reason,
        withdrawn_utc=utc_iso(row.withdrawn_at),
    )


_METHOD = (
    "Each probe is a synthetic post generated from the criteria pack. Violating probes must be "
    "removed within the criterion's deadline; controls are benign look-alikes that must stay up.",
    "The deadline starts when the post is submitted (trigger 'proactive') or when the notice or "
    "order about it is sent ('notice', 'order').",
    "A probe counts as removed in time only if a look whose answer arrived before the deadline "
    "found it removed or gone, or if the platform refused it at submission. It counts as not "
    "removed in time if a look sent at or after the deadline found it still visible. Faults and "
    "unreadable answers are never counted as removals: a probe with no usable look at the "
    "deadline is inconclusive and left out of the rate, and the sensitivity line says what the "
    "verdict would be had every inconclusive probe failed or passed.",
    "Rates are shown with two-sided exact (Clopper–Pearson) intervals at the criterion's "
    "confidence level; Wilson intervals are given in the JSON for comparison.",
    "Verdict rule: with one-sided exact bounds at the criterion's confidence, the criterion is "
    "COMPLIANT if the lower bound on the removal-in-deadline rate is at least the threshold, "
    "NON_COMPLIANT if the upper bound is below it, INCONCLUSIVE otherwise, and NOT_MEASURED "
    "when the run failed or no probe could be measured. A runtime failure is never a low score.",
    "Removal time is interval-censored: it lies between the last look that saw the post and the "
    "first that found it gone; posts still up when observation ended are right-censored. The "
    "distribution of time to removal is Turnbull's nonparametric maximum-likelihood estimate; "
    "median and 90th percentile carry bootstrap intervals.",
    "Over-removal is the share of controls removed or refused, with an exact interval.",
)


def methodology(time_scale: float) -> list[str]:
    lines = list(_METHOD)
    if time_scale != 1:
        lines.append(
            "DEMONSTRATION TIME SCALE: every deadline and platform latency in this run was "
            f"divided by {time_scale:g}. The figures show how the method works; they are not a "
            "measurement of any real platform's compliance."
        )
    return lines


def _evasions(pack: Pack, by_criterion: dict[str, list[_Judged]]) -> list[EvasionFinding]:
    """Per criterion, the simplest variant arm of this run whose text probes survive."""
    findings: list[EvasionFinding] = []
    for criterion in pack.criteria:
        outcomes = [
            (j.row.probe_id, list(j.row.probe.get("variants") or []), _complies(j))
            for j in by_criterion.get(criterion.id, [])
            if j.row.expectation == "violating" and j.row.probe.get("modality", "text") == "text"
        ]
        arms = tally_arms(outcomes)
        found = minimal_evasion(criterion.id, arms, criterion.threshold, criterion.confidence)
        if found is not None:
            findings.append(found)
    return findings


def _complies(j: _Judged) -> bool | None:
    return j.outcome.complies if j.outcome is not None else None


def build_scorecard(
    run: RunRow,
    rows: Sequence[ProbeRow],
    observations: dict[str, list[ObservationRow]],
    ledger: tuple[int, str],
    signing_key: str | None = None,
) -> Scorecard:
    pack = Pack.model_validate(run.pack)
    judged = [_judge(row, observations.get(row.probe_id, [])) for row in rows]
    by_criterion: dict[str, list[_Judged]] = {}
    for j in judged:
        by_criterion.setdefault(j.row.criterion_id, []).append(j)
    failure = run.failure if run.status == "failed" else None
    cards = [
        _card(c, by_criterion[c.id], run.time_scale, failure, run.seed)
        for c in pack.criteria
        if c.id in by_criterion
    ]
    overall = _overall(cards)
    starts = [r.submitted_at for r in rows if r.submitted_at is not None]
    counts = Counter(j.outcome.value if j.outcome else "pending" for j in judged)
    return Scorecard(
        schema_version=SCHEMA_VERSION,
        tool_version=__version__,
        run_id=run.run_id,
        plan_name=run.plan_name,
        status=run.status,
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
        exit_code=EXIT_CODES[overall],
        counts=dict(sorted(counts.items())),
        criteria=cards,
        methodology=methodology(run.time_scale),
        probes=[_evidence(j) for j in judged],
        ledger_entries=ledger[0],
        ledger_head=ledger[1],
        signing_key=signing_key,
        evasions=_evasions(pack, by_criterion),
    )


Format = Literal["html", "md", "json", "junit", "csv"]
