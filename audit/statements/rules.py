"""The database's submission rules for one statement, as pure checks.

Each rule is one function over a statement record (a dict as the API takes it: arrays as lists,
dates as ``YYYY-MM-DD``) that yields :class:`Problem` s. The rules are those of the submission
API's validation (``StatementStoreRequest``) and documentation of the
``digital-services-act/transparency-database`` repository:

- ``required``: decision_ground, content_type, category, application_date, content_date,
  decision_facts, source_type, automated_detection, automated_decision, puid, territorial_scope;
  and at least one of decision_visibility, decision_monetary, decision_provision,
  decision_account.
- ``enumeration``: every limited field takes one of its published values.
- ``length``: the free-text limits (500, 2000, 5000 characters).
- ``date_format``: ``YYYY-MM-DD`` with leading zeroes.
- ``date_range``: content_date on or after 2000-01-01, application_date on or after
  2020-01-01, each end date on or after the application date.
- ``conditional``: the ``*_other`` fields when the value OTHER is chosen; the legal ground and
  explanation for illegal content; the contractual ground and explanation for incompatible
  content.
- ``puid_format``: letters, digits, ``-`` and ``_`` only.
- ``language``: an upper-case two-letter ISO 639-1 code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from audit.statements import schema as s

__all__ = ["RULES", "Problem", "check_statement"]

Record = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One broken rule: the field, the rule's name, and what was expected and found."""

    field: str
    rule: str
    message: str


_REQUIRED = (
    "decision_ground",
    "content_type",
    "category",
    "content_date",
    "application_date",
    "decision_facts",
    "source_type",
    "automated_detection",
    "automated_decision",
    "puid",
    "territorial_scope",
)
_DECISIONS = ("decision_visibility", "decision_monetary", "decision_provision", "decision_account")
_ENUMS: dict[str, tuple[str, ...]] = {
    "decision_visibility": s.DECISION_VISIBILITIES,
    "decision_monetary": s.DECISION_MONETARIES,
    "decision_provision": s.DECISION_PROVISIONS,
    "decision_account": s.DECISION_ACCOUNTS,
    "account_type": s.ACCOUNT_TYPES,
    "decision_ground": s.DECISION_GROUNDS,
    "incompatible_content_illegal": s.YES_NO,
    "content_type": s.CONTENT_TYPES,
    "category": s.CATEGORIES,
    "category_addition": s.CATEGORIES,
    "source_type": s.SOURCE_TYPES,
    "automated_detection": s.AUTOMATED_DETECTIONS,
    "automated_decision": s.AUTOMATED_DECISIONS,
    "territorial_scope": tuple(sorted(s.EEA_COUNTRIES)),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PUID = re.compile(r"^[A-Za-z0-9_-]+$")
_LANGUAGE = re.compile(r"^[A-Z]{2}$")
_CONDITIONAL = (
    ("decision_visibility_other", "decision_visibility", "DECISION_VISIBILITY_OTHER"),
    ("decision_monetary_other", "decision_monetary", "DECISION_MONETARY_OTHER"),
    ("content_type_other", "content_type", "CONTENT_TYPE_OTHER"),
    ("illegal_content_legal_ground", "decision_ground", "DECISION_GROUND_ILLEGAL_CONTENT"),
    ("illegal_content_explanation", "decision_ground", "DECISION_GROUND_ILLEGAL_CONTENT"),
    ("incompatible_content_ground", "decision_ground", "DECISION_GROUND_INCOMPATIBLE_CONTENT"),
    (
        "incompatible_content_explanation",
        "decision_ground",
        "DECISION_GROUND_INCOMPATIBLE_CONTENT",
    ),
)


def _empty(value: object) -> bool:
    return value is None or value == "" or value == []


def _values(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _required(record: Record) -> Iterator[Problem]:
    for name in _REQUIRED:
        if _empty(record.get(name)):
            yield Problem(name, "required", f"'{name}' is required")
    if all(_empty(record.get(name)) for name in _DECISIONS):
        yield Problem(
            "decision_visibility",
            "required",
            "one of " + ", ".join(f"'{n}'" for n in _DECISIONS) + " is required",
        )


def _enumerations(record: Record) -> Iterator[Problem]:
    for name, allowed in _ENUMS.items():
        value = record.get(name)
        if _empty(value):
            continue
        if name in s.ARRAY_FIELDS and not isinstance(value, list | tuple):
            yield Problem(name, "enumeration", f"'{name}' must be an array (got {value!r})")
            continue
        for item in _values(value):
            if item not in allowed:
                shown = ", ".join(allowed[:4]) + (", ..." if len(allowed) > 4 else "")
                yield Problem(
                    name, "enumeration", f"'{name}' must be one of {shown} (got {item!r})"
                )


def _lengths(record: Record) -> Iterator[Problem]:
    for name, limit in s.MAX_LENGTHS.items():
        value = record.get(name)
        if isinstance(value, str) and len(value) > limit:
            yield Problem(
                name, "length", f"'{name}' must be at most {limit} characters (got {len(value)})"
            )


def parse_date(value: object) -> date | None:
    """A ``YYYY-MM-DD`` date, or None when the text is not one."""
    if not isinstance(value, str) or not _DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _dates(record: Record) -> Iterator[Problem]:
    for name in s.DATE_FIELDS:
        value = record.get(name)
        if not _empty(value) and parse_date(value) is None:
            yield Problem(
                name, "date_format", f"'{name}' must be a date YYYY-MM-DD (got {value!r})"
            )


def _date_ranges(record: Record) -> Iterator[Problem]:
    content, applied = (
        parse_date(record.get("content_date")),
        parse_date(record.get("application_date")),
    )
    if content is not None and content < date(2000, 1, 1):
        yield Problem(
            "content_date",
            "date_range",
            f"'content_date' must be on or after 2000-01-01 (got {content.isoformat()!r})",
        )
    if applied is not None and applied < date(2020, 1, 1):
        yield Problem(
            "application_date",
            "date_range",
            f"'application_date' must be on or after 2020-01-01 (got {applied.isoformat()!r})",
        )
    for name in s.DATE_FIELDS[2:]:
        end = parse_date(record.get(name))
        if end is not None and applied is not None and end < applied:
            yield Problem(
                name,
                "date_range",
                f"'{name}' must be on or after the application_date {applied.isoformat()} "
                f"(got {end.isoformat()!r})",
            )


def _conditionals(record: Record) -> Iterator[Problem]:
    for name, field, value in _CONDITIONAL:
        if value in _values(record.get(field)) and _empty(record.get(name)):
            yield Problem(name, "conditional", f"'{name}' is required when '{field}' is {value}")


def _puid(record: Record) -> Iterator[Problem]:
    puid = record.get("puid")
    if isinstance(puid, str) and puid and not _PUID.match(puid):
        yield Problem(
            "puid",
            "puid_format",
            f"'puid' may hold only letters, digits, '-' and '_' (got {puid!r})",
        )


def _language(record: Record) -> Iterator[Problem]:
    language = record.get("content_language")
    if not _empty(language) and not (isinstance(language, str) and _LANGUAGE.match(language)):
        yield Problem(
            "content_language",
            "language",
            f"'content_language' must be an upper-case ISO 639-1 code such as EN "
            f"(got {language!r})",
        )


RULES: dict[str, Callable[[Record], Iterator[Problem]]] = {
    "required": _required,
    "enumeration": _enumerations,
    "length": _lengths,
    "date_format": _dates,
    "date_range": _date_ranges,
    "conditional": _conditionals,
    "puid_format": _puid,
    "language": _language,
}


def check_statement(record: Record, rules: tuple[str, ...] | None = None) -> list[Problem]:
    """Every submission rule the record breaks (``rules`` chooses some by name)."""
    chosen = rules if rules is not None else tuple(RULES)
    return [problem for name in chosen for problem in RULES[name](record)]
