"""The JSON scorecard: the model's data, exact, in every language the same; and the JSON
Schema it follows (``schemas/scorecard.schema.json``), versioned by ``SCHEMA_VERSION``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.report.escape import json_text
from audit.report.renderer import TextRenderer
from audit.scorecard import SCHEMA_VERSION, Scorecard

__all__ = ["RENDERER", "SCHEMA_ID", "render_json", "scorecard_schema"]

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


RENDERER = TextRenderer("json", "scorecard.json", render_json)
