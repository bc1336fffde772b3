"""The jinja2 environment the scorecard and view templates render in.

Autoescape, StrictUndefined, and a folder given with ``--templates`` overriding the bundled
templates file by file (a missing template is an input error, never a silent fallback). Every
value a template prints passes through :func:`~audit.report.escape.inert` first, the
placeholders of translated messages too; :func:`environment` installs the Babel catalog of the
page's language through jinja2's i18n extension, and the filters that format numbers, times
and the model's names in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from audit.errors import InputError
from audit.i18n import Language, language
from audit.report.escape import inert, md_code, md_prose
from audit.report.words import OUTCOME_LABELS, WORDS
from audit.resources import templates_dir
from audit.scorecard import NOT_DELIVERED
from audit.scorecard_text import VERDICT_LABELS, code, evasion_text, reason_text, variant_text
from audit.scorecard_text_annex import section_filters

__all__ = ["environment", "minute_label", "render_page"]

_ENGLISH = language("en")


def _word(lang: Language, value: object) -> str:
    """A value of the model in words; a modality's group of media not shown delivered too."""
    text = str(value)
    modality, bracket, rest = text.partition(" (")
    if bracket and rest == f"{NOT_DELIVERED})" and modality in WORDS:
        return f"{lang.gettext(WORDS[modality])} ({lang.gettext(NOT_DELIVERED)})"
    return lang.gettext(WORDS[text]) if text in WORDS else text


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


def minute_label(stamp: str | None) -> str:
    """An ISO 8601 UTC stamp to the minute, as tables and charts label a run."""
    return "–" if not stamp else stamp[:16].replace("T", " ")


def environment(extra: Path | None, lang: Language = _ENGLISH) -> jinja2.Environment:
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
        md=md_prose,
        mdcode=md_code,
        css_text=lambda v: re.sub(r"[^\w .:/-]", "", str(v)),  # letters of any script
        when=minute_label,
        signed=lambda v: "–" if v is None else f"{v * 100:+.1f} points",
    )
    _install(env, lang)
    return env


def render_page(name: str, extra: Path | None = None, lang: str = "en", **context: Any) -> str:
    """Render one template with ``context`` in language ``lang``; a missing template is an
    input error, not a silent fallback."""
    try:
        return environment(extra, language(lang)).get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise InputError(f"template {exc.name} not found", source=extra) from None
