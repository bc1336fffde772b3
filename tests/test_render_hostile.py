"""Hostile platform strings through every format come out inert.

A platform controls post ids, error messages (probe reasons) and, through a plan, target names;
probe texts are ours but are treated the same. Whatever they contain, the HTML must hold no
element or attribute the template did not write, the XML must be well-formed, no CSV cell may
start a formula, the Markdown must not smuggle raw HTML or links, and no output may carry a raw
bidi control that reorders what a reader sees.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from audit.report.csv import CSV_FIELDS
from audit.report.escape import inert
from audit.report.registry import RENDERERS, TEXT_FORMATS
from audit.scorecard import Scorecard
from tests.scorecards import gold_scorecard

FRAGMENTS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "'",
    '"',
    "]]>",
    "<![CDATA[x]]>",
    "<!--",
    "-->",
    "&lt;script&gt;",
    "&#60;b&#62;",
    "\u202e",
    "\u2066",
    "\u200f",
    "\x00",
    "\x1b[31m",
    "\ud800",
    "=cmd|' /C calc'!A0",
    "+SUM(1)",
    "@x",
    "-1",
    "\t=1",
    "`",
    "```",
    "|",
    "[x](javascript:alert(1))",
    "<https://evil.example>",
    "![i](https://evil.example/i.png)",
    "# heading",
    "\n- item\n",
    "*em* _em_",
    "\\",
    "{{ 7*7 }}",
    "{% raw %}",
]
hostile = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), min_size=1, max_size=5
).map("".join)

BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
HTML_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "main", "footer", "nav",
    "section", "article", "figure", "figcaption", "div", "span", "p", "b", "code", "a", "br",
    "wbr", "time", "h1", "h2", "h3", "h4", "dl", "dt", "dd", "ul", "li", "table", "caption",
    "thead", "tbody", "tr", "th", "td", "svg", "desc", "rect", "line", "text", "polyline",
    "polygon", "circle", "g", "details", "summary", "pre",
}  # fmt: skip
MD_TAGS = {
    "h1", "h2", "p", "strong", "code", "table", "thead", "tbody", "tr", "th", "td",
    "blockquote", "ul", "li",
}  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Scorecard:
    card = gold_scorecard(tmp_path_factory.mktemp("hostile"))
    first = card.criteria[0].id
    probes = [p for p in card.probes if p.criterion_id == first][:6]
    return card.model_copy(update={"criteria": card.criteria[:1], "probes": probes})


def _poison(card: Scorecard, bad: str) -> Scorecard:
    probes = [
        p.model_copy(
            update={
                "text": bad,
                "reason": bad,
                "post_id": bad,
                "outcome": "survived",
                "language": bad,
            }
        )
        for p in card.probes
    ]
    criterion = card.criteria[0]
    groups = [g.model_copy(update={"value": bad}) for g in criterion.breakdowns]
    criterion = criterion.model_copy(
        update={"title": bad, "verdict_reason": bad, "breakdowns": groups}
    )
    return card.model_copy(
        update={
            "target": {**card.target, "name": bad, "base_url": bad},
            "probes": probes,
            "criteria": [criterion],
            "failure": bad,
        }
    )


def _check_html(html: str, bad: str) -> None:
    parsed = _parse(html)
    for tag, attrs in parsed.tags:
        assert tag in HTML_TAGS, f"unexpected <{tag}> element"
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler attribute {name}"
            if name == "href":
                assert (value or "").startswith("#")
    assert inert(bad).strip() in "".join(parsed.text)


def _check_markdown(text: str) -> None:
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    for tag, attrs in _parse(rendered).tags:
        assert tag in MD_TAGS, f"Markdown produced <{tag} {attrs}>"


def _check_csv(text: str, bad: str) -> None:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(CSV_FIELDS)
    for row in rows[1:]:
        assert len(row) == len(CSV_FIELDS)
        for cell in row:
            assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r", "\uff1d"))
        text_cell = row[CSV_FIELDS.index("text")]
        assert text_cell in (inert(bad), "'" + inert(bad))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bad=hostile)
def test_hostile_strings_come_out_inert_in_every_format(base: Scorecard, bad: str) -> None:
    card = _poison(base, bad)

    def rendered(fmt: str, lang: str) -> str:
        return RENDERERS[fmt].render(card, None, lang).decode("utf-8")

    outputs = {fmt: rendered(fmt, "en") for fmt in TEXT_FORMATS}
    translated = {fmt: rendered(fmt, "vi") for fmt in ("html", "md", "junit")}
    for fmt, text in [*outputs.items(), *translated.items()]:
        assert not BIDI.search(text), fmt
        text.encode("utf-8")  # no lone surrogate survives
    for page in (outputs["html"], translated["html"]):  # placeholders of messages too
        _check_html(page, bad)
    _check_markdown(outputs["md"])
    _check_markdown(translated["md"])
    _check_csv(outputs["csv"], bad)
    suite = ET.fromstring(outputs["junit"]).find("testsuite")
    assert suite is not None and suite.get("name", "").endswith(inert(bad))
    assert json.loads(outputs["json"])["target"]["name"] == bad


def test_template_syntax_in_data_is_not_evaluated(base: Scorecard) -> None:
    html = RENDERERS["html"].render(_poison(base, "{{ 7*7 }}"), None, "en").decode()
    assert "{{ 7*7 }}" in html and ">49<" not in html
