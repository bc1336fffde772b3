"""Renderers: a :class:`~audit.scorecard.Scorecard` in, files out.

Each format is a function registered in :data:`RENDERERS`. HTML and Markdown come from jinja2
templates (autoescape, StrictUndefined; a folder given with ``--templates`` overrides the bundled
ones file by file). Platform strings are data: they are escaped in HTML and XML, neutralised in
Markdown and CSV.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import jinja2

from audit.errors import InputError
from audit.resources import templates_dir
from audit.scorecard import Scorecard

__all__ = ["FORMATS", "RENDERERS", "render_formats"]

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def inert(text: object) -> str:
    """Text with bidi overrides and control characters shown as code points, never acted on."""
    value = str(text)
    value = _BIDI.sub(lambda m: f"<U+{ord(m.group()):04X}>", value)
    return _CONTROL.sub(lambda m: f"<U+{ord(m.group()):04X}>", value)


def _md_cell(text: object) -> str:
    value = inert(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    value = re.sub(r"([`*_\[\]<>#!~])", r"\\\1", value)
    return value


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _environment(extra: Path | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if extra is not None:
        loaders.append(jinja2.FileSystemLoader(str(extra)))
    loaders.append(jinja2.FileSystemLoader(str(templates_dir())))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(["html", "html.j2", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["inert"] = inert
    env.filters["md"] = _md_cell
    env.filters["pct"] = _pct
    return env


def _template(name: str, card: Scorecard, extra: Path | None) -> str:
    try:
        template = _environment(extra).get_template(name)
    except jinja2.TemplateNotFound:
        raise InputError(f"template {name} not found", source=extra) from None
    from audit.charts import chart_context

    return template.render(card=card, charts=chart_context(card))


def render_html(card: Scorecard, extra: Path | None = None) -> str:
    return _template("scorecard.html.j2", card, extra)


def render_markdown(card: Scorecard, extra: Path | None = None) -> str:
    return _template("scorecard.md.j2", card, extra)


def render_json(card: Scorecard, extra: Path | None = None) -> str:
    del extra
    return json.dumps(card.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def render_junit(card: Scorecard, extra: Path | None = None) -> str:
    """One test case per criterion: failure for NON_COMPLIANT, skipped for INCONCLUSIVE,
    error for NOT_MEASURED."""
    del extra
    failures = sum(c.verdict == "NON_COMPLIANT" for c in card.criteria)
    skipped = sum(c.verdict == "INCONCLUSIVE" for c in card.criteria)
    errors = sum(c.verdict == "NOT_MEASURED" for c in card.criteria)
    suite = ET.Element(
        "testsuite",
        name=f"platform-audit {card.pack['id']} on {card.target['name']}",
        tests=str(len(card.criteria)),
        failures=str(failures),
        skipped=str(skipped),
        errors=str(errors),
        timestamp=card.period_start_utc or "",
    )
    for c in card.criteria:
        case = ET.SubElement(suite, "testcase", classname=str(card.pack["id"]), name=f"{c.id} {c.title}")
        rate = c.removal_in_deadline
        message = (
            f"{c.verdict}: {rate.successes}/{rate.n} removed within {c.deadline_text} "
            f"({_pct(rate.rate)}, {c.confidence:.0%} CI {_pct(rate.low)}–{_pct(rate.high)}; "
            f"threshold {_pct(c.threshold)})"
        )
        if c.verdict == "NON_COMPLIANT":
            ET.SubElement(case, "failure", message=message, type="NON_COMPLIANT").text = c.verdict_reason
        elif c.verdict == "INCONCLUSIVE":
            ET.SubElement(case, "skipped", message=message)
        elif c.verdict == "NOT_MEASURED":
            ET.SubElement(case, "error", message=message, type="NOT_MEASURED").text = c.verdict_reason
        ET.SubElement(case, "system-out").text = message
    suites = ET.Element("testsuites", name="platform-audit", tests=str(len(card.criteria)))
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


_CSV_FIELDS = (
    "probe_id", "criterion_id", "expectation", "template_id", "language", "modality", "variants",
    "post_id", "trigger", "submitted_utc", "clock_start_utc", "deadline_utc", "last_visible_utc",
    "first_down_utc", "looks", "outcome", "reason", "withdrawn_utc", "text",
)


def _csv_safe(value: object) -> str:
    text = inert(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_csv(card: Scorecard, extra: Path | None = None) -> str:
    del extra
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for probe in card.probes:
        data = probe.model_dump(mode="json")
        data["variants"] = "+".join(probe.variants)
        writer.writerow([_csv_safe("" if data[f] is None else data[f]) for f in _CSV_FIELDS])
    return out.getvalue()


RENDERERS: dict[str, tuple[str, Callable[[Scorecard, Path | None], str]]] = {
    "html": ("scorecard.html", render_html),
    "md": ("scorecard.md", render_markdown),
    "json": ("scorecard.json", render_json),
    "junit": ("junit.xml", render_junit),
    "csv": ("probes.csv", render_csv),
}
FORMATS = tuple(RENDERERS)


def render_formats(
    card: Scorecard, formats: list[str], out_dir: Path, templates: Path | None = None
) -> list[Path]:
    unknown = [f for f in formats if f not in RENDERERS]
    if unknown:
        raise InputError(
            f"--format must be among {', '.join(FORMATS)} (got {', '.join(unknown)})"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        filename, renderer = RENDERERS[fmt]
        path = out_dir / filename
        path.write_text(renderer(card, templates), encoding="utf-8")
        written.append(path)
    return written
