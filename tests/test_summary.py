"""The terminal summary: fits 80 columns with a legend, never cuts a criterion id or a verdict,
and says why a criterion was not measured."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from audit.scorecard import Scorecard
from audit.stats import Verdict
from audit.ui import print_summary
from tests.scorecards import gold_scorecard

VERDICTS = ("COMPLIANT", "NON_COMPLIANT", "INCONCLUSIVE", "NOT_MEASURED")


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Scorecard:
    return gold_scorecard(tmp_path_factory.mktemp("summary"))


def _printed(card: Scorecard, width: int) -> str:
    out = io.StringIO()
    print_summary(card, Console(file=out, width=width, color_system=None))
    return out.getvalue()


def _with_verdicts(card: Scorecard, verdicts: list[Verdict], reason: str) -> Scorecard:
    criteria = [
        c.model_copy(update={"verdict": v, "verdict_reason": reason})
        for c, v in zip(card.criteria, verdicts, strict=False)
    ]
    return card.model_copy(update={"criteria": criteria})


@pytest.mark.parametrize("width", [80, 100, 132, 200])
def test_fits_the_terminal_and_cuts_no_verdict(card: Scorecard, width: int) -> None:
    varied = _with_verdicts(
        card, [Verdict.NON_COMPLIANT, Verdict.NOT_MEASURED, Verdict.INCONCLUSIVE], "why"
    )
    text = _printed(varied, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    for c in varied.criteria:
        assert c.id in text
        assert c.verdict in text
    assert ("trig.: ord. order" in text) == (width < 120)


def test_says_why_a_criterion_was_not_measured(card: Scorecard) -> None:
    reason = "NOT_MEASURED: no violating probe was planned [not markup]."
    text = _printed(_with_verdicts(card, [Verdict.NOT_MEASURED] * 2, reason), 80)
    ids = ", ".join(c.id for c in card.criteria[:2])
    assert " ".join(f"{ids}: {reason}".split()) in " ".join(text.split())


def test_a_failed_run_says_why_once(card: Scorecard, tmp_path: Path) -> None:
    failed = _with_verdicts(card, [Verdict.NOT_MEASURED] * 3, "NOT_MEASURED: the run failed (x)")
    failed = failed.model_copy(update={"standing": "FAILED", "standing_note": "FAILED: x"})
    text = _printed(failed, 80)
    assert "FAILED: x" in text
    assert "the run failed (x)" not in text
