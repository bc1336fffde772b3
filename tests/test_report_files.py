"""scorecard.json and probes.csv written a slice of probes at a time are, byte for byte, what
their renderers give for the whole scorecard."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import InputError
from audit.report.csv import render_csv
from audit.report.html import render_html
from audit.report.json import render_json
from audit.report.markdown import render_markdown
from audit.report.registry import render_formats
from audit.scorecard import Scorecard
from audit.scorecard_probes import ProbeTable
from tests.scorecards import gold_scorecard


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Scorecard:
    return gold_scorecard(tmp_path_factory.mktemp("gold"))


def _many(card: Scorecard, total: int) -> Scorecard:
    probes = [
        card.probes[i % len(card.probes)].model_copy(update={"probe_id": f"p{i:05d}"})
        for i in range(total)
    ]
    return card.model_copy(update={"probes": probes})


@pytest.mark.parametrize("total", [0, 1, 999, 1000, 1001, 2500])
def test_sliced_json_and_csv_are_the_renderers_text(
    card: Scorecard, total: int, tmp_path: Path
) -> None:
    wide = _many(card, total)
    json_path, csv_path = render_formats(wide, ["json", "csv"], tmp_path)
    assert json_path.read_bytes() == render_json(wide).encode("utf-8")
    assert csv_path.read_bytes() == render_csv(wide).encode("utf-8")


def test_the_gold_scorecard_is_written_as_rendered(card: Scorecard, tmp_path: Path) -> None:
    paths = render_formats(card, ["csv", "html", "json", "md"], tmp_path)
    assert [p.name for p in paths] == [
        "probes.csv",
        "scorecard.html",
        "scorecard.json",
        "scorecard.md",
    ]
    assert paths[2].read_text(encoding="utf-8") == render_json(card)


def test_a_table_of_records_renders_as_the_list_of_its_evidence_rows(
    card: Scorecard, tmp_path: Path
) -> None:
    assert isinstance(card.probes, ProbeTable) and len(card.probes) > 1
    rows = list(card.probes)
    assert card.probes.data(0, len(rows)) == [p.model_dump(mode="json") for p in rows]
    assert card.probes[1:] == rows[1:] and card.probes[-1] == rows[-1]
    listed = card.model_copy(update={"probes": rows})
    assert listed.model_dump(mode="json") == card.model_dump(mode="json")
    for render in (render_json, render_csv, render_markdown, render_html):
        assert render(listed) == render(card)
    formats = ["json", "csv", "md", "html"]
    for mine, theirs in zip(
        render_formats(card, formats, tmp_path / "table"),
        render_formats(listed, formats, tmp_path / "list"),
        strict=True,
    ):
        assert mine.read_bytes() == theirs.read_bytes()


def test_an_unknown_format_is_refused_before_anything_is_written(
    card: Scorecard, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="docx"):
        render_formats(card, ["json", "docx"], tmp_path / "out")
    assert not (tmp_path / "out" / "scorecard.json").exists()
