"""Fast paths of the renderers give exactly what the plain library calls give."""

from __future__ import annotations

import json
from enum import StrEnum

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from audit.report.escape import _JSON_UNSAFE, _UNSAFE, inert, json_text
from audit.report.templating import _timestamp


def _reference(data: object) -> str:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


json_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300)
@given(json_data)
def test_json_text_is_the_standard_encoder_output(data: object) -> None:
    assert json_text(data) == _reference(data)


class Colour(StrEnum):
    RED = "red"


def test_json_text_of_other_types_falls_back_to_the_standard_encoder() -> None:
    for data in ({"c": Colour.RED}, {"t": (1, 2)}, {"k": {1: "one"}}, {None: 1}):
        assert json_text(data) == _reference(data)


@settings(max_examples=200)
@given(st.text(min_size=1))
def test_timestamp_markup_is_the_formatted_markup(value: str) -> None:
    date, _, rest = inert(value).partition("T")
    expected = Markup('<time datetime="{0}">{1}<wbr> {2}</time>').format(value, date, rest)
    assert _timestamp(value) == expected


@settings(max_examples=300)
@given(st.text() | st.integers() | st.floats())
def test_inert_is_the_substitution(value: object) -> None:
    expected = _UNSAFE.sub(lambda m: f"<U+{ord(m.group()):04X}>", str(value))
    assert inert(value) == expected
