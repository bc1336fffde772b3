"""The consistency checks and the matching, table-driven on made-up observations: each finding
is raised when its premise is observed and the statement contradicts it, is not raised for a
consistent statement, and is not counted as checked when the looks do not show its premise."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from audit.commands.statements import chosen_template
from audit.statements.check import check_probe, kind_rates
from audit.statements.match import match_statements
from audit.statements.model import FindingKind as K
from audit.statements.observed import ObservedProbe
from audit.statements.statement import Statement
from audit.store import RunRow

DAY = datetime(2025, 7, 2, 10, 0, tzinfo=UTC).timestamp()  # 10:00 UTC
H = 3600.0

PROACTIVE = ObservedProbe(
    probe_id="p1",
    criterion_id="C-1",
    dsa_category="SCAMS_AND_FRAUD",
    expectation="violating",
    trigger="proactive",
    modality="text",
    language="vi",
    post_id="0000001",
    received_at=DAY,
    outcome="removed_in_time",
    last_visible=DAY + 10,
    first_down=DAY + 60,
    filing_sent=None,
    filing_accepted=None,
)
NOTICED = replace(
    PROACTIVE,
    probe_id="p2",
    trigger="notice",
    post_id="0000002",
    filing_sent=DAY + 1,
    filing_accepted=DAY + 2,
    last_visible=DAY + H,
    first_down=DAY + 2 * H,
)
HONEST_PROACTIVE = Statement(
    label="row 2",
    puid="0000001",
    uuid=None,
    platform_name="P",
    visibility=frozenset({"DECISION_VISIBILITY_CONTENT_REMOVED"}),
    category="STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    categories=frozenset({"STATEMENT_CATEGORY_SCAMS_AND_FRAUD"}),
    content_types=frozenset({"CONTENT_TYPE_TEXT"}),
    language="VI",
    territories=frozenset({"DE"}),
    content_date=date(2025, 7, 2),
    application_date=date(2025, 7, 2),
    source_type="SOURCE_VOLUNTARY",
    automated_detection=True,
    automated_decision="AUTOMATED_DECISION_FULLY",
)
HONEST_NOTICED = replace(
    HONEST_PROACTIVE,
    label="row 3",
    puid="0000002",
    source_type="SOURCE_ARTICLE_16",
    automated_detection=False,
    automated_decision="AUTOMATED_DECISION_NOT_AUTOMATED",
)
WINDOW = 300.0


def _kinds(probe: ObservedProbe, st: Statement | None) -> tuple[set[K], set[K]]:
    from audit.statements.match import Match

    checked = check_probe(probe, Match(st, "puid") if st else None, False, WINDOW, 1.0)
    return set(checked.checked), {f.kind for f in checked.findings}


@pytest.mark.parametrize(
    ("probe", "statement"), [(PROACTIVE, HONEST_PROACTIVE), (NOTICED, HONEST_NOTICED)]
)
def test_an_honest_statement_has_no_finding(probe: ObservedProbe, statement: Statement) -> None:
    checked, found = _kinds(probe, statement)
    assert found == set()
    assert {K.SOURCE_TYPE, K.AUTOMATION, K.CONTENT_TYPE, K.CATEGORY, K.DATES} <= checked


def hp(**change: object) -> Statement:
    """The honest statement of the proactive probe, changed."""
    return replace(HONEST_PROACTIVE, **change)  # type: ignore[arg-type]


def hn(**change: object) -> Statement:
    return replace(HONEST_NOTICED, **change)  # type: ignore[arg-type]


VIOLENCE = "STATEMENT_CATEGORY_VIOLENCE"
SEEN_UP_LATER = replace(PROACTIVE, outcome="survived", first_down=None, last_visible=DAY + 2e5)
CASES = [
    ("missing", PROACTIVE, None, K.MISSING_STATEMENT),
    ("voluntary after notice", NOTICED, hn(source_type="SOURCE_VOLUNTARY"), K.SOURCE_TYPE),
    ("notice before filing", PROACTIVE, hp(source_type="SOURCE_TRUSTED_FLAGGER"), K.SOURCE_TYPE),
    ("fast, not automated", PROACTIVE, hp(automated_detection=False), K.AUTOMATION),
    (
        "fast, human decision",
        PROACTIVE,
        hp(automated_decision="AUTOMATED_DECISION_NOT_AUTOMATED"),
        K.AUTOMATION,
    ),
    ("detected after notice", NOTICED, hn(automated_detection=True), K.AUTOMATION),
    ("image as text", replace(PROACTIVE, modality="image"), HONEST_PROACTIVE, K.CONTENT_TYPE),
    ("speech not audio", replace(PROACTIVE, modality="speech"), HONEST_PROACTIVE, K.CONTENT_TYPE),
    (
        "demoted, seen gone",
        PROACTIVE,
        hp(visibility=frozenset({"DECISION_VISIBILITY_CONTENT_DEMOTED"})),
        K.VISIBILITY,
    ),
    (
        "other category",
        PROACTIVE,
        hp(category=VIOLENCE, categories=frozenset({VIOLENCE})),
        K.CATEGORY,
    ),
    ("applied the day before", PROACTIVE, hp(application_date=date(2025, 7, 1)), K.DATES),
    ("applied the day after", PROACTIVE, hp(application_date=date(2025, 7, 3)), K.DATES),
    ("posted another day", PROACTIVE, hp(content_date=date(2025, 6, 30)), K.DATES),
    ("removed before seen up", SEEN_UP_LATER, HONEST_PROACTIVE, K.STATEMENT_WHILE_UP),
]


@pytest.mark.parametrize(
    ("probe", "statement", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_contradiction_is_one_finding(
    probe: ObservedProbe, statement: Statement | None, kind: K
) -> None:
    checked, found = _kinds(probe, statement)
    assert found == {kind}
    assert kind in checked


def test_a_category_renamed_in_v2_or_given_as_additional_is_the_same() -> None:
    amulets = replace(PROACTIVE, dsa_category="UNSAFE_AND_PROHIBITED_PRODUCTS")
    v1 = replace(
        HONEST_PROACTIVE,
        categories=frozenset({"STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS"}),
    )
    assert _kinds(amulets, v1)[1] == set()
    added = replace(
        HONEST_PROACTIVE,
        category="STATEMENT_CATEGORY_VIOLENCE",
        categories=frozenset({"STATEMENT_CATEGORY_VIOLENCE", "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"}),
    )
    assert _kinds(PROACTIVE, added)[1] == set()


def test_a_filing_between_the_looks_leaves_source_and_automation_unchecked() -> None:
    unclear = replace(NOTICED, last_visible=DAY, first_down=DAY + H)  # filed at DAY + 1
    checked, found = _kinds(unclear, replace(HONEST_NOTICED, source_type="SOURCE_VOLUNTARY"))
    assert K.SOURCE_TYPE not in checked
    assert K.AUTOMATION not in checked
    assert found == set()


def test_a_slow_proactive_removal_leaves_automation_unchecked() -> None:
    slow = replace(PROACTIVE, first_down=DAY + WINDOW + 1)
    checked, found = _kinds(slow, replace(HONEST_PROACTIVE, automated_detection=False))
    assert K.AUTOMATION not in checked
    assert found == set()


def test_a_removal_after_the_last_look_is_no_statement_while_up() -> None:
    up = replace(PROACTIVE, outcome="survived", first_down=None, last_visible=DAY + 60)
    checked, found = _kinds(up, HONEST_PROACTIVE)  # applied the day it was last seen up
    assert K.STATEMENT_WHILE_UP in checked
    assert found == set()
    assert _kinds(up, None) == (set(), set())  # and no statement is not "missing"


def test_rates_count_findings_among_the_checked_with_exact_intervals() -> None:
    checks = [
        check_probe(PROACTIVE, None, False, WINDOW, 1.0),
        check_probe(replace(PROACTIVE, probe_id="p3"), None, False, WINDOW, 1.0),
        check_probe(replace(PROACTIVE, outcome="survived", first_down=None), None, False, 0, 1),
    ]
    missing = next(r for r in kind_rates(checks, 0.95) if r.kind is K.MISSING_STATEMENT)
    assert (missing.found, missing.checked, missing.rate) == (2, 2, 1.0)
    assert missing.low == pytest.approx(0.158113883, abs=1e-6)  # (0.025)^(1/2)
    assert missing.high == 1.0


def test_puid_matching_reports_two_statements_for_one_probe_as_ambiguous() -> None:
    twice = [HONEST_PROACTIVE, replace(HONEST_PROACTIVE, label="row 9")]
    matching = match_statements([PROACTIVE, NOTICED], [*twice, HONEST_NOTICED], str)
    assert matching.ambiguous == {"p1": ["row 2", "row 9"]}
    assert set(matching.matched) == {"p2"}
    assert matching.matched["p2"].confidence == "puid"


def test_puid_matching_uses_the_template_and_the_platform() -> None:
    other = replace(HONEST_NOTICED, platform_name="Q")
    matching = match_statements([PROACTIVE, NOTICED], [HONEST_PROACTIVE, other], str, platform="P")
    assert set(matching.matched) == {"p1"}
    assert matching.other_platform == 1


def test_attribute_matching_pairs_only_single_best_candidates() -> None:
    image = replace(NOTICED, modality="image")
    statements = [
        replace(HONEST_PROACTIVE, puid=None),
        replace(HONEST_NOTICED, puid=None, content_types=frozenset({"CONTENT_TYPE_IMAGE"})),
    ]
    matching = match_statements([PROACTIVE, image], statements, None)
    assert matching.ambiguous == {}
    assert matching.matched["p1"].statement.label == "row 2"
    assert matching.matched["p2"].statement.label == "row 3"
    assert matching.matched["p2"].confidence == "attributes"
    assert "content_type" in matching.matched["p2"].agreeing


def test_attribute_matching_reports_ties_and_never_guesses() -> None:
    twin = replace(PROACTIVE, probe_id="p9", post_id="0000009")
    statements = [replace(HONEST_PROACTIVE, puid=None)]
    matching = match_statements([PROACTIVE, twin], statements, None)
    assert matching.matched == {}
    assert set(matching.ambiguous) == {"p1", "p9"}
    ambiguous = check_probe(PROACTIVE, None, True, WINDOW, 1.0)
    assert ambiguous.findings == []  # an ambiguous probe is not "missing" a statement


def test_a_finding_says_how_its_statement_was_matched() -> None:
    from audit.statements.match import Match

    wrong = replace(HONEST_PROACTIVE, content_types=frozenset({"CONTENT_TYPE_VIDEO"}))
    by_attributes = Match(wrong, "attributes", ("category", "source_type"))
    (finding,) = check_probe(PROACTIVE, by_attributes, False, WINDOW, 1.0).findings
    assert finding.match == "attributes (category, source_type)"
    (by_puid,) = check_probe(PROACTIVE, Match(wrong, "puid"), False, WINDOW, 1.0).findings
    assert by_puid.match == "puid"


def _run(adapter: str, profile: dict[str, object] | None) -> RunRow:
    return RunRow(
        run_id="r",
        created_at=0.0,
        plan_name="p",
        plan={},
        target_name="t",
        target={"adapter": adapter},
        pack={},
        pack_digest="",
        seed=1,
        time_scale=1.0,
        status="finished",
        finished_at=None,
        failure=None,
        profile=profile,
    )


@pytest.mark.parametrize(
    ("adapter", "profile", "flag", "by_attributes", "expected"),
    [
        ("sandbox", None, None, False, "{post_id}"),
        ("profile", {"statements_puid": "sor-{post_id}"}, None, False, "sor-{post_id}"),
        ("profile", {}, None, False, None),
        ("profile", {"statements_puid": "sor-{post_id}"}, "x-{post_id}", False, "x-{post_id}"),
        ("sandbox", None, None, True, None),
    ],
)
def test_the_puid_template_comes_from_the_flag_the_profile_or_the_sandbox(
    adapter: str,
    profile: dict[str, object] | None,
    flag: str | None,
    by_attributes: bool,
    expected: str | None,
) -> None:
    assert chosen_template(_run(adapter, profile), flag, by_attributes) == expected


def test_a_profile_puid_template_must_name_the_post_id() -> None:
    from pydantic import ValidationError

    from audit.adapters.profile_model import Profile

    fields = Profile.model_fields["statements_puid"]
    assert fields.default is None
    with pytest.raises(ValidationError, match="statements_puid"):
        Profile.model_validate({"schema_version": 1, "statements_puid": "post-{id}"})
