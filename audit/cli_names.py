"""Names the command-line help shows, spelt here so that defining the commands imports nothing
heavy: ``--help`` must not pay for the renderers, the statistics or the evidence bundle.

Each name is a copy of the one its module owns; ``tests/test_startup.py`` checks they agree.
"""

from __future__ import annotations

__all__ = ["DEFAULT_ARCHIVE", "FORMATS", "LANGUAGES", "TEXT_FORMATS", "VIEW_FORMATS"]

FORMATS = ("html", "md", "json", "junit", "csv", "pdf")  # audit.report.registry.FORMATS
TEXT_FORMATS = ("html", "md", "json", "junit", "csv")  # audit.report.registry.TEXT_FORMATS
LANGUAGES = ("en", "vi")  # audit.i18n.LANGUAGES
VIEW_FORMATS = ("html", "md", "json")  # audit.report.views.VIEW_FORMATS
DEFAULT_ARCHIVE = "evidence.tar.gz"  # audit.evidence.bundle.DEFAULT_ARCHIVE
