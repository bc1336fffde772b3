"""The CSV evidence table: every probe as a row of data, column names and values the same in
every language; a cell never starts with a formula character (a spreadsheet shows it as text)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from audit.report.escape import inert
from audit.report.json import probe_slices
from audit.report.renderer import TextRenderer
from audit.scorecard import Scorecard

__all__ = ["CSV_FIELDS", "RENDERER", "csv_cell", "render_csv"]

CSV_FIELDS = (
    "probe_id",
    "criterion_id",
    "expectation",
    "template_id",
    "language",
    "modality",
    "variants",
    "post_id",
    "trigger",
    "submitted_utc",
    "clock_start_utc",
    "deadline_utc",
    "last_visible_utc",
    "first_down_utc",
    "removal_after_s",
    "looks",
    "view",
    "view_disagreements",
    "outcome",
    "reason",
    "withdrawn_utc",
    "text",
    "criterion_verdict",
    "over_removal_verdict",
    "standing",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


_ASCII_FORMULA_START = "".join(c for c in _FORMULA_START if c.isascii() and c.isprintable())


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a leading formula character is quoted with ``'``."""
    if value is None:
        return ""
    text = value if type(value) is str else str(value)
    if text.isascii() and text.isprintable():  # most cells: inert leaves them as they are
        first = text.lstrip(" ")[:1]
        return "'" + text if first and first in _ASCII_FORMULA_START else text
    text = inert(text)
    return "'" + text if text.lstrip(" ").startswith(_FORMULA_START) else text


def render_csv(card: Scorecard, extra: Path | None = None, lang: str = "en") -> str:
    """Every probe as a row of data: column names and values are the same in every language."""
    del extra, lang
    return "".join(_csv_parts(card))


def _csv_parts(card: Scorecard) -> Iterator[str]:
    """The header, then the rows of :data:`~audit.report.json.SLICE` probes at a time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    verdicts = {c.id: (str(c.verdict), str(c.over_removal_verdict)) for c in card.criteria}
    standing = str(card.standing)
    for part in probe_slices(card.probes):
        for data in part:  # the fields' values; every one written below is a str, int or None
            verdict, over_removal = verdicts.get(data["criterion_id"], ("", ""))
            data["criterion_verdict"] = verdict
            data["over_removal_verdict"] = over_removal
            data["standing"] = standing
            data["variants"] = "+".join(data["variants"])
            removal = data["removal_after"]
            seconds = None if removal is None else removal["seconds"]
            data["removal_after_s"] = "" if seconds is None else f"{seconds:.3f}"
            writer.writerow([csv_cell(data[f]) for f in CSV_FIELDS])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def write_csv(card: Scorecard, path: Path) -> None:
    """:func:`render_csv`'s text, a slice of probes rendered at a time (the header once)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.writelines(_csv_parts(card))


RENDERER = TextRenderer("csv", "probes.csv", render_csv, writer=write_csv)
