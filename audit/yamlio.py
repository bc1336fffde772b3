"""Reading user YAML files and turning validation errors into one clear line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from audit.errors import InputError

__all__ = ["MAX_INPUT_BYTES", "load_yaml_file", "validation_error"]

MAX_INPUT_BYTES = 5 * 1024 * 1024


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
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"{what} is not valid YAML ({problem})", source=path, where=place) from None
    except RecursionError:
        raise InputError(f"{what} is nested too deeply", source=path) from None
    if not isinstance(data, dict):
        raise InputError(
            f"{what} must be a YAML mapping at the top level (got {type(data).__name__})",
            source=path,
        )
    return data


def _shorten(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    field = ".".join(str(part) for part in loc[used:]) or "(top level)"
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        text = f"'{field}' is required but missing"
    elif kind == "extra_forbidden":
        text = f"'{field}' is not a known field"
    else:
        got = "" if "(got " in message else f" (got {_shorten(error.get('input'))})"
        text = f"'{field}' {message[0].lower() + message[1:]}{got}"
    more = len(exc.errors()) - 1
    if more:
        where = f"{where}; {more} more problem{'s' if more > 1 else ''}".lstrip("; ")
    return InputError(text, source=source, where=where or None)
