"""Platform strings as inert text, shared by every format: they are data, never markup.

* :func:`inert` shows bidi controls, C0/C1 controls, lone surrogates and non-characters as
  ``<U+202E>``: every value a template prints passes through it before HTML escaping, and
  JUnit's XML and CSV's cells get the same text;
* :func:`md_prose` backslash-escapes every character with Markdown meaning, and
  :func:`md_code` puts a platform string into a code span;
* :func:`json_text` keeps the data exact but writes invisible or direction-changing characters
  as ``\\uXXXX``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring
from typing import Any

__all__ = [
    "JSON_SCALARS",
    "indented",
    "inert",
    "json_safe",
    "json_text",
    "md_code",
    "md_prose",
]

_BIDI = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
_UNSAFE = re.compile(f"[{_BIDI}\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_JSON_UNSAFE = re.compile(f"[{_BIDI}\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def inert(text: object) -> str:
    """Text with bidi overrides and control characters shown as code points, never acted on."""
    value = str(text)
    if value.isascii() and value.isprintable():  # nothing to show: most ids, times and counts
        return value
    return _UNSAFE.sub(lambda m: f"<U+{ord(m.group()):04X}>", value)


def json_text(data: object) -> str:
    """Indented JSON, readable UTF-8, with invisible or reordering characters as escapes."""
    try:
        parts: list[str] = []
        indented(data, 0, parts)
        text = "".join(parts)
    except TypeError:  # a type indented does not know: the standard encoder decides
        text = json.dumps(data, indent=2, ensure_ascii=False)
    return json_safe(text) + "\n"


def json_safe(text: str) -> str:
    """JSON text with its invisible or reordering characters written as ``\\uXXXX``."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _json_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


JSON_SCALARS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring,
    int: int.__repr__,
    float: _json_float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _: "null",
}


def indented(value: object, level: int, parts: list[str]) -> None:
    """``json.dumps(value, indent=2, ensure_ascii=False)``, appended to ``parts``, character
    for character, for JSON data of exact types (dict with str keys, list, str, int, float,
    bool, None); raises TypeError on anything else. Several times faster: with ``indent`` the
    standard library falls back to its pure-Python encoder, one generator per level."""
    scalar = JSON_SCALARS.get(type(value))
    if scalar is not None:
        parts.append(scalar(value))
        return
    if type(value) is dict:
        items: Iterable[tuple[str, Any]] = value.items()
        opening, closing = "{", "}"
    elif type(value) is list:
        items = (("", item) for item in value)
        opening, closing = "[", "]"
    else:
        raise TypeError(f"not JSON data of an exact type: {type(value).__name__}")
    if not value:
        parts.append(opening + closing)
        return
    inner = "\n" + "  " * (level + 1)
    separator = opening + inner
    keyed = opening == "{"
    for key, item in items:
        if not keyed:
            head = separator
        elif type(key) is str:
            head = f"{separator}{encode_basestring(key)}: "
        else:
            raise TypeError(f"not a string key: {key!r}")
        encode = JSON_SCALARS.get(type(item))
        if encode is not None:
            parts.append(head + encode(item))
        else:
            parts.append(head)
            indented(item, level + 1, parts)
        separator = "," + inner
    parts.append("\n" + "  " * level + closing)


# Markdown ---------------------------------------------------------------------------------------
# "(" and ")" make a link only after "]", which is escaped: left as written, for readable text
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#+!|~&])")
# a leading "-" or "=" (a list item, a heading's rule) and "1." or "1)" only where it opens an
# ordered list (followed by a space or the end): "1.0.0" stays as written, never "1\.0.0"
_MD_LINE_START = re.compile(r"^(\s*)(?:([-=])|(\d+)([.)])(?=\s|$))")


def md_prose(text: object) -> str:
    """Prose for Markdown: every character with Markdown meaning backslash-escaped."""
    value = " ".join(inert(text).splitlines()).strip()
    value = _MD_SPECIAL.sub(r"\\\1", value)
    return _MD_LINE_START.sub(_escape_marker, value)


def _escape_marker(match: re.Match[str]) -> str:
    """A leading list or heading marker (``-``, ``=``, ``1.``) made literal."""
    indent, bullet, number, dot = match.groups()
    return f"{indent}\\{bullet}" if bullet else f"{indent}{number}\\{dot}"


def md_code(text: object, cell: bool = False) -> str:
    """A platform string as a Markdown code span: shown verbatim, never a link or HTML."""
    value = " ".join(inert(text).splitlines()).strip()
    if not value:
        return "–"
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    if value.startswith("`") or value.endswith("`"):
        value = f" {value} "
    if cell:
        value = value.replace("|", "\\|")
    return f"{fence}{value}{fence}"
