"""Reading statements of reasons from files: the daily dumps, API JSON and platform exports.

Accepted files (see docs/statements.md):

- a daily dump as published, ``sor-<platform>-<YYYY-MM-DD>-full.zip`` or ``-light.zip``: a zip
  of zipped CSV parts (``...-00000.csv.zip``), or of CSV parts directly; a CSV part alone too;
- JSON as the API returns or takes it: one statement object, a list of them,
  ``{"statements": [...]}`` (the bulk endpoint) or ``{"data": [...]}`` (a search page);
  JSON Lines (``.jsonl``) with one statement per line;
- a platform's own export in any of these shapes with the API's field names.

In CSV, array fields are JSON arrays (``["CONTENT_TYPE_TEXT"]``) or a single bare value, and
empty cells are absent values; the dumps' ``platform_uid`` column is the puid, and their dates
(``2025-07-01 00:00:00``) are read at day precision. Every row is returned with a label that
names its place (``sor-x-2025-07-01-full-00000.csv.zip/...csv, row 7``).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import InputError
from audit.statements import schema as s

__all__ = ["Row", "iter_rows", "normalise", "read_rows"]

csv.field_size_limit(1 << 24)


@dataclass(frozen=True)
class Row:
    """One record read from a file, with where it was found, or why it could not be read."""

    label: str
    record: dict[str, Any] | None
    error: str | None = None


def _cell(name: str, text: str) -> Any:
    text = text.strip()
    if text == "":
        return None
    if name in s.ARRAY_FIELDS:
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return text  # left for the enumeration rule to name
            return value if isinstance(value, list) else text
        return [text]
    return text


def _csv_rows(text: str, where: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return
    names = ["puid" if h.strip() == "platform_uid" else h.strip() for h in header]
    for number, cells in enumerate(reader, start=2):
        label = f"{where}, row {number}"
        if len(cells) != len(names):
            yield Row(label, None, f"has {len(cells)} cells, the header has {len(names)}")
            continue
        record = {n: _cell(n, c) for n, c in zip(names, cells, strict=True)}
        yield Row(label, {k: v for k, v in record.items() if v is not None})


def _zip_rows(data: bytes, where: str) -> Iterator[Row]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError(f"{where} is not a zip file") from None
    for member in sorted(archive.namelist()):
        inner = archive.read(member)
        if member.endswith(".zip"):
            yield from _zip_rows(inner, f"{where}/{member}")
        elif member.endswith(".csv"):
            yield from _csv_rows(_text(inner, f"{where}/{member}"), f"{where}/{member}")


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{where} is not UTF-8 text") from None


def _json_items(value: Any, where: str) -> list[Any]:
    if isinstance(value, dict):
        for key in ("statements", "data"):
            if isinstance(value.get(key), list):
                return list(value[key])
        return [value]
    if isinstance(value, list):
        return value
    raise InputError(f"{where} must hold a statement object or a list of them")


def _json_rows(text: str, where: str, lines: bool) -> Iterator[Row]:
    if lines:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Row(f"{where}, line {number}", None, f"is not JSON ({exc.msg})")
                continue
            yield _object_row(item, f"{where}, line {number}")
        return
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not JSON ({exc.msg}, line {exc.lineno})") from None
    for index, item in enumerate(_json_items(document, where), start=1):
        yield _object_row(item, f"{where}, statement {index}")


def _object_row(item: Any, label: str) -> Row:
    if not isinstance(item, dict):
        return Row(label, None, f"must be a JSON object (got {type(item).__name__})")
    return Row(label, dict(item))


def read_rows(path: Path) -> list[Row]:
    """Every record in ``path``, in file order; an unreadable file is an :class:`InputError`."""
    return list(iter_rows(path))


def iter_rows(path: Path) -> Iterator[Row]:
    """The records of ``path`` one by one (a daily dump can hold millions)."""
    where = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read statements file {path} ({exc.strerror})") from None
    name = path.name.lower()
    if name.endswith(".zip"):
        return _zip_rows(data, where)
    if name.endswith(".csv"):
        return _csv_rows(_text(data, where), where)
    if name.endswith((".json", ".jsonl", ".ndjson")):
        return _json_rows(_text(data, where), where, not name.endswith(".json"))
    raise InputError(
        f"statements file {path}: expected .zip or .csv (a daily dump or its part), "
        f".json or .jsonl (got {path.suffix or 'no extension'!r})"
    )


def normalise(record: dict[str, Any]) -> dict[str, Any]:
    """A dump row in the API's shapes: dates at day precision (``YYYY-MM-DD``)."""
    out = dict(record)
    for name in s.DATE_FIELDS:
        value = out.get(name)
        if isinstance(value, str) and len(value) > 10 and value[10] in " T":
            out[name] = value[:10]
    return out
