"""An answer's body as JSON: read once for every caller, and read again for an answer made
from it with another body."""

from __future__ import annotations

import dataclasses

from audit.http import Exchange


def _answer(body: bytes, truncated: bool = False) -> Exchange:
    return Exchange(200, {}, body, truncated, None, 0.0, 1.0, 1)


def test_the_body_is_parsed_once_and_again_for_another_body() -> None:
    answer = _answer(b'{"state": "visible"}')
    assert answer.json() == {"state": "visible"}
    assert answer.json() is answer.json()
    other = dataclasses.replace(answer, body=b'{"state": "removed"}')
    assert other.json() == {"state": "removed"}
    assert answer.json() == {"state": "visible"}
    assert dataclasses.replace(answer, truncated=True).json() is None
    assert other == dataclasses.replace(other)  # the parsed body is no part of the answer


def test_what_is_not_json_is_none() -> None:
    assert _answer(b"").json() is None
    assert _answer(b"<html>").json() is None
    assert _answer(b"\xff\xfe{").json() is None
    assert _answer(b"[" * 100_000).json() is None  # too deep
    assert _answer(b'{"a": 1}', truncated=True).json() is None
    assert _answer(b"null").json() is None
