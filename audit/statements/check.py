"""The consistency findings: each statement of reasons against what the audit saw of its probe.

Every check says only what the audit's own observations prove (see docs/statements.md):

- ``missing_statement``: the audit saw the post taken down and no statement matched it;
- ``statement_while_up``: a removal statement dated before the day a look saw the post up;
- ``source_type``: SOURCE_VOLUNTARY for a post seen up after the run's notice or order was
  accepted, or a notice source for a post seen gone before any was sent;
- ``automation``: automated_detection ``Yes`` for a post seen up after the run's filing was
  accepted (the filing identified it); ``No``, or a decision NOT_AUTOMATED, for a post seen gone
  before any filing and within the automation window of its receipt (platform time);
- ``content_type``: not the probe's modality (text, image, or audio for speech);
- ``visibility``: neither removal nor disabling, for a post seen gone;
- ``category``: not the criterion's DSA category (nor among the additional ones), for
  violating probes;
- ``dates``: a content date outside the days from sending the post to the first look, or an
  application date outside the days from the last look that saw the post up to the first that
  saw it gone.

A check whose premise is not observed (the filing fell between the two looks, say) is not
counted as checked for that probe.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from audit.i18n import N_
from audit.statements.match import CONTENT_TYPE_OF, Match, Matching, day_of
from audit.statements.model import (
    TITLES,
    CriterionStatements,
    FindingKind,
    KindRate,
    StatementFinding,
)
from audit.statements.observed import ObservedProbe
from audit.statements.schema import (
    NOTICE_SOURCES,
    REMOVING_VISIBILITIES,
    category_value,
    same_category,
)
from audit.statements.statement import Statement
from audit.stats import clopper_pearson

__all__ = ["MESSAGES", "Checked", "check_probe", "criterion_rates", "kind_rates"]

Kind = FindingKind


@dataclass(frozen=True)
class Checked:
    """One probe's checks: the kinds that could be checked and those found."""

    probe: ObservedProbe
    checked: frozenset[FindingKind]
    findings: list[StatementFinding]


# What a finding says (English in the model; the catalogs translate them, values as recorded)
VOLUNTARY_AFTER_FILING = N_(
    "reported SOURCE_VOLUNTARY, but the post was seen up after the run's filing"
)
NOTICE_BEFORE_FILING = N_(
    "reported %(source)s, but the post was gone before the run filed anything"
)
AUTOMATED_AFTER_FILING = N_("automated_detection Yes, but the run's filing identified the post")
NOT_AUTOMATED = N_(
    "automated_detection %(detection)s, %(decision)s, but the post was gone %(elapsed)s s "
    "(platform time) after receipt with no notice"
)
CONTENT_DATE = N_("content_date %(date)s, but the platform received the post on %(received)s")
APPLICATION_DATE = N_(
    "application_date %(date)s, but the post was seen up on %(up)s and gone on %(gone)s"
)
VISIBILITY = N_("decision_visibility %(shown)s, but the post was seen gone")
NO_VISIBILITY = N_("decision_visibility no visibility decision, but the post was seen gone")
CONTENT_TYPE = N_("content_type %(shown)s, the probe is %(modality)s")
CATEGORY = N_("category %(category)s, the criterion's is %(wanted)s")
WHILE_UP = N_("application_date %(date)s, but a look saw the post up on %(seen)s")
SEEN_GONE = N_("the post was seen gone")
MESSAGES = (
    VOLUNTARY_AFTER_FILING,
    NOTICE_BEFORE_FILING,
    AUTOMATED_AFTER_FILING,
    NOT_AUTOMATED,
    CONTENT_DATE,
    APPLICATION_DATE,
    NO_VISIBILITY,  # before VISIBILITY, whose pattern would read it too
    VISIBILITY,
    CONTENT_TYPE,
    CATEGORY,
    WHILE_UP,
    SEEN_GONE,
)


def _sequence(probe: ObservedProbe) -> str | None:
    """``before`` (gone before any filing was sent), ``after`` (seen up after the filing was
    accepted) or None when the looks do not tell."""
    if probe.first_down is None:
        return None
    if probe.filing_sent is None or probe.first_down <= probe.filing_sent:
        return "before"
    accepted = probe.filing_accepted
    if accepted is not None and probe.last_visible is not None and probe.last_visible >= accepted:
        return "after"
    return None


def _source(st: Statement, sequence: str | None) -> str | None:
    if sequence == "after" and st.source_type == "SOURCE_VOLUNTARY":
        return VOLUNTARY_AFTER_FILING
    if sequence == "before" and st.source_type in NOTICE_SOURCES:
        return NOTICE_BEFORE_FILING % {"source": st.source_type}
    return None


def _automation(
    probe: ObservedProbe, st: Statement, sequence: str | None, window: float, scale: float
) -> tuple[bool, str | None]:
    """(could be checked, contradiction)."""
    if sequence == "after":
        if st.automated_detection:
            return True, AUTOMATED_AFTER_FILING
        return True, None
    if sequence == "before" and probe.received_at is not None and probe.first_down is not None:
        elapsed = (probe.first_down - probe.received_at) * scale
        if elapsed > window:
            return False, None
        if (
            not st.automated_detection
            or st.automated_decision == "AUTOMATED_DECISION_NOT_AUTOMATED"
        ):
            return True, NOT_AUTOMATED % {
                "detection": "Yes" if st.automated_detection else "No",
                "decision": st.automated_decision,
                "elapsed": f"{elapsed:.0f}",
            }
        return True, None
    return False, None


def _dates(probe: ObservedProbe, st: Statement) -> str | None:
    assert probe.received_at is not None
    assert probe.first_down is not None
    first_look = day_of(probe.last_visible or probe.first_down)
    received = day_of(probe.received_at)
    if st.content_date is not None and not received <= st.content_date <= first_look:
        return CONTENT_DATE % {"date": st.content_date, "received": received}
    low, high = day_of(probe.last_visible or probe.received_at), day_of(probe.first_down)
    if not low <= st.application_date <= high:
        return APPLICATION_DATE % {"date": st.application_date, "up": low, "gone": high}
    return None


def _removed_checks(
    probe: ObservedProbe, st: Statement, window: float, scale: float
) -> Iterator[tuple[FindingKind, str | None]]:
    sequence = _sequence(probe)
    if sequence is not None:
        yield Kind.SOURCE_TYPE, _source(st, sequence)
    checkable, contradiction = _automation(probe, st, sequence, window, scale)
    if checkable:
        yield Kind.AUTOMATION, contradiction
    if not st.visibility & REMOVING_VISIBILITIES:
        shown = ", ".join(sorted(st.visibility))
        yield Kind.VISIBILITY, VISIBILITY % {"shown": shown} if shown else NO_VISIBILITY
    else:
        yield Kind.VISIBILITY, None
    yield Kind.DATES, _dates(probe, st)


def _statement_checks(
    probe: ObservedProbe, st: Statement, window: float, scale: float
) -> Iterator[tuple[FindingKind, str | None]]:
    expected = CONTENT_TYPE_OF.get(probe.modality)
    if expected is not None:
        wrong = expected not in st.content_types
        shown = ", ".join(sorted(st.content_types))
        yield (
            Kind.CONTENT_TYPE,
            CONTENT_TYPE % {"shown": shown, "modality": probe.modality} if wrong else None,
        )
    if probe.expectation == "violating" and probe.dsa_category:
        wanted = category_value(probe.dsa_category)
        fits = any(same_category(c, wanted) for c in st.categories)
        yield (
            Kind.CATEGORY,
            None if fits else CATEGORY % {"category": st.category, "wanted": wanted},
        )
    if probe.removed:
        yield from _removed_checks(probe, st, window, scale)
    elif probe.stayed_up and st.visibility & REMOVING_VISIBILITIES and probe.last_visible:
        seen = day_of(probe.last_visible)
        up = st.application_date < seen
        message = WHILE_UP % {"date": st.application_date, "seen": seen}
        yield Kind.STATEMENT_WHILE_UP, message if up else None


def check_probe(
    probe: ObservedProbe, match: Match | None, ambiguous: bool, window: float, scale: float
) -> Checked:
    """The checks of one probe against its matched statement (or its lack of one)."""
    if ambiguous:
        return Checked(probe, frozenset(), [])
    if match is None:
        if not probe.removed:
            return Checked(probe, frozenset(), [])
        finding = _finding(probe, Kind.MISSING_STATEMENT, None, SEEN_GONE)
        return Checked(probe, frozenset({Kind.MISSING_STATEMENT}), [finding])
    results = list(_statement_checks(probe, match.statement, window, scale))
    checked = {kind for kind, _ in results}
    if probe.removed:
        checked.add(Kind.MISSING_STATEMENT)
    how = match.confidence
    if match.agreeing:
        how += f" ({', '.join(match.agreeing)})"
    findings = [
        _finding(probe, kind, match.statement.label, message, how)
        for kind, message in results
        if message is not None
    ]
    return Checked(probe, frozenset(checked), findings)


def _finding(
    probe: ObservedProbe,
    kind: FindingKind,
    label: str | None,
    message: str,
    how: str | None = None,
) -> StatementFinding:
    return StatementFinding(
        probe_id=probe.probe_id,
        criterion_id=probe.criterion_id,
        post_id=probe.post_id,
        kind=kind,
        statement=label,
        match=how,
        message=message,
    )


def kind_rates(checks: Sequence[Checked], level: float) -> list[KindRate]:
    rates = []
    for kind in FindingKind:
        checked = [c for c in checks if kind in c.checked]
        found = sum(1 for c in checked if any(f.kind is kind for f in c.findings))
        interval = clopper_pearson(found, len(checked), level)
        rates.append(
            KindRate(
                kind=kind,
                title=TITLES[kind],
                found=found,
                checked=len(checked),
                rate=found / len(checked) if checked else None,
                low=interval.low,
                high=interval.high,
                level=level,
            )
        )
    return rates


def criterion_rates(
    checks: Sequence[Checked], matching: Matching, levels: dict[str, float]
) -> list[CriterionStatements]:
    by_criterion: dict[str, list[Checked]] = {}
    for c in checks:
        by_criterion.setdefault(c.probe.criterion_id, []).append(c)
    return [
        CriterionStatements(
            criterion_id=criterion,
            dsa_category=mine[0].probe.dsa_category,
            removals_seen=sum(1 for c in mine if c.probe.removed),
            matched=sum(1 for c in mine if c.probe.probe_id in matching.matched),
            ambiguous=sum(1 for c in mine if c.probe.probe_id in matching.ambiguous),
            kinds=kind_rates(mine, levels.get(criterion, 0.95)),
        )
        for criterion, mine in sorted(by_criterion.items())
    ]
