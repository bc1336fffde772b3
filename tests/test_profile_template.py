"""Profile templates, post ids, response matching and rate-limit reset headers: the pure parts."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.adapters.profile import decode_post_id, encode_post_id
from audit.adapters.profile_match import extract_text, first_match, matches
from audit.adapters.profile_model import StatusRule, When
from audit.adapters.profile_request import render_request
from audit.adapters.profile_template import Template, TemplateError, render_tree, tree_references
from audit.http import Exchange, parse_rate_limit_reset

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_placeholders_and_literal_braces() -> None:
    template = Template.parse("{{literal}} {vars.room_id} and {idempotency_key}}}")
    assert template.references == ("vars.room_id", "idempotency_key")
    values = {"vars.room_id": "!r:x", "idempotency_key": "k1"}
    assert template.render(values) == "{literal} !r:x and k1}"


@pytest.mark.parametrize("source", ["{probe text}", "{}", "{a.b.c}", "{1x}", "x { y", "}"])
def test_malformed_placeholders_are_refused(source: str) -> None:
    with pytest.raises(TemplateError):
        Template.parse(source)


def test_a_missing_value_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateError, match=r"\{vars.room_id\} has no value"):
        Template.parse("/rooms/{vars.room_id}").render({})


def test_header_values_cannot_carry_line_breaks() -> None:
    with pytest.raises(TemplateError, match="line breaks"):
        Template.parse("{vars.x}").render_header({"vars.x": "a\r\nX-Evil: 1"})


@given(st.text(min_size=1))
def test_path_values_are_encoded_whole(value: str) -> None:
    path = Template.parse("/rooms/{vars.room}/send/{idempotency_key}").render_path(
        {"vars.room": value, "idempotency_key": "k"}
    )
    parts = path.split("/")
    assert parts[:2] == ["", "rooms"] and parts[3:] == ["send", "k"]  # no segment added
    assert "?" not in path and "#" not in path
    assert unquote(parts[2]) == value


def test_render_tree_keeps_types_and_renders_keys() -> None:
    tree: dict[str, Any] = {"{vars.k}": ["{probe.text}", 3, True, None], "n": {"x": 1.5}}
    values = {"vars.k": "key", "probe.text": "hello {not a placeholder}"}
    assert render_tree(tree, values) == {
        "key": ["hello {not a placeholder}", 3, True, None],
        "n": {"x": 1.5},
    }
    assert sorted(tree_references(tree)) == ["probe.text", "vars.k"]


def test_render_request_query_and_form() -> None:
    from audit.adapters.profile_model import RequestSpec

    spec = RequestSpec.model_validate(
        {"method": "GET", "path": "/p?x=1", "query": {"key": "{idempotency_key}"}}
    )
    rendered = render_request(spec, {"idempotency_key": "a b&c"})
    assert rendered.path == "/p?x=1&key=a%20b%26c"


@given(
    st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True),
        st.text(min_size=1),
        min_size=1,
        max_size=3,
    )
)
def test_post_ids_round_trip(fields: dict[str, str]) -> None:
    post_id = encode_post_id(fields)
    assert decode_post_id(post_id, list(fields)) == fields
    if len(fields) == 1:
        assert post_id == next(iter(fields.values()))


def exchange(status: int | None, body: bytes = b"", error: str | None = None) -> Exchange:
    return Exchange(status, {}, body, False, error, NOW, NOW, 1)


def when(data: dict[str, Any]) -> When:
    return When.model_validate(data)


def test_field_tests() -> None:
    body = b'{"a": {"b": 1}, "flag": true, "s": "removed by mod", "empty": {}, "list": [1]}'
    answer = exchange(200, body)
    assert matches(when({"status": 200, "fields": {"a.b": {"equals": 1}}}), answer)
    assert not matches(when({"fields": {"a.b": {"equals": True}}}), answer)  # 1 is not true
    assert not matches(when({"fields": {"flag": {"equals": 1}}}), answer)
    assert matches(when({"fields": {"a.b": {"equals": 1.0}}}), answer)
    assert matches(when({"fields": {"s": {"matches": "^removed"}}}), answer)
    assert matches(when({"fields": {"empty": {"empty": True}, "list": {"empty": False}}}), answer)
    assert matches(when({"fields": {"nope": {"exists": False}}}), answer)
    assert matches(when({"fields": {"s": {"one_of": ["x", "removed by mod"]}}}), answer)
    assert matches(when({"status": ["2xx"]}), answer)
    assert not matches(when({"status": [404, "5xx"]}), answer)


def test_unusable_answers_match_no_rule() -> None:
    rules = [StatusRule.model_validate({"when": {"status": 404}, "result": "gone"})]
    assert first_match(rules, exchange(404)) is rules[0]
    assert first_match(rules, exchange(None, error="ConnectTimeout")) is None
    redirect = exchange(404, error="redirect refused")  # a fault is never read as an answer
    assert first_match(rules, redirect) is None
    garbage = exchange(200, b"<html>not json")
    assert not matches(when({"fields": {"id": {"exists": True}}}), garbage)


def test_extract_text_takes_strings_and_integers_only() -> None:
    body = {"id": 42, "s": "x", "f": 1.5, "b": True, "o": {}, "e": ""}
    assert extract_text("id", body) == "42"
    assert extract_text("s", body) == "x"
    assert [extract_text(k, body) for k in ("f", "b", "o", "e", "missing")] == [None] * 5


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 30.0),
        (str(NOW + 90), 90.0),
        ("2026-01-01T00:05:00.000000Z", 300.0),
        ("2026-01-01T00:00:10+00:00", 10.0),
        ("Thu, 01 Jan 2026 00:01:00 GMT", 60.0),
        ("2025-12-31T23:00:00Z", 0.0),  # in the past: retry now
        ("soon", None),
        (None, None),
        ("99999", 300.0),  # capped
    ],
)
def test_rate_limit_reset_header(value: str | None, seconds: float | None) -> None:
    assert parse_rate_limit_reset(value, NOW, 300.0) == seconds
