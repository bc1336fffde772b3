"""Renderers: a :class:`~audit.scorecard.Scorecard` in, files out.

Each format is a function registered in :data:`RENDERERS`. HTML and Markdown come from jinja2
templates (autoescape, StrictUndefined; a folder given with ``--templates`` overrides the bundled
ones file by file). Platform strings are data, never markup:

* every value a template prints passes through :func:`inert` (bidi controls, C0/C1 controls,
  lone surrogates and non-characters shown as ``<U+202E>``), then HTML escaping;
* XML (JUnit) gets the same :func:`inert` text, escaped by ElementTree;
* Markdown prose is backslash-escaped and platform strings go into code spans;
* CSV cells never start with a formula character;
* JSON keeps the data exact but writes invisible or direction-changing characters as ``\\uXXXX``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from audit.charts import clock_text, page_context, rate_axis, rate_bar, trend_chart
from audit.compare import Comparison, RunDiff, Trend
from audit.errors import InputError
from audit.numbers import format_percent
from audit.resources import templates_dir
from audit.scorecard import SCHEMA_VERSION, Scorecard

__all__ = [
    "FORMATS",
    "RENDERERS",
    "SCHEMA_ID",
    "inert",
    "json_text",
    "render_formats",
    "render_page",
    "render_view",
    "scorecard_schema",
]

SCHEMA_ID = f"urn:platform-audit:scorecard:{SCHEMA_VERSION}"

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
        _indented(data, 0, parts)
        text = "".join(parts)
    except TypeError:  # a type _indented does not know: the standard encoder decides
        text = json.dumps(data, indent=2, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def _json_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


_JSON_SCALARS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring,
    int: int.__repr__,
    float: _json_float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _: "null",
}


def _indented(value: object, level: int, parts: list[str]) -> None:
    """``json.dumps(value, indent=2, ensure_ascii=False)``, appended to ``parts``, character
    for character, for JSON data of exact types (dict with str keys, list, str, int, float,
    bool, None); raises TypeError on anything else. Several times faster: with ``indent`` the
    standard library falls back to its pure-Python encoder, one generator per level."""
    scalar = _JSON_SCALARS.get(type(value))
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
        encode = _JSON_SCALARS.get(type(item))
        if encode is not None:
            parts.append(head + encode(item))
        else:
            parts.append(head)
            _indented(item, level + 1, parts)
        separator = "," + inner
    parts.append("\n" + "  " * level + closing)


# Markdown ---------------------------------------------------------------------------------
# "(" and ")" make a link only after "]", which is escaped: left as written, for readable text
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#+!|~&])")
# a leading "-" or "=" (a list item, a heading's rule) and "1." or "1)" only where it opens an
# ordered list (followed by a space or the end): "1.0.0" stays as written, never "1\.0.0"
_MD_LINE_START = re.compile(r"^(\s*)(?:([-=])|(\d+)([.)])(?=\s|$))")


def _md_prose(text: object) -> str:
    """Prose for Markdown: every character with Markdown meaning backslash-escaped."""
    value = " ".join(inert(text).splitlines()).strip()
    value = _MD_SPECIAL.sub(r"\\\1", value)
    return _MD_LINE_START.sub(_escape_marker, value)


def _escape_marker(match: re.Match[str]) -> str:
    """A leading list or heading marker (``-``, ``=``, ``1.``) made literal."""
    indent, bullet, number, dot = match.groups()
    return f"{indent}\\{bullet}" if bullet else f"{indent}{number}\\{dot}"


def _md_code(text: object, cell: bool = False) -> str:
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


# Filters shared by the HTML and Markdown templates -------------------------------------------
VERDICT_LABELS = {
    "COMPLIANT": "Compliant",
    "NON_COMPLIANT": "Non-compliant",
    "INCONCLUSIVE": "Inconclusive",
    "NOT_MEASURED": "Not measured",
}
OUTCOME_LABELS = {
    "removed_in_time": "removed in time",
    "rejected_at_submission": "refused at submission",
    "removed_late": "removed late",
    "survived": "not removed",
    "inconclusive": "inconclusive",
    "pending": "still watched",
    "kept": "kept (control)",
    "over_removed": "over-removed (control)",
}


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def _bounds(lower: float | None, upper: float | None) -> str:
    """Verdict bounds as a range, or a dash when nothing was measured."""
    return "–" if lower is None or upper is None else f"{_pct(lower)} – {_pct(upper)}"


def _timestamp(value: str | None) -> Markup:
    """An ISO 8601 UTC stamp as a <time> element that may wrap between date and time."""
    if not value:
        return Markup("–")
    date, _, rest = inert(value).partition("T")
    # Markup('<time datetime="{0}">{1}<wbr> {2}</time>').format(value, date, rest), at less
    # than half its cost (it runs four times per probe); every value passes through escape()
    html = f'<time datetime="{escape(value)}">{escape(date)}<wbr> {escape(rest)}</time>'
    return Markup(html)  # noqa: S704


def _finalize(value: object) -> object:
    return value if isinstance(value, Markup) or value is None else inert(value)


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
        finalize=_finalize,
    )
    env.filters.update(
        inert=inert,
        md=_md_prose,
        mdcode=_md_code,
        pct=_pct,
        bounds=_bounds,
        ts=_timestamp,
        clock=clock_text,
        css_text=lambda v: re.sub(r"[^A-Za-z0-9 ._:-]", "", str(v)),
        when=_label,
        signed=lambda v: "–" if v is None else f"{v * 100:+.1f} points",
        verdict_label=lambda v: VERDICT_LABELS.get(str(v), str(v)),
        outcome_label=lambda v: OUTCOME_LABELS.get(str(v), str(v)),
    )
    return env


def render_page(name: str, extra: Path | None = None, **context: Any) -> str:
    """Render one template with ``context``; a missing template is an input error, not a
    silent fallback."""
    try:
        return _environment(extra).get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise InputError(f"template {exc.name} not found", source=extra) from None


def render_html(card: Scorecard, extra: Path | None = None) -> str:
    return render_page("scorecard.html.j2", extra, card=card, page=page_context(card))


def render_markdown(card: Scorecard, extra: Path | None = None) -> str:
    return render_page("scorecard.md.j2", extra, card=card, page=page_context(card))


def render_json(card: Scorecard, extra: Path | None = None) -> str:
    del extra
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


# JUnit ------------------------------------------------------------------------------------
def _case_message(card: Scorecard, index: int) -> str:
    c = card.criteria[index]
    rate = c.removal_in_deadline
    bounds = (
        f"one-sided {format_percent(c.confidence, 0)} bounds {_pct(c.one_sided_lower)} to "
        f"{_pct(c.one_sided_upper)}"
        if c.one_sided_lower is not None and c.one_sided_upper is not None
        else "no bounds"
    )
    return inert(
        f"{c.verdict}: {rate.successes}/{rate.n} removed within {c.deadline_text} "
        f"({_pct(rate.rate)}; {bounds}; required {_pct(c.threshold)})"
    )


def _junit_properties(card: Scorecard) -> ET.Element:
    props = ET.Element("properties")
    for name, value in (
        ("run_id", card.run_id),
        ("plan", card.plan_name),
        ("target", card.target["name"]),
        ("pack", f"{card.pack['id']} {card.pack['version']}"),
        ("overall_verdict", str(card.overall_verdict)),
        ("standing", str(card.standing)),
        ("exit_code", str(card.exit_code)),
        ("time_scale", f"{card.time_scale:g}"),
        ("period_start_utc", card.period_start_utc or ""),
        ("period_end_utc", card.period_end_utc or ""),
    ):
        ET.SubElement(props, "property", name=name, value=inert(value))
    return props


def render_junit(card: Scorecard, extra: Path | None = None) -> str:
    """One test case per criterion: failure for NON_COMPLIANT or an over-removal finding,
    skipped for INCONCLUSIVE, error for NOT_MEASURED; a scorecard that is not final names its
    standing in the suite's name and properties."""
    del extra
    verdicts = [str(c.verdict) for c in card.criteria]
    standing = "" if card.standing == "FINAL" else f" [{card.standing}]"
    suite = ET.Element(
        "testsuite",
        name=inert(f"platform-audit {card.pack['id']} on {card.target['name']}{standing}"),
        tests=str(len(verdicts)),
        failures=str(sum(1 for c in card.criteria if c.fails)),
        errors=str(verdicts.count("NOT_MEASURED")),
        skipped=str(verdicts.count("INCONCLUSIVE")),
        timestamp=(card.period_start_utc or "")[:19],
    )
    suite.append(_junit_properties(card))
    for index, c in enumerate(card.criteria):
        case = ET.SubElement(
            suite, "testcase", classname=inert(card.pack["id"]), name=inert(f"{c.id} {c.title}")
        )
        message = _case_message(card, index)
        reason = inert(f"{c.verdict_reason} {c.sensitivity} {c.over_removal_reason}")
        if c.verdict == "NON_COMPLIANT":
            ET.SubElement(case, "failure", message=message, type="NON_COMPLIANT").text = reason
        elif c.over_removal_verdict == "EXCESSIVE":
            over = inert(f"OVER_REMOVAL: {c.over_removal_reason}")
            ET.SubElement(case, "failure", message=over, type="OVER_REMOVAL").text = reason
        elif c.verdict == "INCONCLUSIVE":
            ET.SubElement(case, "skipped", message=message)
        elif c.verdict == "NOT_MEASURED":
            ET.SubElement(case, "error", message=message, type="NOT_MEASURED").text = reason
        ET.SubElement(case, "system-out").text = f"{message}\n{reason}"
    suites = ET.Element(
        "testsuites",
        name="platform-audit",
        tests=suite.get("tests", "0"),
        failures=suite.get("failures", "0"),
        errors=suite.get("errors", "0"),
        skipped=suite.get("skipped", "0"),
    )
    suites.append(suite)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


# CSV --------------------------------------------------------------------------------------
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


def render_csv(card: Scorecard, extra: Path | None = None) -> str:
    del extra
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


# Comparison, trend and diff views ----------------------------------------------------------------
VIEW_FORMATS = ("html", "md", "json")


def _label(stamp: str | None) -> str:
    return "–" if not stamp else stamp[:16].replace("T", " ")


def comparison_context(comparison: Comparison) -> dict[str, Any]:
    cells = [cell for c in comparison.criteria for cell in c.cells]
    values = [v for cell in cells for v in (cell.lower, cell.rate, cell.threshold)]
    axis = rate_axis(values, width=240)
    bars = {
        (c.criterion_id, cell.run_id): rate_bar(
            axis, cell.rate, cell.lower, cell.upper, c.threshold
        )
        for c in comparison.criteria
        for cell in c.cells
    }
    return {"view": comparison, "axis": axis, "bars": bars}


def trend_context(trend: Trend) -> dict[str, Any]:
    charts = {
        s.criterion_id: trend_chart(
            [
                (p.rate, p.lower, p.upper, str(p.verdict), _label(p.period_start_utc))
                for p in s.points
            ],
            s.threshold,
        )
        for s in trend.series
    }
    return {"view": trend, "trend_charts": charts}


def render_view(view: Comparison | Trend | RunDiff, fmt: str, extra: Path | None = None) -> str:
    """A comparison, trend or diff as ``html``, ``md`` or ``json``."""
    if fmt == "json":
        return json_text(view.model_dump(mode="json"))
    if fmt not in VIEW_FORMATS or (fmt == "html" and isinstance(view, RunDiff)):
        raise InputError(f"--format must be among {', '.join(VIEW_FORMATS)} (got {fmt})")
    if isinstance(view, Comparison):
        context = comparison_context(view)
    elif isinstance(view, Trend):
        context = trend_context(view)
    else:
        context = {"view": view}
    return render_page(f"{view.kind}.{fmt}.j2", extra, **context)


Renderer = Callable[[Scorecard, Path | None], str]
RENDERERS: dict[str, tuple[str, Renderer]] = {
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
        raise InputError(f"--format must be among {', '.join(FORMATS)} (got {', '.join(unknown)})")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        filename, renderer = RENDERERS[fmt]
        path = out_dir / filename
        path.write_text(renderer(card, templates), encoding="utf-8", newline="")
        written.append(path)
    return written
