"""The HTML scorecards in a real browser: headless Chromium driven over the DevTools protocol.

Each page must load with no console error and no network request but the file itself, show its
summary and criterion cards, give a screenshot that is not blank and print to a PDF. A scorecard
full of hostile platform strings must run nothing and fetch nothing.

Needs Debian's ``chromium`` and the ``websockets`` package: without them the tests are skipped,
except under CI (the CI environment variable set), where they fail. Set SCREENSHOT_DIR to keep
the screenshots and PDF.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from PIL import Image, ImageStat

from audit.compare import compare_runs, trend_of
from audit.demo import demo_plan, sandbox_config
from audit.report.chromium import chromium_path as pdf_chromium_path
from audit.report.html import render_html
from audit.report.views import render_view
from audit.scorecard import Scorecard
from audit.store import Store
from audit.workspace import scorecard_for
from tests.scorecards import DAY, START, WEAK_RITUALS, gold_plan, platform, run_on_virtual_clock

try:
    from websockets.sync.client import ClientConnection, connect
except ImportError:  # pragma: no cover - depends on the environment
    connect = None  # type: ignore[assignment]

pytestmark = pytest.mark.slow


FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)


def chromium_path() -> str | None:
    return pdf_chromium_path()  # the PDF renderer's discovery: the same browser either way


@dataclass
class PageLog:
    """What happened while a page was open."""

    requests: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    log: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    exceptions: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        return (
            [t for level, t in self.console if level in ("error", "assert")]
            + [t for level, t in self.log if level == "error"]
            + self.exceptions
        )


class Browser:
    """One headless Chromium with one page, closed on exit."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._profile = Path(tempfile.mkdtemp(prefix="pa-chromium-"))
        self._process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()
        self._next_id = 0
        self._session = ""
        self.log = PageLog()

    def __enter__(self) -> Browser:
        try:
            self._connect()
        except BaseException:
            self.close()
            raise
        return self

    def _connect(self) -> None:
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        url = f"ws://127.0.0.1:{port}{path}"
        self._ws = self._stack.enter_context(connect(url, max_size=None, open_timeout=10))
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
        self._session = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log", "DOM"):
            self.call(f"{domain}.enable")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    # protocol ---------------------------------------------------------------------------
    def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session and not method.startswith("Target."):
            message["sessionId"] = self._session
        self._ws.send(json.dumps(message))
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def _receive(self, timeout: float | None = None) -> dict[str, Any]:
        assert self._ws is not None
        data: dict[str, Any] = json.loads(self._ws.recv(timeout=timeout or self.timeout))
        self._record(data)
        return data

    def _record(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            self.log.requests.append(params["request"]["url"])
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.log.console.append((params["type"], text))
        elif method == "Runtime.exceptionThrown":
            self.log.exceptions.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Log.entryAdded":
            self.log.log.append((params["entry"]["level"], params["entry"]["text"]))

    def _wait_for(self, method: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._receive(timeout=max(0.1, deadline - time.monotonic())).get("method") == method:
                return
        raise TimeoutError(f"no {method} within {self.timeout} s")

    # page -------------------------------------------------------------------------------
    def open(self, path: Path, width: int = 1200, height: int = 900) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.log = PageLog()
        self.call("Page.navigate", url=path.resolve().as_uri())
        self._wait_for("Page.loadEventFired")
        self.settle()

    def settle(self, quiet: float = 0.3) -> None:
        """Read events until none arrives for ``quiet`` seconds (late errors, requests)."""
        while True:
            try:
                self._receive(timeout=quiet)
            except TimeoutError:
                return

    def count(self, selector: str) -> int:
        root = self.call("DOM.getDocument", depth=0)["root"]["nodeId"]
        return len(self.call("DOM.querySelectorAll", nodeId=root, selector=selector)["nodeIds"])

    def text(self, selector: str) -> str:
        """The text of every element ``selector`` matches, joined (read from the DOM, not by a
        page script: the page's policy forbids scripts)."""
        root = self.call("DOM.getDocument", depth=-1)["root"]["nodeId"]
        parts = []
        for node in self.call("DOM.querySelectorAll", nodeId=root, selector=selector)["nodeIds"]:
            html = self.call("DOM.getOuterHTML", nodeId=node)["outerHTML"]
            parts.append(html)
        return _unescape_text("\n".join(parts))

    def boxes(self, selector: str) -> list[tuple[float, float]]:
        """(left, width) in CSS pixels of every element ``selector`` matches, as laid out
        (an element scrolled out of its container still has its place)."""
        root = self.call("DOM.getDocument", depth=-1)["root"]["nodeId"]
        found = []
        for node in self.call("DOM.querySelectorAll", nodeId=root, selector=selector)["nodeIds"]:
            quad = self.call("DOM.getBoxModel", nodeId=node)["model"]["border"]
            found.append((quad[0], quad[2] - quad[0]))
        return found

    def screenshot(self, media: str = "screen", full_page: bool = True) -> bytes:
        self.call("Emulation.setEmulatedMedia", media=media)
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": min(size["height"], 16000),
                "scale": 1,
            }
        data = self.call("Page.captureScreenshot", **params)["data"]
        self.call("Emulation.setEmulatedMedia", media="")
        return base64.b64decode(data)

    def pdf(self) -> bytes:
        data = self.call("Page.printToPDF", printBackground=True, preferCSSPageSize=True)["data"]
        return base64.b64decode(data)


def _chromium() -> str:
    executable = chromium_path()
    problem = (
        "chromium is not installed (apt-get install chromium)"
        if executable is None
        else "the websockets package is missing (pip install websockets)"
        if connect is None
        else None
    )
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    assert executable is not None
    return executable


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(_chromium()) as opened:
        yield opened


@pytest.fixture(scope="module")
def demo_card(tmp_path_factory: pytest.TempPathFactory) -> Scorecard:
    """The demo's plan and platform (60 + 10 probes a criterion, time compressed 3600x), run on
    the virtual clock."""
    store = Store(tmp_path_factory.mktemp("demo") / "audit.sqlite")
    plan = demo_plan("http://sandbox.test", seed=2024, violating=60, controls=10)
    run_id = run_on_virtual_clock(store, plan, sandbox_config())
    card = scorecard_for(store, run_id)
    store.close()
    return card


def _keep(name: str, data: bytes) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(data)


def _assert_not_blank(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width >= 800 and image.height >= 600
    stat = ImageStat.Stat(image.convert("L"))
    assert stat.stddev[0] > 20, "the screenshot is (nearly) uniform"
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 50, "too few colours: blank page?"
    return image


def _open(browser: Browser, path: Path) -> None:
    browser.open(path)
    assert browser.log.requests == [path.resolve().as_uri()], browser.log.requests
    assert browser.log.errors() == []


def test_demo_scorecard_loads_cleanly_and_shows_summary_and_cards(
    browser: Browser, demo_card: Scorecard, tmp_path: Path
) -> None:
    path = tmp_path / "scorecard.html"
    path.write_text(render_html(demo_card), encoding="utf-8")
    _open(browser, path)
    assert browser.count("#summary") == 1
    assert browser.count("#overall > .badge.big") == 1
    assert browser.count("article.card") == len(demo_card.criteria) == 3
    assert browser.count("article.card svg[role=img] title") >= 3 * 3
    assert browser.count("table.evidence tbody tr") == len(demo_card.probes)
    assert browser.count("script, img, iframe, object, embed, link") == 0
    screen = browser.screenshot()
    _keep("scorecard-screen.png", screen)
    image = _assert_not_blank(screen)
    assert image.height > 3000  # summary, three cards, methodology and the evidence appendix


def test_at_400_px_the_verdicts_stay_in_view_and_charts_keep_their_size(
    browser: Browser, demo_card: Scorecard, tmp_path: Path
) -> None:
    path = tmp_path / "scorecard.html"
    path.write_text(render_html(demo_card), encoding="utf-8")
    browser.open(path, width=400, height=800)
    _keep("scorecard-400px.png", browser.screenshot())
    verdicts = browser.boxes("#verdicts tbody td:last-child .badge")
    assert len(verdicts) == len(demo_card.criteria)
    assert all(left >= 0 and left + width <= 400 for left, width in verdicts), verdicts
    charts = browser.boxes("article.card figure > svg")
    assert charts
    # drawn at their own width, so their 11 px text is 11 px on screen
    assert all(width >= 400 for _, width in charts[:2]), charts


def test_vietnamese_scorecard_loads_cleanly_in_its_language(
    browser: Browser, demo_card: Scorecard, tmp_path: Path
) -> None:
    path = tmp_path / "scorecard.html"
    path.write_text(render_html(demo_card, None, "vi"), encoding="utf-8")
    _open(browser, path)
    assert browser.count("html[lang=vi]") == 1
    assert browser.count("article.card") == len(demo_card.criteria)
    assert "Kết luận chung" in browser.text("#overall")
    assert "thời hạn" in browser.text("#verdicts")
    screen = browser.screenshot()
    _keep("scorecard-vi-screen.png", screen)
    _assert_not_blank(screen)


def test_demo_scorecard_prints_to_pdf(
    browser: Browser, demo_card: Scorecard, tmp_path: Path
) -> None:
    path = tmp_path / "scorecard.html"
    path.write_text(render_html(demo_card), encoding="utf-8")
    _open(browser, path)
    printed = browser.screenshot(media="print")
    _keep("scorecard-print.png", printed)
    _assert_not_blank(printed)
    pdf = browser.pdf()
    _keep("scorecard.pdf", pdf)
    assert pdf.startswith(b"%PDF-")
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert pages >= 1 + len(demo_card.criteria)  # the summary, then a page per criterion
    assert browser.log.errors() == []


def test_hostile_scorecard_runs_and_fetches_nothing(
    browser: Browser, demo_card: Scorecard, tmp_path: Path
) -> None:
    bad = (
        '<script>console.error("ran")</script><img src="http://127.0.0.1:9/x" onerror="x()">'
        '"><svg onload=alert(1)><link rel=stylesheet href=//127.0.0.1:9/s.css>\u202e'
    )
    probes = [
        p.model_copy(update={"text": bad, "reason": bad, "post_id": bad})
        for p in demo_card.probes[:5]
    ]
    card = demo_card.model_copy(
        update={"probes": probes, "target": {**demo_card.target, "name": bad}, "failure": bad}
    )
    path = tmp_path / "hostile.html"
    path.write_text(render_html(card), encoding="utf-8")
    _open(browser, path)
    assert browser.count("script, img, link, svg[onload]") == 0
    assert bad.replace("\u202e", "<U+202E>") in browser.text("table.evidence td.text")


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Scorecard]:
    store = Store(tmp_path_factory.mktemp("views") / "audit.sqlite")
    runs = [
        run_on_virtual_clock(store, gold_plan("weekly"), platform(WEAK_RITUALS), START),
        run_on_virtual_clock(store, gold_plan("weekly"), platform(), START + 7 * DAY + 3600),
    ]
    cards = [scorecard_for(store, r) for r in runs]
    store.close()
    return cards


@pytest.mark.parametrize("kind", ["comparison", "trend"])
def test_comparison_and_trend_pages_load_cleanly(
    browser: Browser, small_runs: list[Scorecard], kind: str, tmp_path: Path
) -> None:
    view = trend_of(small_runs) if kind == "trend" else compare_runs(small_runs)
    path = tmp_path / f"{kind}.html"
    path.write_text(render_view(view, "html"), encoding="utf-8")
    _open(browser, path)
    assert browser.count("article.card") == 3
    screen = browser.screenshot()
    _keep(f"{kind}-screen.png", screen)
    _assert_not_blank(screen)


def _unescape_text(html: str) -> str:
    from html.parser import HTMLParser

    chunks: list[str] = []

    class _Text(HTMLParser):
        def handle_data(self, data: str) -> None:
            chunks.append(data)

    parser = _Text(convert_charrefs=True)
    parser.feed(html)
    parser.close()
    return "".join(chunks)
