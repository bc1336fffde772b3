"""The HTML evidence appendix lists at most 500 probes of a criterion and names the files that
hold every one; CSV and JSON keep every probe."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from audit.report.csv import render_csv
from audit.report.html import render_html
from audit.report.json import render_json
from audit.scorecard import Scorecard
from tests.scorecards import gold_scorecard

ROWS = 500


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Scorecard:
    return gold_scorecard(tmp_path_factory.mktemp("gold"))


def _widened(card: Scorecard, criterion: str, total: int) -> Scorecard:
    """The card with ``total`` probes of ``criterion`` (copies of its first, numbered)."""
    first = next(p for p in card.probes if p.criterion_id == criterion)
    others = [p for p in card.probes if p.criterion_id != criterion]
    copies = [first.model_copy(update={"probe_id": f"copy{i:05d}"}) for i in range(total)]
    return card.model_copy(update={"probes": others + copies})


def _listed(html: str, criterion: str) -> list[str]:
    table = html.split(f'id="evidence-{criterion}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr class="row-[a-z]+"><td><code>([^<]+)</code>', table)


def test_a_small_run_lists_every_probe_and_no_cap_line(card: Scorecard) -> None:
    html = render_html(card)
    assert "more probes of" not in html and "the first 500" not in html
    for c in card.criteria:
        assert len(_listed(html, c.id)) == sum(1 for p in card.probes if p.criterion_id == c.id)


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_a_large_criterion_lists_its_first_rows_and_names_the_full_files(
    card: Scorecard, lang: str
) -> None:
    criterion = card.criteria[0].id
    wide = _widened(card, criterion, ROWS + 37)
    html = render_html(wide, None, lang)
    listed = _listed(html, criterion)
    assert listed == [f"copy{i:05d}" for i in range(ROWS)]  # the first rows, in the stated order
    assert "probes.csv" in html and "scorecard.json" in html
    more = "37 more probes of" if lang == "en" else "37 mẫu thử khác của"
    assert more in html
    for c in card.criteria[1:]:  # the other criteria are below the cap: every probe listed
        assert len(_listed(html, c.id)) == sum(1 for p in card.probes if p.criterion_id == c.id)
    rows = list(csv.DictReader(io.StringIO(render_csv(wide))))
    assert sum(1 for r in rows if r["criterion_id"] == criterion) == ROWS + 37
    data = json.loads(render_json(wide))
    assert sum(1 for p in data["probes"] if p["criterion_id"] == criterion) == ROWS + 37
