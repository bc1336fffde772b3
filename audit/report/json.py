"""The JSON scorecard: the model's data, exact, in every language the same; and the JSON
Schema it follows (``schemas/scorecard.schema.json``), versioned by ``SCHEMA_VERSION``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from audit.report.escape import JSON_SCALARS, indented, json_safe, json_text
from audit.report.renderer import TextRenderer
from audit.scorecard import SCHEMA_VERSION, ProbeEvidence, Scorecard
from audit.scorecard_probes import probe_data

__all__ = [
    "RENDERER",
    "SCHEMA_ID",
    "probe_slices",
    "render_json",
    "scorecard_schema",
    "with_probes",
]

SCHEMA_ID = f"urn:platform-audit:scorecard:{SCHEMA_VERSION}"


def render_json(card: Scorecard, extra: Path | None = None, lang: str = "en") -> str:
    """The scorecard's data, in every language the same (its prose is the model's English)."""
    del extra, lang
    return json_text(card.model_dump(mode="json"))


def scorecard_schema() -> dict[str, Any]:
    """The JSON Schema of :func:`render_json`'s output, with its versioned ``$id``."""
    schema = Scorecard.model_json_schema(mode="serialization")
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"platform-audit scorecard, schema version {SCHEMA_VERSION}",
        "description": (
            "A scorecard as written by `platform-audit report --format json`. Its "
            "`schema_version` field names the version of this schema it follows; see "
            "docs/scorecards.md for the versioning policy."
        ),
        **schema,
    }


SLICE = 1000  # probes rendered at once when scorecard.json and probes.csv are written
_PROBES_KEY = '\n  "probes": [],\n'  # the probes field of scorecard.json without its probes


def probe_slices(probes: Sequence[ProbeEvidence]) -> Iterator[list[dict[str, Any]]]:
    """The probes' evidence rows as data (``model_dump(mode="json")``), :data:`SLICE` at a
    time."""
    for start in range(0, len(probes), SLICE):
        yield probe_data(probes, start, start + SLICE)


def with_probes(card: Scorecard, probes: Sequence[ProbeEvidence]) -> Scorecard:
    """The scorecard listing only ``probes``."""
    return card.model_copy(update={"probes": list(probes)})


def write_json(card: Scorecard, path: Path) -> None:
    """:func:`render_json`'s text, written with a slice of probes rendered at a time: the rest
    of the scorecard is rendered with no probes, and each slice's items, indented one level
    deeper, go where its empty list stands."""
    head = render_json(with_probes(card, []))
    if not card.probes or head.count(_PROBES_KEY) != 1:
        path.write_text(render_json(card), encoding="utf-8", newline="")
        return
    before, after = head.split(_PROBES_KEY)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(before + '\n  "probes": [')
        for index, part in enumerate(probe_slices(card.probes)):
            out.write(("," if index else "") + "\n" + _probe_items(part))
        out.write("\n  ],\n" + after)


def _probe_items(part: list[dict[str, Any]]) -> str:
    """The items of a list of probes' data as scorecard.json writes them (two levels deep):
    :func:`json_text`'s text of each item, indented one level deeper."""
    try:
        return json_safe(",\n".join([_probe_item(data) for data in part]))
    except TypeError:  # a value of a type not written here: as json_text writes the list
        listed = json_text(part)  # "[\n  {...}\n]\n"
        return "  " + listed[len("[\n") : -len("\n]\n")].replace("\n", "\n  ")


_ITEM = "\n      "  # a key of a probe item, at its depth in scorecard.json


def _probe_item(data: dict[str, Any]) -> str:
    """One probe's data as :func:`json_text` writes it at the depth of scorecard.json's probe
    items, its scalar fields written without a call a level (before :func:`json_safe`)."""
    parts: list[str] = []
    separator = "    {" + _ITEM
    for key, value in data.items():
        encode = JSON_SCALARS.get(type(value))
        head = separator + encode_basestring(key) + ": "
        if encode is not None:
            parts.append(head + encode(value))
        else:
            parts.append(head)
            indented(value, 3, parts)
        separator = "," + _ITEM
    parts.append("\n    }")
    return "".join(parts)


RENDERER = TextRenderer("json", "scorecard.json", render_json, writer=write_json)
