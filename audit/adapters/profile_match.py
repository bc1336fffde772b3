"""Reading a platform's answer with a profile's rules: JMESPath extraction and matching.

Only JSON bodies are searched; a body that is not JSON makes every field test see ``null``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import jmespath
from jmespath.exceptions import JMESPathError

from audit.adapters.profile_model import FieldTest, When
from audit.http import Exchange

__all__ = [
    "check_expression",
    "extract_text",
    "first_match",
    "matches",
    "search",
]


class _Compiled(Protocol):
    def search(self, value: Any) -> Any: ...


@lru_cache(maxsize=1024)
def _compile(expression: str) -> _Compiled:
    compiled: _Compiled = jmespath.compile(expression)
    return compiled


def check_expression(expression: str) -> str | None:
    """None when ``expression`` is valid JMESPath, else why not."""
    try:
        _compile(expression)
    except JMESPathError as exc:
        return str(exc).splitlines()[0]
    return None


def search(expression: str, body: Any) -> Any:
    """The value at ``expression`` in a JSON body, or None."""
    if body is None:
        return None
    try:
        return _compile(expression).search(body)
    except JMESPathError:
        return None


def extract_text(expression: str, body: Any) -> str | None:
    """A string or integer value at ``expression`` as text; anything else is None."""
    value = search(expression, body)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return str(value)
    return None


def _status_ok(patterns: Sequence[int | str] | None, status: int) -> bool:
    if not patterns:
        return True
    for pattern in patterns:
        if isinstance(pattern, int) and pattern == status:
            return True
        if isinstance(pattern, str) and str(status)[0] == pattern[0]:
            return True
    return False


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, and 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _is_empty(value: Any) -> bool:
    return value is None or value in ("", [], {})


def _test(test: FieldTest, body: Any, expression: str) -> bool:
    value = search(expression, body) if body is not None else None
    op = test.op
    if op == "equals":
        return _same(value, test.equals)
    if op == "one_of":
        return any(_same(value, option) for option in test.one_of or [])
    if op == "exists":
        return (value is not None) is bool(test.exists)
    if op == "matches":
        return isinstance(value, str) and re.search(str(test.matches), value) is not None
    return _is_empty(value) is bool(test.empty)


def matches(when: When, exchange: Exchange) -> bool:
    if exchange.status is None or not _status_ok(when.status, exchange.status):
        return False
    body = exchange.json() if when.fields else None
    return all(_test(test, body, expression) for expression, test in when.fields.items())


class _HasWhen(Protocol):
    @property
    def when(self) -> When: ...


R = TypeVar("R", bound=_HasWhen)


def first_match(rules: Sequence[R], exchange: Exchange) -> R | None:
    """The first rule whose condition holds for a usable answer, or None."""
    if not exchange.ok:
        return None
    for rule in rules:
        if matches(rule.when, exchange):
            return rule
    return None
