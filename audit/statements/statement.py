"""Statements of reasons as the cross-check reads them, from any accepted file.

A row is kept when it has what the cross-check reads (category, content type, application date,
source type and both automation fields) in the published spellings; every other row is reported
in one line naming its place, the field, the expectation and the value. The free-text fields a
"light" dump leaves out are not needed here; ``statements validate`` holds a file to every
submission rule instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from audit.statements.load import Row, normalise, read_rows
from audit.statements.rules import check_statement, parse_date

__all__ = ["Loaded", "Statement", "load_statements", "statement_from"]

_NEEDED = (
    "category",
    "content_type",
    "application_date",
    "source_type",
    "automated_detection",
    "automated_decision",
)


@dataclass(frozen=True)
class Statement:
    """One statement, in the fields the cross-check compares with what the audit observed."""

    label: str  # where it was read
    puid: str | None
    uuid: str | None
    platform_name: str | None
    visibility: frozenset[str]
    category: str
    categories: frozenset[str]  # the category and the additional ones
    content_types: frozenset[str]
    language: str | None
    territories: frozenset[str]
    content_date: date | None
    application_date: date
    source_type: str
    automated_detection: bool
    automated_decision: str


@dataclass(frozen=True)
class Loaded:
    statements: list[Statement]
    errors: list[str]  # one line per row that could not be used
    rows: int


def _set(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    return frozenset(str(v) for v in (value if isinstance(value, list) else [value]))


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _problem(record: dict[str, Any]) -> str | None:
    for name in _NEEDED:
        if record.get(name) in (None, "", []):
            return f"'{name}' is required for the cross-check"
    found = check_statement(record, ("enumeration", "date_format", "date_range"))
    if not found:
        return None
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return found[0].message + more


def statement_from(label: str, raw: dict[str, Any]) -> Statement | str:
    """The statement in ``raw``, or the one-line reason it cannot be used."""
    record = normalise(raw)
    problem = _problem(record)
    if problem is not None:
        return problem
    applied = parse_date(record["application_date"])
    assert applied is not None  # checked by date_format
    category = str(record["category"])
    return Statement(
        label=label,
        puid=_text(record.get("puid")),
        uuid=_text(record.get("uuid")),
        platform_name=_text(record.get("platform_name")),
        visibility=_set(record.get("decision_visibility")),
        category=category,
        categories=_set(record.get("category_addition")) | {category},
        content_types=_set(record.get("content_type")),
        language=_text(record.get("content_language")),
        territories=_set(record.get("territorial_scope")),
        content_date=parse_date(record.get("content_date")),
        application_date=applied,
        source_type=str(record["source_type"]),
        automated_detection=record["automated_detection"] == "Yes",
        automated_decision=str(record["automated_decision"]),
    )


def _kept(row: Row) -> Statement | str:
    if row.record is None:
        return row.error or "could not be read"
    return statement_from(row.label, row.record)


def load_statements(path: Path) -> Loaded:
    """The usable statements in ``path`` and one error line per row that is not."""
    rows = read_rows(path)
    statements: list[Statement] = []
    errors: list[str] = []
    for row in rows:
        result = _kept(row)
        if isinstance(result, Statement):
            statements.append(result)
        else:
            errors.append(f"{row.label}: {result}")
    return Loaded(statements, errors, len(rows))
