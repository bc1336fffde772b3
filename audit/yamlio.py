"""Reading user YAML files and turning validation errors into one clear line.

A file is refused, with one line naming it, when it is too large, not UTF-8, not valid YAML (bad
dates and other values included), nested too deeply, or when its aliases expand to more than
:data:`MAX_EXPANDED_NODES` nodes or into themselves (a "billion laughs" file is a few hundred
bytes). Messages show user text with control, line-break and bidi characters escaped, so a key
or value can neither break the one-line message nor reorder a terminal's text.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from audit.errors import InputError

__all__ = ["MAX_INPUT_BYTES", "load_yaml_file", "printable", "validation_error"]

MAX_INPUT_BYTES = 5 * 1024 * 1024
MAX_EXPANDED_NODES = 1_000_000


def printable(text: str, limit: int | None = None) -> str:
    """Text safe for a one-line message: non-printable characters (control, line separators,
    bidi and other format characters) shown as escapes, and cut to ``limit`` characters."""
    if not text.isprintable():
        text = "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
        )
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


# What PyYAML's value constructors raise, besides YAMLError, on bad values of explicit tags.
_CONSTRUCTOR_ERRORS = (ValueError, OverflowError, TypeError, AttributeError, IndexError, KeyError)


class _AliasBomb(Exception):
    """The document's aliases expand too far, or into themselves."""


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int]) -> int:
    """How many nodes the document becomes once every alias is expanded (linear time)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise _AliasBomb("an alias refers to the node that contains it")
    active.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    size = 1 + sum(_expanded_size(child, memo, active) for child in children)
    active.discard(key)
    if size > MAX_EXPANDED_NODES:
        raise _AliasBomb(f"its aliases expand to more than {MAX_EXPANDED_NODES} nodes")
    memo[key] = size
    return size


# libyaml's loader when PyYAML was built with it (several times faster); same safe schema.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str) -> Any:
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _parse_or_refuse(text: str, path: Path, what: str) -> Any:
    """The document, or one InputError naming the file (and the line, when YAML says)."""
    try:
        return _parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        problem = printable(str(getattr(exc, "problem", None) or "invalid YAML"), 200)
        raise InputError(
            f"{what} is not valid YAML ({problem})", source=path, where=place
        ) from None
    except RecursionError:
        raise InputError(f"{what} is nested too deeply", source=path) from None
    except _CONSTRUCTOR_ERRORS as exc:  # 2024-02-30, or `!!timestamp x` (PyYAML crashes)
        problem = printable(str(exc), 200)
        raise InputError(f"{what} is not valid YAML (bad value: {problem})", source=path) from None
    except _AliasBomb as exc:
        raise InputError(f"{what} is refused: {exc}", source=path) from None


def load_yaml_file(path: Path, *, what: str) -> Any:
    """Parse a YAML file; every failure is an InputError naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise InputError(
                f"{what} is too large: {size} bytes (at most {MAX_INPUT_BYTES})", source=path
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} not found", source=path) from None
    except IsADirectoryError:
        raise InputError(f"{what} must be a file, found a folder", source=path) from None
    except OSError as exc:
        raise InputError(f"{what} cannot be read ({exc.strerror})", source=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} must be UTF-8 text (bad byte at offset {exc.start})", source=path
        ) from None
    data = _parse_or_refuse(text, path, what)
    if not isinstance(data, dict):
        raise InputError(
            f"{what} must be a YAML mapping at the top level (got {type(data).__name__})",
            source=path,
        )
    return data


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


def _shorten(value: Any, limit: int = 60) -> str:
    """A bounded repr: a huge or deeply shared value is never printed in full."""
    return printable(_REPR.repr(value), limit)


Context = Callable[[Any, tuple[int | str, ...]], tuple[str, int]]


def validation_error(
    exc: ValidationError, data: Any, source: Path, context: Context | None = None
) -> InputError:
    """The first validation error as one InputError: 'field' must ... (got value) in FILE, place.

    ``context`` turns a location into a place ("criterion VN-SUP-01") and how many leading parts of
    the location that place already names.
    """
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    where, used = context(data, loc) if context else ("", 0)
    field = ".".join(printable(str(part), 60) for part in loc[used:]) or "(top level)"
    kind = error["type"]
    message = printable(str(error["msg"]).removeprefix("Value error, "), 300)
    if kind == "missing":
        text = f"'{field}' is required but missing"
    elif kind == "extra_forbidden":
        text = f"'{field}' is not a known field"
    else:
        got = "" if "(got " in message else f" (got {_shorten(error.get('input'))})"
        text = f"'{field}' {message[:1].lower() + message[1:]}{got}"
    more = len(exc.errors()) - 1
    if more:
        where = f"{where}; {more} more problem{'s' if more > 1 else ''}".lstrip("; ")
    return InputError(text, source=source, where=printable(where, 120) or None)
