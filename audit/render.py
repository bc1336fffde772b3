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
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from audit.charts import page_context, rate_axis, rate_bar, trend_chart
from audit.compare import Comparison, RunDiff, Trend
from audit.errors import InputError
from audit.i18n import N_, Language, language
from audit.resources import templates_dir
from audit.scorecard import NOT_DELIVERED, SCHEMA_VERSION, Scorecard
from audit.scorecard_text import VERDICT_LABELS, code, evasion_text, reason_text, variant_text
from audit.scorecard_text_annex import section_filters

__all__ = [
    "FORMATS",
    "RENDERERS",
    "SCHEMA_ID",
    "TEXT_FORMATS",
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
OUTCOME_LABELS = {
    "removed_in_time": N_("removed in time"),
    "rejected_at_submission": N_("refused at submission"),
    "removed_late": N_("removed late"),
    "survived": N_("not removed"),
    "inconclusive": N_("inconclusive"),
    "pending": N_("still watched"),
    "kept": N_("kept (control)"),
    "over_removed": N_("over-removed (control)"),
}
WORDS = {  # values of the model the scorecards name in words: triggers, expectations, groups
    "order": N_("order"),
    "notice": N_("notice"),
    "proactive": N_("proactive"),
    "violating": N_("violating"),
    "control": N_("control"),
    "text": N_("text"),
    "image": N_("image"),
    "speech": N_("speech"),
    "video": N_("video"),
    "language": N_("language"),
    "variant": N_("variant"),
    "modality": N_("modality"),
    "clean": N_("clean"),
    "complete": N_("complete"),
    "running": N_("running"),
    "failed": N_("failed"),
    "cancelled": N_("cancelled"),
    "sandbox": N_("sandbox"),
    "production": N_("production"),
    "puid": N_("puid"),
    "attributes": N_("attributes"),
}
_ENGLISH = language("en")


def _word(lang: Language, value: object) -> str:
    """A value of the model in words; a modality's group of media not shown delivered too."""
    text = str(value)
    modality, bracket, rest = text.partition(" (")
    if bracket and rest == f"{NOT_DELIVERED})" and modality in WORDS:
        return f"{lang.gettext(WORDS[modality])} ({lang.gettext(NOT_DELIVERED)})"
    return lang.gettext(WORDS[text]) if text in WORDS else text


def _pct(value: float | None, digits: int = 1) -> str:
    return _ENGLISH.pct(value, digits)


def _timestamp(value: str | None, lang: Language = _ENGLISH) -> Markup:
    """An ISO 8601 UTC stamp as a <time> element that may wrap between date and time."""
    if not value:
        return Markup("–")
    date, rest = lang.timestamp(inert(value))
    # Markup('<time datetime="{0}">{1}<wbr> {2}</time>').format(value, date, rest), at less
    # than half its cost (it runs four times per probe); every value passes through escape()
    html = f'<time datetime="{escape(value)}">{escape(date)}<wbr> {escape(rest)}</time>'
    return Markup(html)  # noqa: S704


def _stamp(value: str, lang: Language) -> str:
    """An ISO 8601 UTC stamp as text: as recorded in English, the locale's date and time
    elsewhere."""
    if lang.code == "en":
        return value
    return " ".join(lang.timestamp(value))


def _finalize(value: object) -> object:
    return value if isinstance(value, Markup) or value is None else inert(value)


def _inert_values(function: Callable[..., Any]) -> Callable[..., Any]:
    """A gettext callable of jinja2's i18n extension whose placeholders' values pass through
    :func:`inert` first, like every other value a template prints."""

    @jinja2.pass_context
    def translated(context: Any, *args: Any, **values: Any) -> Any:
        safe = {
            k: v if isinstance(v, int | float | Markup) else inert(v) for k, v in values.items()
        }
        return function(context, *args, **safe)

    return translated


def _install(env: jinja2.Environment, lang: Language) -> None:
    """Messages and figures in ``lang``: jinja2's i18n extension over the Babel catalog, and
    the filters that format numbers, times and the model's names."""
    env.install_gettext_translations(lang.translations, newstyle=True)  # type: ignore[attr-defined]
    for name in ("_", "gettext", "ngettext"):
        env.globals[name] = _inert_values(env.globals[name])  # type: ignore[arg-type]
    env.filters.update(
        pct=lang.pct,
        bounds=lambda lower, upper: (
            "–" if lower is None or upper is None else f"{lang.pct(lower)} – {lang.pct(upper)}"
        ),
        ts=lambda value: _timestamp(value, lang),
        stamp=lambda value: "–" if not value else _stamp(value, lang),
        clock=lang.clock,
        duration=lang.duration,
        number=lang.number,
        verdict_label=lambda v: lang.gettext(VERDICT_LABELS.get(str(v), str(v))),
        verdict_code=lambda v: code(lang, str(v)),
        outcome_label=lambda v: lang.gettext(OUTCOME_LABELS.get(str(v), str(v))),
        word=lambda v: _word(lang, v),
        reason=lambda v: reason_text(lang, str(v)) if v else v,
        evasion=lambda e: evasion_text(lang, e),
        variant=lambda label: variant_text(lang, str(label)),
    )
    env.filters.update(section_filters(lang))  # the annex, authority and statements sections


def _environment(extra: Path | None, lang: Language = _ENGLISH) -> jinja2.Environment:
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
        extensions=["jinja2.ext.i18n"],
    )
    env.filters.update(
        inert=inert,
        md=_md_prose,
        mdcode=_md_code,
        css_text=lambda v: re.sub(r"[^\w .:/-]", "", str(v)),  # letters of any script
        when=_label,
        signed=lambda v: "–" if v is None else f"{v * 100:+.1f} points",
    )
    _install(env, lang)
    return env


def render_page(name: str, extra: Path | None = None, lang: str = "en", **context: Any) -> str:
    """Render one template with ``context`` in language ``lang``; a missing template is an
    input error, not a silent fallback."""
    try:
        return _environment(extra, language(lang)).get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise InputError(f"template {exc.name} not found", source=extra) from None


def render_html(card: Scorecard, extra: Path | None = None, lang: str = "en") -> str:
    page = page_context(card, language(lang))
    return render_page("scorecard.html.j2", extra, lang, card=card, page=page)


def render_markdown(card: Scorecard, extra: Path | None = None, lang: str = "en") -> str:
    page = page_context(card, language(lang))
    return render_page("scorecard.md.j2", extra, lang, card=card, page=page)


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


# JUnit ------------------------------------------------------------------------------------
def render_junit(card: Scorecard, extra: Path | None = None, lang: str = "en") -> str:
    """One test case per criterion (see :mod:`audit.render_junit`)."""
    del extra
    from audit.render_junit import junit_xml

    return junit_xml(card, lang)


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


def render_pdf(card: Scorecard, extra: Path | None = None, lang: str = "en") -> bytes:
    """The HTML scorecard printed to PDF by headless Chromium (see :mod:`audit.pdf`)."""
    from audit.pdf import html_to_pdf

    return html_to_pdf(render_html(card, extra, lang))


Renderer = Callable[[Scorecard, Path | None, str], str | bytes]
RENDERERS: dict[str, tuple[str, Renderer]] = {
    "html": ("scorecard.html", render_html),
    "md": ("scorecard.md", render_markdown),
    "json": ("scorecard.json", render_json),
    "junit": ("junit.xml", render_junit),
    "csv": ("probes.csv", render_csv),
    "pdf": ("scorecard.pdf", render_pdf),
}
FORMATS = tuple(RENDERERS)
TEXT_FORMATS = tuple(f for f in FORMATS if f != "pdf")  # what an evidence bundle carries


def render_formats(
    card: Scorecard,
    formats: list[str],
    out_dir: Path,
    templates: Path | None = None,
    lang: str = "en",
) -> list[Path]:
    """Write ``formats`` of ``card`` into ``out_dir``, in language ``lang``."""
    unknown = [f for f in formats if f not in RENDERERS]
    if unknown:
        raise InputError(f"--format must be among {', '.join(FORMATS)} (got {', '.join(unknown)})")
    language(lang)  # an unknown language, or no Chromium for a PDF, fails before writing
    if "pdf" in formats:
        from audit.pdf import require_chromium

        require_chromium()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        filename, renderer = RENDERERS[fmt]
        path = out_dir / filename
        output = renderer(card, templates, lang)
        if isinstance(output, bytes):
            path.write_bytes(output)
        else:
            path.write_text(output, encoding="utf-8", newline="")
        written.append(path)
    return written
