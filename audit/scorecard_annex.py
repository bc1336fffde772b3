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
from audit.i18n import N_, Language
from audit.lifecycle import ProbeState
from audit.numbers import format_percent
from audit.outcomes import Outcome
from audit.store import RunRow

if TYPE_CHECKING:  # the scorecard model holds the annex, so it is imported for types only
    from audit.scorecard_model import CriterionCard, Filings

__all__ = [
    "KINDS",
    "REGULATION",
    "AnnexCriterion",
    "Deviation",
    "MethodAnnex",
    "annex_lines",
    "build_annex",
    "evidence_lines",
    "plan_digest",
]

REGULATION = N_(
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


def _say(lang: Language | None, message: str, **values: object) -> str:
    """``message`` in ``lang`` (English, as the model keeps it, when None), filled in."""
    text = lang.gettext(message) if lang is not None else message
    return text % values if values else text


def _pct(lang: Language | None, value: float, digits: int = 1) -> str:
    return lang.pct(value, digits) if lang is not None else format_percent(value, digits)


def _num(lang: Language | None, value: object) -> str:
    """A figure of the plan as written (``30.0``), in the language's digits."""
    if lang is None or lang.code == "en" or not isinstance(value, int | float):
        return str(value)
    return lang.number(float(value), len(str(value).partition(".")[2]))


def _sampling(
    plan: dict[str, Any], seed: int, pack_id: str, lang: Language | None = None
) -> list[str]:
    sample, schedule = _section(plan, "sample"), _section(plan, "schedule")
    arms = sample.get("variant_arms") or {}
    arm_text = ", ".join(f"{k} {v}" for k, v in arms.items()) or _say(lang, N_("none"))
    return [
        _say(lang, _FRAME, pack=pack_id),
        _say(lang, _SEED, seed=seed),
        _say(
            lang,
            _PER_CRITERION,
            violating=sample.get("violating_per_criterion"),
            controls=sample.get("controls_per_criterion"),
            variants=_pct(lang, float(sample.get("variant_share", 0)), 0),
            arms=arm_text,
            image=_pct(lang, float(sample.get("image_share", 0)), 0),
            speech=_pct(lang, float(sample.get("speech_share", 0)), 0),
        ),
        _say(
            lang,
            _SPREAD,
            window=schedule.get("submission_window"),
            jitter=_pct(lang, float(schedule.get("jitter", 0)), 0),
        ),
    ]


_FRAME = N_(
    "Frame: the probe templates, slot vocabularies and controls of pack %(pack)s for each "
    "chosen criterion; each probe is drawn deterministically from them with the seed."
)
_SEED = N_(
    "Seed %(seed)s: the same plan and seed give the same probes, submission order and times, "
    "and the same looks."
)
_PER_CRITERION = N_(
    "Per criterion: %(violating)s violating probes and %(controls)s controls; variant share "
    "%(variants)s, variant arms %(arms)s, image share %(image)s, speech share %(speech)s."
)
_SPREAD = N_(
    "Submissions spread evenly over %(window)s (platform time) in a seeded order mixing "
    "criteria and controls, each moved by up to %(jitter)s of its slot."
)
_TRIGGERS = N_(
    "Triggers: for a proactive criterion the deadline clock starts when the platform accepted "
    "the post; for a notice or order criterion, when it accepted the filing, sent with the "
    "reason %(reason)s."
)
_CLOCKS = N_(
    "Clocks: every time is the tool's UTC clock at the accepted attempt's send (the platform's "
    "own timestamp is recorded beside it where it gives one); %(scale)s"
)
_REAL_TIME = N_("deadlines ran in real time.")
_SCALED = N_("every deadline and window was divided by %(scale)s.")
_POLLING = N_(
    "Polling: %(looks)s looks per probe on a geometric grid from %(first)s of the deadline "
    "(jitter %(jitter)s), the last before the deadline %(last)s, one at it and %(grace)s in the "
    "grace of %(grace_share)s of the deadline after it."
)
_LATENESS = N_("placed from the target's measured lateness")
_MARGIN = N_("at %(margin)s of the deadline before it")
_RETRIES = N_(
    "Retries: transport errors, timeouts, 5xx and 429 answers are retried with backoff "
    "honouring Retry-After, within each action's attempts (target timeout %(timeout)s s, "
    "%(limit)s); a fault is recorded and never counted as a removal."
)
_NO_LIMIT = N_("no rate limit")
_LIMIT = N_("at most %(rate)s requests per second")
_RULE = N_(
    "Verdict rule: one-sided exact (Clopper–Pearson) bounds at the criterion's confidence over "
    "every planned violating probe, the worst case deciding (see the methodology)."
)


def _rate_limit(target: dict[str, Any], lang: Language | None) -> str:
    limit = target.get("rate_limit")
    if limit is None:
        return _say(lang, _NO_LIMIT)
    rate = f"{limit:g}" if lang is None else lang.significant(float(limit))
    return _say(lang, _LIMIT, rate=rate)


def _procedures(plan: dict[str, Any], time_scale: float, lang: Language | None = None) -> list[str]:
    polling = _section(plan, "polling")
    targets = plan.get("targets") or [{}]
    target = targets[0] if isinstance(targets[0], dict) else {}
    margin = polling.get("margin")
    last_look = (
        _say(lang, _LATENESS)
        if margin is None
        else _say(lang, _MARGIN, margin=_pct(lang, float(margin)))
    )
    scale = (
        _say(lang, _REAL_TIME) if time_scale == 1 else _say(lang, _SCALED, scale=f"{time_scale:g}")
    )
    return [
        _say(lang, _TRIGGERS, reason=repr(plan.get("notice_reason"))),
        _say(lang, _CLOCKS, scale=scale),
        _say(
            lang,
            _POLLING,
            looks=polling.get("requests"),
            first=_pct(lang, float(polling.get("first", 0))),
            jitter=polling.get("jitter"),
            last=last_look,
            grace=polling.get("grace_polls"),
            grace_share=_pct(lang, float(plan.get("grace", 0)), 0),
        ),
        _say(
            lang,
            _RETRIES,
            timeout=_num(lang, target.get("timeout")),
            limit=_rate_limit(target, lang),
        ),
        _say(lang, _RULE),
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
    "never submitted": N_("probes not sent"),
    "submission failed (platform fault)": N_("probes not sent: retries beyond budget"),
    "notice not filed": N_("filing failed: retries beyond budget"),
    "order not filed": N_("filing failed: retries beyond budget"),
    "no usable look at the deadline (platform fault)": N_("window missed: no usable look at it"),
    "removed at an undecided time around the deadline": N_("window missed: removal between looks"),
    "interrupted submission (tool restart)": N_("run interrupted"),
    "still pending": N_("not yet measured"),
}
KINDS = (  # every kind of deviation, for the catalogs; the renderer translates d.kind with it
    *_KINDS.values(),
    N_("outcome not measured"),
    N_("windows missed"),
    N_("filings interrupted"),
    N_("time scale"),
    N_("run not complete"),
)
LATE = N_("posted after the planned submission window closed, up to %(late)s (platform time) late")
INTERRUPTED = N_(
    "%(sent_again)s sent again under the same key after a restart, %(not_sent_again)s not sent "
    "again (inconclusive)"
)
SCALED = N_(
    "every deadline and window divided by %(scale)s: a demonstration, not a measurement of "
    "legal deadlines"
)
NOT_COMPLETE = N_("the run is %(status)s: probes without an outcome count as unknown")
NO_DEVIATION = N_("None: every planned probe was sent within its window and measured as planned.")
# a probe's submission time and state, its outcome as judged, and why
Judged = tuple[float | None, str, Outcome | None, str]


def _unknown_deviations(judged: Sequence[Judged]) -> list[Deviation]:
    """Probes (violating and controls) the plan measured but the run could not, by cause."""
    causes = Counter(
        unknown_cause(outcome, reason)
        for _, _, outcome, reason in judged
        if outcome is None or outcome == Outcome.INCONCLUSIVE
    )
    deviations = []
    for cause, count in sorted(causes.items(), key=lambda kv: (-kv[1], kv[0])):
        kind = _KINDS.get(cause, "outcome not measured")
        deviations.append(Deviation(kind=kind, count=count, detail=cause))
    return deviations


def _late_submissions(run: RunRow, judged: Sequence[Judged]) -> Deviation | None:
    """Probes first posted after the planned submission window had closed."""
    window = parse_duration(str(_section(run.plan, "schedule").get("submission_window", "PT10M")))
    closes = run.created_at + window / run.time_scale
    late = [at for at, _, _, _ in judged if at is not None and at > closes]
    if not late:
        return None
    worst = max(late) - closes
    return Deviation(
        kind="windows missed",
        count=len(late),
        detail=LATE % {"late": format_duration(worst * run.time_scale)},
    )


def _deviations(
    run: RunRow, judged: Sequence[Judged], standing: Standing, filings: Filings
) -> list[Deviation]:
    found = _unknown_deviations(judged)
    late = _late_submissions(run, judged)
    if late is not None:
        found.append(late)
    if filings.sent_again or filings.not_sent_again:
        found.append(
            Deviation(
                kind="filings interrupted",
                count=filings.sent_again + filings.not_sent_again,
                detail=INTERRUPTED
                % {"sent_again": filings.sent_again, "not_sent_again": filings.not_sent_again},
            )
        )
    if run.time_scale != 1:
        found.append(
            Deviation(
                kind="time scale",
                count=len(judged),
                detail=SCALED % {"scale": f"{run.time_scale:g}"},
            )
        )
    if standing is not Standing.FINAL:
        found.append(
            Deviation(
                kind="run not complete",
                count=sum(1 for _, state, _, _ in judged if state != ProbeState.FINISHED),
                detail=NOT_COMPLETE % {"status": run.status},
            )
        )
    return found


_LEDGER = N_(
    "Run %(run)s: every exchange with the platform in a hash-chained ledger of %(entries)s "
    "entries, head %(head)s."
)
_DIGESTS = N_(
    "Frozen plan %(plan)s and pack %(pack)s, the digests the signed manifest of the run's "
    "evidence bundle (`platform-audit export`) carries; `platform-audit verify` checks them, "
    "the ledger and every observation."
)
_PER_PROBE = N_(
    "Per probe: the appendix lists its text, post id, submission, clock start, deadline, looks "
    "and outcome, each backed by a recorded answer."
)


def evidence_lines(
    run_id: str, ledger: tuple[int, str], digests: tuple[str, str], lang: Language | None = None
) -> list[str]:
    """The annex's audit evidence: the ledger, the digests the manifest signs, the appendix."""
    return [
        _say(lang, _LEDGER, run=run_id, entries=ledger[0], head=ledger[1]),
        _say(lang, _DIGESTS, plan=digests[0], pack=digests[1]),
        _say(lang, _PER_PROBE),
    ]


def annex_lines(
    annex: MethodAnnex,
    run: tuple[str, int, float],
    ledger: tuple[int, str],
    lang: Language | None = None,
) -> dict[str, list[str]]:
    """The annex's sampling, procedures and evidence rebuilt from its frozen plan and the run's
    (id, seed, time scale) and ledger (in English, the model's own lines)."""
    run_id, seed, scale = run
    digests = (annex.plan_digest, annex.pack["digest"])
    return {
        "sampling": _sampling(annex.plan, seed, annex.pack["id"], lang),
        "procedures": _procedures(annex.plan, scale, lang),
        "evidence": evidence_lines(run_id, ledger, digests, lang),
    }


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
        evidence=evidence_lines(run.run_id, ledger, (digest, run.pack_digest)),
    )
