"""The PDF scorecard, printed by headless Chromium, read back with Poppler: A4 pages that are not
blank, numbered in the footer, with the same criteria, verdicts and methodology as the HTML.

Needs Debian's ``chromium`` and ``poppler-utils`` (pdftotext, pdftoppm, pdfinfo): without them
these tests are skipped with the install command (``.ci/run`` installs both, so CI runs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from audit.cli import main
from audit.errors import InputError
from audit.report.chromium import PdfUnavailable, chromium_path
from audit.report.registry import render_formats
from audit.scorecard import Scorecard
from audit.scorecard_text import VERDICT_LABELS
from audit.store import Store
from tests.scorecards import gold_plan, gold_scorecard, platform, run_on_virtual_clock

POPPLER = ("pdftotext", "pdftoppm", "pdfinfo")


def _require_tools() -> None:
    """Skip without Chromium or Poppler, naming the install; in CI (which installs them) fail."""
    missing = [
        p
        for p in ("chromium", *POPPLER)
        if (chromium_path() if p == "chromium" else shutil.which(p)) is None
    ]
    if missing:
        problem = f"{', '.join(missing)} not installed (apt-get install chromium poppler-utils)"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Scorecard:
    return gold_scorecard(tmp_path_factory.mktemp("gold"))


@pytest.fixture(scope="module")
def printed(card: Scorecard, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The gold scorecard as PDF, in English and in Vietnamese."""
    _require_tools()
    folders = {lang: tmp_path_factory.mktemp(f"pdf-{lang}") for lang in ("en", "vi")}
    return {
        lang: render_formats(card, ["pdf"], folder, lang=lang)[0]
        for lang, folder in folders.items()
    }


def _text(pdf: Path) -> str:
    done = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True)
    return done.stdout.decode("utf-8")


def _info(pdf: Path) -> dict[str, str]:
    done = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, check=True, text=True)
    pairs = (line.split(":", 1) for line in done.stdout.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def test_pdf_pages_are_a4_and_numbered(printed: dict[str, Path]) -> None:
    for lang, footer in (("en", "page {n} of {total}"), ("vi", "trang {n} / {total}")):
        info = _info(printed[lang])
        assert "A4" in info["Page size"], info["Page size"]
        total = int(info["Pages"])
        assert total >= 3  # summary, criteria, methodology and evidence each start a page
        text = _text(printed[lang])
        for n in (1, total):
            assert footer.format(n=n, total=total) in text, (lang, n)


def test_pdf_says_what_the_html_says(card: Scorecard, printed: dict[str, Path]) -> None:
    from audit.i18n import language

    for lang, method in (("en", "Methodology"), ("vi", "Phương pháp")):
        text = " ".join(_text(printed[lang]).split()).casefold()  # badges are set in capitals
        tongue = language(lang)
        for c in card.criteria:
            assert c.id.casefold() in text
            label = tongue.gettext(VERDICT_LABELS[str(c.verdict)])
            assert label.casefold() in text, (lang, c.id)
        assert method.casefold() in text
        assert card.run_id.casefold() in text
        for p in card.probes[:5]:  # the evidence appendix too (a long id wraps in its cell)
            assert p.probe_id[:8] in text


def test_pdf_pages_are_not_blank(printed: dict[str, Path], tmp_path: Path) -> None:
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "30",
            "-png",
            "-f",
            "1",
            "-l",
            "2",
            str(printed["vi"]),
            str(tmp_path / "p"),
        ],
        check=True,
    )
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) == 2
    for page in pages:
        with Image.open(page) as image:
            grey = image.convert("L")
            width, height = grey.size
            assert abs(width / height - 210 / 297) < 0.01  # A4 portrait
            dark = sum(grey.histogram()[:128])
            assert dark > 0.005 * width * height, f"{page.name} is (nearly) blank"


def test_pdf_without_chromium_is_refused_with_the_install_command(
    card: Scorecard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(InputError, match="apt-get install chromium") as raised:
        render_formats(card, ["html", "pdf"], tmp_path / "out")
    assert isinstance(raised.value, PdfUnavailable)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_report_format_pdf_without_chromium_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / "ws"
    store = Store(workspace / "audit.sqlite")
    run_id = run_on_virtual_clock(store, gold_plan(violating=4, controls=1), platform())
    store.close()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "--workspace",
                str(workspace),
                "--reports",
                str(tmp_path / "r"),
                "report",
                run_id,
                "--format",
                "pdf",
            ]
        )
    assert exited.value.code == 2
    assert "apt-get install chromium" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
