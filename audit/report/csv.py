"""The CSV evidence table: every probe as a row of data, column names and values the same in
every language; a cell never starts with a formula character (a spreadsheet shows it as text)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from audit.report.escape import inert
from audit.report.json import probe_slices, with_probes
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


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a leading formula character is quoted with ``'``."""
    text = inert("" if value is None else value)
    return "'" + text if text.lstrip(" ").startswith(_FORMULA_START) else text


def render_csv(card: Scorecard, extra: Path | None = None, lang: str = "en") -> str:
    """Every probe as a row of data: column names and values are the same in every language."""
    del extra, lang
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    cards = {c.id: c for c in card.criteria}
    for probe in card.probes:
        data = dict(probe)  # the fields' values; every one written below is a str, int or None
        criterion = cards.get(probe.criterion_id)
        data["criterion_verdict"] = str(criterion.verdict) if criterion else ""
        data["over_removal_verdict"] = str(criterion.over_removal_verdict) if criterion else ""
        data["standing"] = str(card.standing)
        data["variants"] = "+".join(probe.variants)
        removal = probe.removal_after
        data["removal_after_s"] = (
            "" if removal is None or removal.seconds is None else f"{removal.seconds:.3f}"
        )
        writer.writerow([csv_cell(data[f]) for f in CSV_FIELDS])
    return out.getvalue()


def write_csv(card: Scorecard, path: Path) -> None:
    """:func:`render_csv`'s text, a slice of probes rendered at a time (the header once)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        if not card.probes:
            out.write(render_csv(card))
            return
        for index, part in enumerate(probe_slices(card.probes)):
            text = render_csv(with_probes(card, part))
            out.write(text if index == 0 else text.split("\r\n", 1)[1])


RENDERER = TextRenderer("csv", "probes.csv", render_csv, writer=write_csv)
