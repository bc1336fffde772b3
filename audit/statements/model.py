"""The statements cross-check as figures: the scorecard's ``statements`` section (typed)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from audit.i18n import N_

__all__ = [
    "Ambiguous",
    "CriterionStatements",
    "FindingKind",
    "KindRate",
    "StatementFinding",
    "StatementSource",
    "StatementsSection",
]


class FindingKind(StrEnum):
    """What a statement of reasons can contradict in what the audit observed."""

    MISSING_STATEMENT = "missing_statement"  # removal seen, no statement
    STATEMENT_WHILE_UP = "statement_while_up"  # removal dated before a look saw the post up
    SOURCE_TYPE = "source_type"  # voluntary vs notice contradicts the sequence seen
    AUTOMATION = "automation"  # automated_detection / automated_decision contradict it
    CONTENT_TYPE = "content_type"  # not the probe's modality
    VISIBILITY = "visibility"  # no removal or disabling, though the post was seen gone
    CATEGORY = "category"  # not the criterion's DSA category
    DATES = "dates"  # content or application date contradicts the observed days


TITLES = {
    FindingKind.MISSING_STATEMENT: N_("removal seen, no statement of reasons"),
    FindingKind.STATEMENT_WHILE_UP: N_("removal dated before the audit last saw the post up"),
    FindingKind.SOURCE_TYPE: N_("source_type contradicts the notice sequence seen"),
    FindingKind.AUTOMATION: N_("automation flags contradict what was seen"),
    FindingKind.CONTENT_TYPE: N_("content_type other than the probe's modality"),
    FindingKind.VISIBILITY: N_("decision_visibility other than the removal seen"),
    FindingKind.CATEGORY: N_("category other than the criterion's DSA category"),
    FindingKind.DATES: N_("dates contradict the observed days"),
}


class StatementFinding(BaseModel):
    probe_id: str
    criterion_id: str
    post_id: str | None
    kind: FindingKind
    statement: str | None  # where the statement was read (None: no statement)
    match: str | None  # how it was matched: "puid", or "attributes (the fields that agreed)"
    message: str


class KindRate(BaseModel):
    """Probes with this finding among those on which it could be checked, with an exact
    two-sided (Clopper-Pearson) interval."""

    kind: FindingKind
    title: str
    found: int
    checked: int
    rate: float | None
    low: float
    high: float
    level: float


class CriterionStatements(BaseModel):
    criterion_id: str
    dsa_category: str
    removals_seen: int
    matched: int
    ambiguous: int
    kinds: list[KindRate]


class Ambiguous(BaseModel):
    probe_id: str
    statements: list[str]


class StatementSource(BaseModel):
    """One file the statements were read from."""

    name: str
    sha256: str
    rows: int


class StatementsSection(BaseModel):
    sources: list[StatementSource]
    rows: int
    bad_rows: int
    not_about_the_run: int  # usable rows of another puid, day or platform, left out
    matching: str  # puid | attributes
    puid_template: str | None
    platform: str | None
    automation_window_s: float
    statements_used: int
    matched: int
    unmatched_statements: int
    other_platform: int
    ambiguous: list[Ambiguous]
    overall: list[KindRate]
    criteria: list[CriterionStatements]
    findings: list[StatementFinding]
    limits: list[str]

    @property
    def inconsistent_probes(self) -> int:
        return len({f.probe_id for f in self.findings})
