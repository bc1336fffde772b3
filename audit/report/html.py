"""The HTML scorecard: ``templates/scorecard.html.j2`` over the page view model, one
self-contained page (inline style and SVG charts, a Content-Security-Policy that loads
nothing)."""

from __future__ import annotations

from pathlib import Path

from audit.i18n import language
from audit.report.page import page_context
from audit.report.renderer import TextRenderer
from audit.report.templating import render_page
from audit.scorecard import Scorecard

__all__ = ["RENDERER", "render_html"]


def render_html(card: Scorecard, extra: Path | None = None, lang: str = "en") -> str:
    page = page_context(card, language(lang))
    return render_page("scorecard.html.j2", extra, lang, card=card, page=page)


RENDERER = TextRenderer("html", "scorecard.html", render_html)
