"""Renderers: gold files for every format, the JSON Schema, JUnit and CSV read back by parsers.

Gold files live in tests/gold/. After an intended change of output, regenerate them (and the
committed JSON Schema) with ``UPDATE_GOLD=1 pytest tests/test_render.py`` and review the diff.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import pkgutil
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from junitparser import Error, Failure, JUnitXml, Skipped

import audit.report
from audit.cli import main
from audit.errors import InputError
from audit.report.csv import CSV_FIELDS, csv_cell
from audit.report.escape import inert, json_text
from audit.report.html import render_html
from audit.report.json import SCHEMA_ID, render_json, scorecard_schema
from audit.report.junit import render_junit
from audit.report.registry import FORMAT_MODULES, FORMATS, RENDERERS, render_formats
from audit.scorecard import SCHEMA_VERSION, Scorecard
from audit.stats import Verdict
from audit.store import Store
from tests.scorecards import gold_plan, gold_scorecard, platform, run_on_virtual_clock, scrub

ROOT = Path(__file__).resolve().parent.parent
GOLD = Path(__file__).resolve().parent / "gold"
SCHEMA_FILE = ROOT / "schemas" / "scorecard.schema.json"
UPDATE = os.environ.get("UPDATE_GOLD") == "1"


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Scorecard:
    return gold_scorecard(tmp_path_factory.mktemp("gold"))


def _check_gold(name: str, text: str) -> None:
    path = GOLD / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
        return
    assert path.exists(), f"{path} is missing; create it with UPDATE_GOLD=1"
    expected = path.read_bytes().decode("utf-8")
    assert text == expected, f"{name} differs from its gold file; if intended, UPDATE_GOLD=1"


# formats no gold file can hold, and the tests that check them instead
WITHOUT_GOLD = {"pdf": "tests/test_pdf.py: Chromium stamps each PDF with the time it printed it"}


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f not in WITHOUT_GOLD])
def test_each_format_matches_its_gold_file(card: Scorecard, fmt: str) -> None:
    renderer = RENDERERS[fmt]
    output = renderer.render(card, None, "en").decode("utf-8")
    _check_gold(renderer.filename, scrub(output))


def test_every_format_module_is_registered_and_has_its_gold_file() -> None:
    defining = sorted(
        info.name
        for info in pkgutil.iter_modules(audit.report.__path__)
        if hasattr(importlib.import_module(f"audit.report.{info.name}"), "RENDERER")
    )
    assert defining == sorted(FORMAT_MODULES), "a format module is missing from FORMAT_MODULES"
    assert set(WITHOUT_GOLD) <= set(FORMATS)
    golds = {path.name for path in GOLD.iterdir()}
    assert golds == {RENDERERS[f].filename for f in FORMATS if f not in WITHOUT_GOLD}


def test_committed_json_schema_is_current() -> None:
    generated = json_text(scorecard_schema())
    if UPDATE:
        SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_FILE.write_text(generated, encoding="utf-8")
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed["$id"] == SCHEMA_ID, "bump or regenerate: $id does not carry SCHEMA_VERSION"
    assert committed == json.loads(generated), (
        "schemas/scorecard.schema.json is out of date with the Scorecard model: bump "
        "SCHEMA_VERSION (docs/scorecards.md says how) and regenerate with UPDATE_GOLD=1"
    )


def _validate(document: object) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)


def test_json_scorecard_validates_against_the_schema(card: Scorecard) -> None:
    document = json.loads(render_json(card))
    assert document["schema_version"] == SCHEMA_VERSION
    _validate(document)


def test_schema_rejects_a_scorecard_missing_a_verdict(card: Scorecard) -> None:
    document = json.loads(render_json(card))
    del document["criteria"][0]["verdict"]
    with pytest.raises(jsonschema.ValidationError, match="verdict"):
        _validate(document)


def _with_verdicts(card: Scorecard, *verdicts: Verdict) -> Scorecard:
    first = card.criteria[0]
    criteria = [
        first.model_copy(update={"id": f"X-{i}", "verdict": v}) for i, v in enumerate(verdicts)
    ]
    return card.model_copy(update={"criteria": criteria})


def test_junit_has_a_case_per_criterion_read_by_a_junit_parser(card: Scorecard) -> None:
    mixed = _with_verdicts(
        card, Verdict.COMPLIANT, Verdict.NON_COMPLIANT, Verdict.INCONCLUSIVE, Verdict.NOT_MEASURED
    )
    xml = JUnitXml.fromstring(render_junit(mixed))
    (suite,) = list(xml)
    cases = list(suite)
    assert len(cases) == suite.tests == 4
    kinds = [type(case.result[0]) if case.result else None for case in cases]
    assert kinds == [None, Failure, Skipped, Error]
    assert (suite.failures, suite.skipped, suite.errors) == (1, 1, 1)
    assert cases[1].result[0].type == "NON_COMPLIANT"
    assert "removed within" in cases[1].result[0].message
    properties = {p.name: p.value for p in suite.properties()}
    assert properties["run_id"] == card.run_id
    assert properties["overall_verdict"] == card.overall_verdict


def test_junit_timestamp_fits_the_junit_schema(card: Scorecard) -> None:
    (suite,) = list(JUnitXml.fromstring(render_junit(card)))
    stamp = suite._elem.get("timestamp")
    assert stamp is not None and len(stamp) == 19 and stamp[10] == "T"  # xs:dateTime, no zone


def test_csv_lists_every_probe_with_a_header(card: Scorecard) -> None:
    output = RENDERERS["csv"].render(card, None, "en").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(output, newline="")))
    assert len(rows) == len(card.probes)
    assert tuple(rows[0]) == CSV_FIELDS
    assert {r["probe_id"] for r in rows} == {p.probe_id for p in card.probes}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("  =1+1", "'  =1+1"),
        ("\t=1", "'\t=1"),
        ("＝1+1", "'＝1+1"),
        ("plain", "plain"),
        (None, ""),
        (3, "3"),
    ],
)
def test_csv_cells_never_start_a_formula(value: object, expected: str) -> None:
    assert csv_cell(value) == expected


_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.floats(),
        st.text(),
        st.text(alphabet=" =+-@\t\r\n\uff1d\u202e\x00a1"),
    )
)
def test_csv_cell_is_inert_text_with_formulas_quoted(value: object) -> None:
    """A cell is the value's inert text, with ``'`` before it when it starts (after spaces)
    with a character a spreadsheet reads as a formula."""
    text = inert("" if value is None else value)
    assert csv_cell(value) == ("'" + text if text.lstrip(" ").startswith(_FORMULA) else text)


def test_inert_shows_bidi_and_control_characters() -> None:
    assert inert("a\u202eb\x00c\u2066") == "a<U+202E>b<U+0000>c<U+2066>"
    assert inert("Tiếng Việt ✓") == "Tiếng Việt ✓"


def test_json_keeps_data_but_escapes_reordering_characters() -> None:
    text = json_text({"t": "a\u202eb\u2028c"})
    assert "\u202e" not in text and "\\u202e" in text
    assert json.loads(text) == {"t": "a\u202eb\u2028c"}


def test_a_folder_of_templates_overrides_the_bundled_ones(card: Scorecard, tmp_path: Path) -> None:
    (tmp_path / "scorecard.html.j2").write_text("<p>{{ card.run_id }} {{ page.headline }}</p>")
    assert render_html(card, tmp_path).startswith(f"<p>{card.run_id} ")


def test_a_missing_template_is_an_input_error(card: Scorecard, tmp_path: Path) -> None:
    (tmp_path / "scorecard.html.j2").write_text('{% include "nowhere.j2" %}')
    with pytest.raises(InputError, match="nowhere"):
        render_html(card, tmp_path)


def test_unknown_format_is_refused(card: Scorecard, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="docx"):
        render_formats(card, ["html", "docx"], tmp_path)


def test_report_writes_all_five_formats_from_one_run(tmp_path: Path) -> None:
    workspace, reports = tmp_path / "ws", tmp_path / "reports"
    store = Store(workspace / "audit.sqlite")
    run_id = run_on_virtual_clock(store, gold_plan(), platform())
    store.close()
    args = ["--workspace", str(workspace), "--reports", str(reports), "report", run_id]
    with pytest.raises(SystemExit) as exited:
        main([*args, "--format", "html,json,junit,csv,md", "--quiet"])
    assert exited.value.code in (1, 3)
    written = sorted(p.name for p in (reports / run_id).iterdir())
    assert written == [
        "junit.xml",
        "probes.csv",
        "scorecard.html",
        "scorecard.json",
        "scorecard.md",
    ]
    _validate(json.loads((reports / run_id / "scorecard.json").read_text(encoding="utf-8")))
    JUnitXml.fromfile(str(reports / run_id / "junit.xml"))


def test_an_evasion_finding_is_shown_on_its_criterion(card: Scorecard) -> None:
    from audit.arms import EvasionFinding

    finding = EvasionFinding(
        criterion_id=card.criteria[1].id,
        variants=["strip_diacritics"],
        label="strip_diacritics",
        complexity=1,
        clean_removed=10,
        clean_measured=10,
        removed=1,
        measured=10,
        upper=0.39,
        threshold=0.95,
        confidence=0.95,
        arms_tested=3,
        also_evading=[],
        probe_ids=[],
        summary="Posts without diacritics <b>get through</b>: 1 of 10 removed in time.",
    )
    shown = card.model_copy(update={"evasions": [finding]})
    html = RENDERERS["html"].render(shown, None, "en").decode("utf-8")
    card_html = html[html.index(f'id="{card.criteria[1].id}"') :]
    card_html = card_html[: card_html.index("</article>")]
    assert "Posts without diacritics &lt;b&gt;get through&lt;/b&gt;" in card_html
    markdown = RENDERERS["md"].render(shown, None, "en").decode("utf-8")
    assert "Evasion that gets through" in markdown
