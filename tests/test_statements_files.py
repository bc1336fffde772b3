"""Statements of reasons from files: every published format loads, each bad row gives one line,
and ``statements validate`` catches each submission rule (one case per rule).

The dumps here are made by hand from the documented layout (docs/statements.md): a zip of
zipped CSV parts, JSON arrays in array cells, dates as ``YYYY-MM-DD 00:00:00``, the puid in
``platform_uid``; the light variant without the free-text columns."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from audit.cli import main
from audit.errors import InputError
from audit.statements.rules import RULES, check_statement
from audit.statements.statement import load_statements

GOOD: dict[str, Any] = {
    "decision_visibility": ["DECISION_VISIBILITY_CONTENT_REMOVED"],
    "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
    "incompatible_content_ground": "Terms, section 4",
    "incompatible_content_explanation": "Paid fortune-telling is not allowed.",
    "content_type": ["CONTENT_TYPE_TEXT"],
    "category": "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "territorial_scope": ["DE", "FR"],
    "content_language": "VI",
    "content_date": "2025-07-01",
    "application_date": "2025-07-02",
    "decision_facts": "Removed after review.",
    "source_type": "SOURCE_VOLUNTARY",
    "automated_detection": "Yes",
    "automated_decision": "AUTOMATED_DECISION_FULLY",
    "puid": "post-0000001",
}
FULL = [
    "uuid", "decision_visibility", "decision_visibility_other", "decision_ground",
    "incompatible_content_ground", "incompatible_content_explanation", "category",
    "category_addition", "content_type", "content_language", "content_date",
    "territorial_scope", "application_date", "decision_facts", "source_type",
    "automated_detection", "automated_decision", "platform_name", "platform_uid", "created_at",
]  # fmt: skip
FREE_TEXT = {
    "decision_visibility_other",
    "incompatible_content_ground",
    "incompatible_content_explanation",
    "decision_facts",
}


def _dump_cell(name: str, record: dict[str, Any]) -> str:
    value = record.get("puid" if name == "platform_uid" else name)
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value)
    if name.endswith("_date"):
        return f"{value} 00:00:00"
    return str(value)


def _csv(records: list[dict[str, Any]], light: bool) -> str:
    columns = [c for c in FULL if not (light and c in FREE_TEXT)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for record in records:
        writer.writerow([_dump_cell(c, record) for c in columns])
    return out.getvalue()


def _dump(path: Path, records: list[dict[str, Any]], light: bool) -> Path:
    stem = path.name.removesuffix(".zip")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as part:
        part.writestr(f"{stem}-00000.csv", _csv(records, light))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{stem}-00000.csv.zip", inner.getvalue())
    return path


def _records() -> list[dict[str, Any]]:
    second = {**GOOD, "puid": "post-0000002", "content_type": ["CONTENT_TYPE_IMAGE"]}
    return [{**GOOD, "uuid": "u-1", "platform_name": "P"}, {**second, "uuid": "u-2"}]


@pytest.mark.parametrize("light", [False, True], ids=["full", "light"])
def test_a_daily_dump_loads(tmp_path: Path, light: bool) -> None:
    name = f"sor-p-2025-07-02-{'light' if light else 'full'}.zip"
    loaded = load_statements(_dump(tmp_path / name, _records(), light))
    assert loaded.errors == []
    assert [s.puid for s in loaded.statements] == ["post-0000001", "post-0000002"]
    first = loaded.statements[0]
    assert str(first.application_date) == "2025-07-02"
    assert first.content_types == {"CONTENT_TYPE_TEXT"}
    assert first.automated_detection is True
    assert first.territories == {"DE", "FR"}
    assert first.platform_name == "P"


def test_a_dump_part_alone_loads(tmp_path: Path) -> None:
    path = tmp_path / "sor-p-2025-07-02-full-00000.csv"
    path.write_text(_csv(_records(), light=False), encoding="utf-8")
    assert len(load_statements(path).statements) == 2


@pytest.mark.parametrize(
    "shape",
    [
        lambda rs: rs[0],
        lambda rs: rs,
        lambda rs: {"statements": rs},
        lambda rs: {"data": rs},
    ],
    ids=["one", "list", "bulk", "search-page"],
)
def test_api_json_loads(tmp_path: Path, shape: Any) -> None:
    path = tmp_path / "statements.json"
    path.write_text(json.dumps(shape(_records())), encoding="utf-8")
    loaded = load_statements(path)
    assert loaded.errors == []
    assert loaded.statements[0].puid == "post-0000001"


def test_json_lines_load(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _records()) + "\n", encoding="utf-8")
    assert len(load_statements(path).statements) == 2


def test_each_bad_row_gives_one_line(tmp_path: Path) -> None:
    bad = [
        {**GOOD, "category": "SCAMS"},
        {**GOOD, "application_date": "02/07/2025", "source_type": "NOTICE"},
        {**GOOD, "automated_decision": None},
    ]
    path = _dump(tmp_path / "sor-p-2025-07-02-full.zip", [GOOD, *bad], light=False)
    loaded = load_statements(path)
    assert len(loaded.statements) == 1
    assert len(loaded.errors) == 3
    first, second, third = loaded.errors
    assert "-00000.csv, row 3: 'category' must be one of" in first
    assert "(got 'SCAMS')" in first
    assert "row 4: 'source_type' must be one of" in second
    assert "(and 1 more)" in second
    assert "row 5: 'automated_decision' is required" in third
    assert all("\n" not in line for line in loaded.errors)


def test_a_row_with_the_wrong_number_of_cells_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "part.csv"
    path.write_text(_csv([GOOD], light=False) + "only,three,cells\n", encoding="utf-8")
    loaded = load_statements(path)
    assert loaded.errors == [f"{path}, row 3: has 3 cells, the header has {len(FULL)}"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("x.json", "{not json", "is not JSON"),
        ("x.zip", "not a zip", "is not a zip file"),
        ("x.txt", "", "expected .zip or .csv"),
        ("x.json", '"a string"', "must hold a statement object"),
    ],
)
def test_an_unreadable_file_is_an_input_error(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=expected):
        load_statements(path)


# One case per submission rule: a change to GOOD that breaks it, and the field it names.
RULE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("required", {"decision_facts": None}, "decision_facts"),
    ("required", {"puid": ""}, "puid"),
    ("required", {"decision_visibility": None}, "decision_visibility"),  # none of the four
    ("enumeration", {"category": "STATEMENT_CATEGORY_HOAX"}, "category"),
    ("enumeration", {"content_type": ["CONTENT_TYPE_MEME"]}, "content_type"),
    ("enumeration", {"content_type": "CONTENT_TYPE_TEXT"}, "content_type"),  # not an array
    ("enumeration", {"territorial_scope": ["US"]}, "territorial_scope"),
    ("enumeration", {"automated_detection": "yes"}, "automated_detection"),
    ("enumeration", {"automated_decision": "Yes"}, "automated_decision"),
    ("enumeration", {"source_type": "SOURCE_OTHER"}, "source_type"),
    ("length", {"decision_facts": "x" * 5001}, "decision_facts"),
    (
        "length",
        {"incompatible_content_explanation": "x" * 2001},
        "incompatible_content_explanation",
    ),
    ("length", {"puid": "p" * 501}, "puid"),
    ("date_format", {"application_date": "2025-7-2"}, "application_date"),
    ("date_format", {"content_date": "2025-07-01 00:00:00"}, "content_date"),
    (
        "date_format",
        {"end_date_visibility_restriction": "2025-02-30"},
        "end_date_visibility_restriction",
    ),
    ("date_range", {"content_date": "1999-12-31"}, "content_date"),
    ("date_range", {"application_date": "2019-12-31"}, "application_date"),
    ("date_range", {"end_date_account_restriction": "2025-07-01"}, "end_date_account_restriction"),
    (
        "conditional",
        {"decision_visibility": ["DECISION_VISIBILITY_OTHER"]},
        "decision_visibility_other",
    ),
    ("conditional", {"content_type": ["CONTENT_TYPE_OTHER"]}, "content_type_other"),
    ("conditional", {"decision_monetary": "DECISION_MONETARY_OTHER"}, "decision_monetary_other"),
    (
        "conditional",
        {
            "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT",
            "illegal_content_explanation": "Fraud under Penal Code Art. 174.",
        },
        "illegal_content_legal_ground",
    ),
    ("conditional", {"incompatible_content_ground": None}, "incompatible_content_ground"),
    ("puid_format", {"puid": "post 1"}, "puid"),
    ("language", {"content_language": "vi"}, "content_language"),
]  # fmt: skip


def test_the_good_statement_breaks_no_rule() -> None:
    assert check_statement(GOOD) == []


def test_every_rule_has_a_case() -> None:
    assert {rule for rule, _, _ in RULE_CASES} == set(RULES)


@pytest.mark.parametrize(("rule", "change", "field"), RULE_CASES)
def test_each_rule_is_caught(rule: str, change: dict[str, Any], field: str) -> None:
    record = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    problems = check_statement(record)
    assert [(p.rule, p.field) for p in problems] == [(rule, field)], problems


@pytest.mark.parametrize(("rule", "change", "field"), RULE_CASES[:: len(RULE_CASES) // 6])
def test_validate_exits_1_naming_the_rule(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rule: str,
    change: dict[str, Any],
    field: str,
) -> None:
    record = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = tmp_path / "out.json"
    path.write_text(json.dumps({"statements": [GOOD, record]}), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["statements", "validate", str(path)])
    out = capsys.readouterr().out
    assert exit_info.value.code == 1
    assert f"{path}, statement 2: '{field}'" in out
    assert f"[{rule}]" in out
    assert "statement 1:" not in out


def test_validate_exits_0_on_valid_statements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out.json"
    path.write_text(json.dumps([GOOD]), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["statements", "validate", str(path)])
    assert exit_info.value.code == 0
    assert "1 statements: 0 rule violations" in capsys.readouterr().out


def test_validate_an_unreadable_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["statements", "validate", str(path)])
    assert exit_info.value.code == 2
    assert "is not JSON" in capsys.readouterr().err
