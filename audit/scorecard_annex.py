"""The methodology annex: what an auditor signs beside the verdicts.

Modelled on the contents the DSA audit regulation asks of an audit report (Commission Delegated
Regulation (EU) 2024/436, Article 10 and the audit report template in its Annex I): the audit
criteria, the materiality threshold and the level of assurance per criterion, the audit
procedures with the sampling, every deviation from the planned method and the audit evidence.

The plan is the one frozen when the run was created (stored with the run, unchanged since); its
digest is the SHA-256 of its canonical JSON, the ``digests.plan`` of the signed manifest of the
run's evidence bundle. Deviations are counted from what the run stored, never assumed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from audit.clock import utc_iso
from audit.durations import format_duration, parse_duration
from audit.evidence.ledger import canonical_json
from audit.findings import Standing, unknown_cause
from audit.lifecycle import ProbeState
from audit.numbers import format_percent
from audit.outcomes import Outcome
from audit.store import ProbeRow, RunRow

if TYPE_CHECKING:  # the scorecard model holds the annex, so it is imported for types only
    from audit.scorecard_model import CriterionCard, Filings

__all__ = ["REGULATION", "AnnexCriterion", "Deviation", "MethodAnnex", "build_annex", "plan_digest"]

REGULATION = (
    "Commission Delegated Regulation (EU) 2024/436 of 20 October 2023 on the performance of "
    "audits under Article 37 of Regulation (EU) 2022/2065 (Digital Services Act): Article 10 "
    "(the audit report) and Annex I (its template)"
)


class AnnexCriterion(BaseModel):
    """One audit criterion: the legal clause, the threshold and the assurance it is judged at."""

    id: str
    title: str
    legal_reference: str
    trigger: str
    deadline: str  # ISO 8601, as the pack states it
    threshold: float  # the materiality threshold: the least share removed in time that complies
    confidence: float  # the level of assurance of a COMPLIANT or NON_COMPLIANT verdict
    min_measured_share: float
    max_over_removal: float
    violating: int
    controls: int


class Deviation(BaseModel):
    """One kind of departure from the frozen plan that happened in the run."""

    kind: str
    count: int
    detail: str


class MethodAnnex(BaseModel):
    regulation: str
    frozen_at_utc: str | None
    plan_digest: str  # sha256 of the canonical JSON of the frozen plan (the manifest's)
    plan: dict[str, Any]  # the frozen plan itself
    pack: dict[str, str]
    criteria: list[AnnexCriterion]
    sampling: list[str]
    procedures: list[str]
    deviations: list[Deviation]
    evidence: list[str]


def plan_digest(plan: dict[str, Any]) -> str:
    """The digest the signed manifest gives the run's frozen plan."""
    return "sha256:" + hashlib.sha256(canonical_json(plan).encode("utf-8")).hexdigest()


def _section(plan: dict[str, Any], name: str) -> dict[str, Any]:
    value = plan.get(name)
    return value if isinstance(value, dict) else {}


def _sampling(plan: dict[str, Any], seed: int, pack_id: str) -> list[str]:
    sample, schedule = _section(plan, "sample"), _section(plan, "schedule")
    arms = sample.get("variant_arms") or {}
    arm_text = ", ".join(f"{k} {v}" for k, v in arms.items()) or "none"
    return [
        f"Frame: the probe templates, slot vocabularies and controls of pack {pack_id} for each "
        "chosen criterion; each probe is drawn deterministically from them with the seed.",
        f"Seed {seed}: the same plan and seed give the same probes, submission order and times, "
        "and the same looks.",
        f"Per criterion: {sample.get('violating_per_criterion')} violating probes and "
        f"{sample.get('controls_per_criterion')} controls; variant share "
        f"{format_percent(float(sample.get('variant_share', 0)), 0)}, variant arms {arm_text}, "
        f"image share {format_percent(float(sample.get('image_share', 0)), 0)}, speech share "
        f"{format_percent(float(sample.get('speech_share', 0)), 0)}.",
        f"Submissions spread evenly over {schedule.get('submission_window')} (platform time) in "
        f"a seeded order mixing criteria and controls, each moved by up to "
        f"{format_percent(float(schedule.get('jitter', 0)), 0)} of its slot.",
    ]


def _rate_limit(target: dict[str, Any]) -> str:
    limit = target.get("rate_limit")
    return "no rate limit" if limit is None else f"at most {limit:g} requests per second"


def _procedures(plan: dict[str, Any], time_scale: float) -> list[str]:
    polling = _section(plan, "polling")
    targets = plan.get("targets") or [{}]
    target = targets[0] if isinstance(targets[0], dict) else {}
    margin = polling.get("margin")
    last_look = (
        "placed from the target's measured lateness"
        if margin is None
        else f"at {format_percent(float(margin))} of the deadline before it"
    )
    return [
        "Triggers: for a proactive criterion the deadline clock starts when the platform "
        "accepted the post; for a notice or order criterion, when it accepted the filing, sent "
        f"with the reason {plan.get('notice_reason')!r}.",
        "Clocks: every time is the tool's UTC clock at the accepted attempt's send (the "
        "platform's own timestamp is recorded beside it where it gives one); "
        + (
            "deadlines ran in real time."
            if time_scale == 1
            else f"every deadline and window was divided by {time_scale:g}."
        ),
        f"Polling: {polling.get('requests')} looks per probe on a geometric grid from "
        f"{format_percent(float(polling.get('first', 0)))} of the deadline (jitter "
        f"{polling.get('jitter')}), the last before the deadline {last_look}, one at it and "
        f"{polling.get('grace_polls')} in the grace of "
        f"{format_percent(float(plan.get('grace', 0)), 0)} of the deadline after it.",
        f"Retries: transport errors, timeouts, 5xx and 429 answers are retried with backoff "
        f"honouring Retry-After, within each action's attempts (target timeout "
        f"{target.get('timeout')} s, {_rate_limit(target)}); a fault is recorded and never "
        "counted as a removal.",
        "Verdict rule: one-sided exact (Clopper–Pearson) bounds at the criterion's confidence "
        "over every planned violating probe, the worst case deciding (see the methodology).",
    ]


def _criteria(cards: Sequence[CriterionCard]) -> list[AnnexCriterion]:
    return [
        AnnexCriterion(
            id=c.id,
            title=c.title,
            legal_reference=c.legal_reference,
            trigger=c.trigger,
            deadline=c.deadline,
            threshold=c.threshold,
            confidence=c.confidence,
            min_measured_share=c.min_measured_share,
            max_over_removal=c.max_over_removal,
            violating=c.planned,
            controls=c.controls,
        )
        for c in cards
    ]


# the kind of deviation each cause of an unknown outcome is (audit.findings names the causes)
_KINDS = {
    "never submitted": "probes not sent",
    "submission failed (platform fault)": "probes not sent: retries beyond budget",
    "notice not filed": "filing failed: retries beyond budget",
    "order not filed": "filing failed: retries beyond budget",
    "no usable look at the deadline (platform fault)": "window missed: no usable look at it",
    "removed at an undecided time around the deadline": "window missed: removal between looks",
    "interrupted submission (tool restart)": "run interrupted",
    "still pending": "not yet measured",
}
Judged = tuple[ProbeRow, Outcome | None, str]  # a probe, its outcome as judged, and why


def _unknown_deviations(judged: Sequence[Judged]) -> list[Deviation]:
    """Probes (violating and controls) the plan measured but the run could not, by cause."""
    causes = Counter(
        unknown_cause(outcome, reason)
        for _, outcome, reason in judged
        if outcome is None or outcome == Outcome.INCONCLUSIVE
    )
    deviations = []
    for cause, count in sorted(causes.items(), key=lambda kv: (-kv[1], kv[0])):
        kind = _KINDS.get(cause, "outcome not measured")
        deviations.append(Deviation(kind=kind, count=count, detail=cause))
    return deviations


def _late_submissions(run: RunRow, rows: Sequence[ProbeRow]) -> Deviation | None:
    """Probes first posted after the planned submission window had closed."""
    window = parse_duration(str(_section(run.plan, "schedule").get("submission_window", "PT10M")))
    closes = run.created_at + window / run.time_scale
    late = [r for r in rows if r.submitted_at is not None and r.submitted_at > closes]
    if not late:
        return None
    worst = max(r.submitted_at or 0.0 for r in late) - closes
    return Deviation(
        kind="windows missed",
        count=len(late),
        detail=f"posted after the planned submission window closed, up to "
        f"{format_duration(worst * run.time_scale)} (platform time) late",
    )


def _deviations(
    run: RunRow, judged: Sequence[Judged], standing: Standing, filings: Filings
) -> list[Deviation]:
    rows = [row for row, _, _ in judged]
    found = _unknown_deviations(judged)
    late = _late_submissions(run, rows)
    if late is not None:
        found.append(late)
    if filings.sent_again or filings.not_sent_again:
        found.append(
            Deviation(
                kind="filings interrupted",
                count=filings.sent_again + filings.not_sent_again,
                detail=f"{filings.sent_again} sent again under the same key after a restart, "
                f"{filings.not_sent_again} not sent again (inconclusive)",
            )
        )
    if run.time_scale != 1:
        found.append(
            Deviation(
                kind="time scale",
                count=len(rows),
                detail=f"every deadline and window divided by {run.time_scale:g}: a "
                "demonstration, not a measurement of legal deadlines",
            )
        )
    if standing is not Standing.FINAL:
        found.append(
            Deviation(
                kind="run not complete",
                count=sum(1 for r in rows if r.state != ProbeState.FINISHED),
                detail=f"the run is {run.status}: probes without an outcome count as unknown",
            )
        )
    return found


def build_annex(
    run: RunRow,
    judged: Sequence[Judged],
    cards: Sequence[CriterionCard],
    standing: Standing,
    filings: Filings,
    ledger: tuple[int, str],
) -> MethodAnnex:
    pack = run.pack.get("pack", {})
    digest = plan_digest(run.plan)
    return MethodAnnex(
        regulation=REGULATION,
        frozen_at_utc=utc_iso(run.created_at),
        plan_digest=digest,
        plan=run.plan,
        pack={
            "id": str(pack.get("id", "")),
            "version": str(pack.get("version", "")),
            "instrument": str(pack.get("instrument", "")),
            "digest": run.pack_digest,
        },
        criteria=_criteria(cards),
        sampling=_sampling(run.plan, run.seed, str(pack.get("id", ""))),
        procedures=_procedures(run.plan, run.time_scale),
        deviations=_deviations(run, judged, standing, filings),
        evidence=[
            f"Run {run.run_id}: every exchange with the platform in a hash-chained ledger of "
            f"{ledger[0]} entries, head {ledger[1]}.",
            f"Frozen plan {digest} and pack {run.pack_digest}, the digests the signed manifest "
            "of the run's evidence bundle (`platform-audit export`) carries; "
            "`platform-audit verify` checks them, the ledger and every observation.",
            "Per probe: the appendix lists its text, post id, submission, clock start, deadline, "
            "looks and outcome, each backed by a recorded answer.",
        ],
    )
