"""Small, safe templates for target profiles: ``{probe.text}``, ``{vars.room_id}``, ``{post.id}``.

A template is literal text with placeholders in braces; ``{{`` and ``}}`` stand for literal braces.
A placeholder is a dotted name, never an expression: nothing is evaluated, looked up by attribute
or formatted. Values are inserted as text; in a URL path each value is percent-encoded whole
(``/`` included), so a value can never add a path segment or change the host.

Names a template may use (which ones depend on the request; see :mod:`profile_load`)::

    probe.text  probe.language  probe.modality   the probe (never its criterion or id)
    idempotency_key                               the probe id, as the platform's dedup key
    vars.NAME      secrets.NAME                   target variables, secrets from env/files
    captured.NAME                                 values taken from the submit response
    post_id        post.NAME                      the post, as recorded at submission
    reason         kind                           notice text and kind (notice | order)
    request_key                                   a key stable per post and action (retries)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["Template", "TemplateError", "render_tree", "tree_references"]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class TemplateError(ValueError):
    """A template is malformed, or names a value that is not available."""


@dataclass(frozen=True)
class Template:
    """A parsed template: literal parts and placeholder names, alternating."""

    source: str
    parts: tuple[tuple[bool, str], ...]  # (is_placeholder, text or name)

    @classmethod
    def parse(cls, source: str) -> Template:
        parts: list[tuple[bool, str]] = []
        literal: list[str] = []
        position = 0
        for match in _PLACEHOLDER.finditer(source):
            literal.append(source[position : match.start()])
            position = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                literal.append(token[0])
                continue
            name = match.group(1)
            if name is None or not _NAME.match(name.strip()):
                raise TemplateError(
                    f"has a malformed placeholder {token!r} at offset {match.start()}: use "
                    "{name} or {namespace.name}, and {{ or }} for a literal brace"
                )
            parts.append((False, "".join(literal)))
            literal = []
            parts.append((True, name.strip()))
        literal.append(source[position:])
        parts.append((False, "".join(literal)))
        return cls(source, tuple((p, t) for p, t in parts if p or t))

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(text for is_name, text in self.parts if is_name)

    def render(self, values: Mapping[str, str], encode: Callable[[str], str] | None = None) -> str:
        out: list[str] = []
        for is_name, text in self.parts:
            if not is_name:
                out.append(text)
                continue
            if text not in values:
                raise TemplateError(f"{{{text}}} has no value here")
            value = values[text]
            out.append(encode(value) if encode else value)
        return "".join(out)

    def render_path(self, values: Mapping[str, str]) -> str:
        """Render a URL path: every inserted value is percent-encoded, '/' included."""
        return self.render(values, lambda value: quote(value, safe=""))

    def render_header(self, values: Mapping[str, str]) -> str:
        text = self.render(values)
        if any(ch in text for ch in "\r\n\x00"):
            raise TemplateError("a header value may not contain line breaks")
        return text


def tree_references(tree: Any) -> list[str]:
    """Every placeholder name used in the strings of a JSON-like tree (keys included)."""
    names: list[str] = []
    if isinstance(tree, str):
        names.extend(Template.parse(tree).references)
    elif isinstance(tree, dict):
        for key, value in tree.items():
            names.extend(tree_references(str(key)))
            names.extend(tree_references(value))
    elif isinstance(tree, list):
        for value in tree:
            names.extend(tree_references(value))
    return names


def render_tree(tree: Any, values: Mapping[str, str]) -> Any:
    """A JSON-like tree with its strings rendered; numbers, booleans and null are kept."""
    if isinstance(tree, str):
        return Template.parse(tree).render(values)
    if isinstance(tree, dict):
        return {
            Template.parse(str(key)).render(values): render_tree(value, values)
            for key, value in tree.items()
        }
    if isinstance(tree, list):
        return [render_tree(value, values) for value in tree]
    return tree
