"""Headless Chromium, which prints the PDF scorecard (:mod:`audit.report.pdf`) from its HTML.

The page is the HTML scorecard itself, so the PDF says exactly what the HTML says; its print
style sheet (``templates/_style.css.j2``, ``@media print`` and ``@page``) sets A4 pages, page
numbers in the footer and tables that are not cut through a row. Chromium runs without a
sandbox, GPU, first-run, background networking, component updates or sync, in a profile folder
of its own that is removed afterwards: nothing is fetched (the page's Content-Security-Policy
loads nothing either).

Chromium is the Debian package ``chromium``; without it ``--format pdf`` is refused before
anything is written (:class:`PdfUnavailable`, an input error: exit code 2). A Chromium that
fails or hangs while printing is a runtime failure (exit code 4).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from audit.errors import InputError, RuntimeFailure

__all__ = ["CHROMIUM_FLAGS", "PdfUnavailable", "chromium_path", "html_to_pdf", "require_chromium"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-pdf-header-footer",  # the page numbers come from the print style sheet
)
# seconds; the demo's scorecard (210 probes, 200 kB of HTML) printed in 4 s on a 2-core machine
PRINT_TIMEOUT = 180.0


class PdfUnavailable(InputError):
    """``--format pdf`` was asked for on a machine without Chromium."""

    def __init__(self) -> None:
        super().__init__(
            "--format pdf needs the chromium program, which is not installed; on Debian or "
            "Ubuntu: apt-get install chromium"
        )


def chromium_path() -> str | None:
    """The Chromium (or Chrome) executable on the PATH, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium executable; :class:`PdfUnavailable` when there is none."""
    found = chromium_path()
    if found is None:
        raise PdfUnavailable
    return found


def html_to_pdf(html: str, timeout: float = PRINT_TIMEOUT) -> bytes:
    """``html`` (a complete page that loads nothing) printed to PDF by headless Chromium."""
    executable = require_chromium()
    with tempfile.TemporaryDirectory(prefix="platform-audit-pdf-") as folder:
        work = Path(folder)
        page, out, profile = work / "scorecard.html", work / "scorecard.pdf", work / "profile"
        page.write_text(html, encoding="utf-8")
        command = [
            executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(  # noqa: S603 (the executable found on the PATH, fixed flags)
                command, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(
                f"Chromium did not print the PDF scorecard within {timeout:g} s"
            ) from None
        except OSError as exc:
            raise RuntimeFailure(f"Chromium could not be started to print the PDF: {exc}") from None
        if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeFailure(
                f"Chromium failed to print the PDF scorecard (exit code {done.returncode}): "
                f"{tail[0][:200]}"
            )
        return out.read_bytes()
