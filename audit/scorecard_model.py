"""The scorecard's view model: the typed figures every renderer reads (see :mod:`audit.scorecard`
for how they are computed)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, field_serializer

from audit.arms import EvasionFinding
from audit.findings import Standing
from audit.scorecard_annex import MethodAnnex
from audit.scorecard_authority import AuthorityMeasure
from audit.statements.model import StatementsSection
from audit.stats import OverRemovalVerdict, Verdict

__all__ = [
    "SCHEMA_VERSION",
    "CriterionCard",
    "CurvePoint",
    "Filings",
    "Group",
    "LookViews",
    "ProbeEvidence",
    "Rate",
    "Scorecard",
    "TimeFigure",
]

SCHEMA_VERSION = "2.1.0"


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
    # the view its looks were decided in (author, observer; None without a measured look), and
    # how many of its looks made in both views saw it up in one and down in the other
    view: str | None = None
    view_disagreements: int = 0


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
    sensitivity: str  # how the unknown outcomes were treated, in plain words
    counts: dict[str, int]
    removal_in_deadline: Rate  # successes of all planned probes; interval worst to best case
    wilson: Rate  # among measured probes, for comparison
    one_sided_lower: float | None  # every unknown counted as not removed in time
    one_sided_upper: float | None  # every unknown counted as removed in time
    inconclusive: int  # planned violating probes without a known outcome
    planned: int
    measured: int
    measured_share: float | None
    min_measured_share: float
    unknown_causes: dict[str, int]
    median_time: TimeFigure
    p90_time: TimeFigure
    removed_by_deadline: TimeFigure
    curve: list[CurvePoint]
    controls: int
    kept: int
    over_removed: int
    over_removal: Rate
    over_removal_verdict: OverRemovalVerdict
    over_removal_reason: str
    max_over_removal: float
    over_removal_lower: float | None
    over_removal_after_notice: Rate  # controls removed after a notice or order was filed
    over_removal_unprompted: Rate  # controls removed with no notice or order before it
    breakdowns: list[Group]
    # the criterion's title and citation in other languages, from its pack
    translations: dict[str, dict[str, str]] = {}

    @property
    def fails(self) -> bool:
        """The criterion fails: NON_COMPLIANT, or an over-removal finding."""
        return (
            self.verdict is Verdict.NON_COMPLIANT
            or self.over_removal_verdict is OverRemovalVerdict.EXCESSIVE
        )


class Filings(BaseModel):
    """The notices and orders the run filed, from its observations."""

    probes: int  # probes whose trigger is a notice or an order and that reached filing
    filed: int  # probes with an accepted filing
    sent_again: int  # filings cut short by a restart and sent again under the same key
    not_sent_again: int  # cut short where the platform cannot de-duplicate: inconclusive
    duplicates: int  # probes with more than one accepted filing (should be 0)


class LookViews(BaseModel):
    """Whose view decided the run's status looks, and where the author's view disagreed."""

    decided_by: str  # "author" or "observer"
    observer: str | None  # "anonymous" or "account"; None when the author's view decided
    author_view_too: bool  # every look was made in the author's view as well
    looks: int  # measured looks (visible, removed or gone)
    disagreements: int  # looks in both views where one saw the post up and the other down
    probes_disagreeing: int  # probes with at least one such look


class Scorecard(BaseModel):
    schema_version: str
    tool_version: str
    run_id: str
    plan_name: str
    status: str
    standing: Standing
    standing_note: str
    pending: int
    last_deadline_utc: str | None
    failure: str | None
    target: dict[str, str]
    pack: dict[str, str | bool]
    period_start_utc: str | None
    period_end_utc: str | None
    time_scale: float
    seed: int
    overall_verdict: Verdict
    overall_rule: str
    exit_code: int
    counts: dict[str, int]
    filings: Filings
    criteria: list[CriterionCard]
    methodology: list[str]
    # every probe's evidence row: a list, or for a scorecard built from a run the
    # audit.scorecard_probes.ProbeTable that makes each row as it is read
    probes: Sequence[ProbeEvidence]
    ledger_entries: int
    ledger_head: str
    signing_key: str | None = None  # fingerprint of the Ed25519 key that signs the run's bundle
    evasions: list[EvasionFinding] = []
    look_views: LookViews | None = None
    # statements of reasons cross-checked against the run (`platform-audit statements check`)
    statements: StatementsSection | None = None
    annex: MethodAnnex | None = None  # the methodology annex (audit.scorecard_annex)
    authority: list[AuthorityMeasure] = []  # the authorities' own measures (scorecard_authority)
    # the pack's title, instrument and disclaimer in other languages, from the pack
    pack_translations: dict[str, dict[str, str]] = {}

    @field_serializer("probes")
    def _probes(self, probes: Sequence[ProbeEvidence]) -> list[ProbeEvidence]:
        """Any sequence of probes dumps as the list it holds (the schema's array)."""
        return probes if type(probes) is list else list(probes)
