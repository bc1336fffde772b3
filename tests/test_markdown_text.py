"""Markdown text: what has Markdown meaning is escaped, and nothing else — a version or a
parenthesis reads in the raw file as written."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from audit.report.escape import md_prose


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("v1.0.0", "v1.0.0"),
        ("1.0.0", "1.0.0"),
        ("Art. 14(7)(đ)", "Art. 14(7)(đ)"),
        ("(Vietnam)", "(Vietnam)"),
        ("1. item", "1\\. item"),
        ("3) item", "3\\) item"),
        ("- item", "\\- item"),
        ("[x](http://e.test)", "\\[x\\](http://e.test)"),
        ("a_b*c", "a\\_b\\*c"),
    ],
)
def test_escapes_only_what_has_meaning(text: str, raw: str) -> None:
    assert md_prose(text) == raw
    html = MarkdownIt("commonmark").render(raw)
    assert "<a " not in html and "<ol" not in html and "<ul" not in html and "<em" not in html
