"""The PDF scorecard: the HTML scorecard printed to A4 by headless Chromium
(:mod:`audit.report.chromium`). Without Chromium the format is refused before anything is
written. Chromium stamps each PDF with the time it printed it, so an evidence bundle carries
the HTML, not the PDF."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.report.chromium import html_to_pdf, require_chromium
from audit.report.html import render_html
from audit.scorecard import Scorecard

__all__ = ["RENDERER", "PdfRenderer", "render_pdf"]


def render_pdf(card: Scorecard, extra: Path | None = None, lang: str = "en") -> bytes:
    """The HTML scorecard printed to PDF by headless Chromium."""
    return html_to_pdf(render_html(card, extra, lang))


@dataclass(frozen=True)
class PdfRenderer:
    name: str = "pdf"
    filename: str = "scorecard.pdf"
    text: bool = False

    def check(self) -> None:
        """:class:`~audit.report.chromium.PdfUnavailable` on a machine without Chromium."""
        require_chromium()

    def render(self, card: Scorecard, templates: Path | None, lang: str) -> bytes:
        return render_pdf(card, templates, lang)

    def write(self, card: Scorecard, templates: Path | None, lang: str, path: Path) -> None:
        path.write_bytes(self.render(card, templates, lang))


RENDERER = PdfRenderer()
