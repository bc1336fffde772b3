"""``diff`` and ``trend`` carry the statements cross-check: each finding's rate in both runs and
whether it changed beyond noise (the same exact test as removal rates)."""

from __future__ import annotations

import pytest

from audit.compare import diff_runs, statement_notes, trend_of
from audit.scorecard import Scorecard
from audit.statements.model import (
    TITLES,
    FindingKind,
    KindRate,
    StatementSource,
    StatementsSection,
)
from tests.scorecards import gold_scorecard


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Scorecard:
    return gold_scorecard(tmp_path_factory.mktemp("gold"))


def _with(card: Scorecard, run_id: str, start: str, missing: int, of: int) -> Scorecard:
    rate = KindRate(
        kind=FindingKind.MISSING_STATEMENT,
        title=TITLES[FindingKind.MISSING_STATEMENT],
        found=missing,
        checked=of,
        rate=missing / of,
        low=0.0,
        high=1.0,
        level=0.95,
    )
    section = StatementsSection(
        sources=[StatementSource(name="dump.zip", sha256="0" * 64, rows=of)],
        rows=of,
        bad_rows=0,
        not_about_the_run=0,
        matching="puid",
        puid_template="{post_id}",
        platform=None,
        automation_window_s=300.0,
        statements_used=of - missing,
        matched=of - missing,
        unmatched_statements=0,
        other_platform=0,
        ambiguous=[],
        overall=[rate],
        criteria=[],
        findings=[],
        limits=[],
    )
    return card.model_copy(
        update={"run_id": run_id, "period_start_utc": start, "statements": section}
    )


def test_diff_says_a_large_change_is_beyond_noise(card: Scorecard) -> None:
    before, after = _with(card, "a", "1", 0, 30), _with(card, "b", "2", 20, 30)
    (note,) = statement_notes(before, after)
    assert note.startswith("statements, removal seen, no statement of reasons: 0/30 → 20/30")
    assert "a change beyond noise" in note
    assert note in diff_runs(before, after).notes


def test_diff_says_a_small_change_is_within_noise(card: Scorecard) -> None:
    (note,) = statement_notes(_with(card, "a", "1", 2, 30), _with(card, "b", "2", 3, 30))
    assert "within noise" in note


def test_no_note_without_a_cross_check_on_both_sides(card: Scorecard) -> None:
    assert statement_notes(card, _with(card, "b", "2", 1, 10)) == []


def test_trend_notes_each_step_with_its_run(card: Scorecard) -> None:
    cards = [_with(card, "a", "1", 0, 30), _with(card, "b", "2", 20, 30)]
    notes = trend_of(cards).notes
    assert any(n.startswith("b: statements, removal seen") for n in notes)
