"""The Markdown scorecard: ``templates/scorecard.md.j2`` over the page view model, prose
backslash-escaped and platform strings in code spans."""

from __future__ import annotations

from pathlib import Path

from audit.i18n import language
from audit.report.page import page_context
from audit.report.renderer import TextRenderer
from audit.report.templating import render_page
from audit.scorecard import Scorecard

__all__ = ["RENDERER", "render_markdown"]


def render_markdown(card: Scorecard, extra: Path | None = None, lang: str = "en") -> str:
    page = page_context(card, language(lang))
    return render_page("scorecard.md.j2", extra, lang, card=card, page=page)


RENDERER = TextRenderer("md", "scorecard.md", render_markdown)
