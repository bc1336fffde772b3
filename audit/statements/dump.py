"""Writing statements in the daily dumps' layout (the reference sandbox publishes one).

A dump is ``sor-<platform>-<YYYY-MM-DD>-<full|light>.zip`` holding zipped CSV parts
``sor-<platform>-<YYYY-MM-DD>-<full|light>-00000.csv.zip``, each holding one CSV file of the
same name without ``.zip``. Columns are :data:`~audit.statements.schema.DUMP_FULL_COLUMNS` (or
the light ones); array fields are JSON arrays, dates ``YYYY-MM-DD 00:00:00``, the puid is in
``platform_uid``. Imports only the standard library and the schema.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable
from typing import Any

from audit.statements import schema as s

__all__ = ["dump_csv", "dump_name", "dump_zip"]


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in s.ARRAY_FIELDS:
        return json.dumps(list(value) if isinstance(value, list | tuple) else [value])
    if name in s.DATE_FIELDS:
        return f"{value} 00:00:00"
    return str(value)


def dump_csv(records: Iterable[dict[str, Any]], light: bool = False) -> str:
    columns = s.DUMP_LIGHT_COLUMNS if light else s.DUMP_FULL_COLUMNS
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        row = {**record, "platform_uid": record.get("puid")}
        writer.writerow([_cell(c, row.get(c)) for c in columns])
    return out.getvalue()


def dump_name(platform: str, day: str, light: bool = False) -> str:
    return f"sor-{platform}-{day}-{'light' if light else 'full'}"


def dump_zip(
    records: Iterable[dict[str, Any]], platform: str, day: str, light: bool = False
) -> bytes:
    """One day's dump of ``records`` as a zip of one zipped CSV part."""
    stem = dump_name(platform, day, light)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as part:
        part.writestr(f"{stem}-00000.csv", dump_csv(records, light))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{stem}-00000.csv.zip", inner.getvalue())
    return outer.getvalue()
