"""Turning a profile's request template into an HTTP request, and keeping secrets out of records.

Every request goes through :class:`audit.http.PlatformClient` (retries, Retry-After, rate limit,
capped bodies, no redirects, evidence). Secrets reach the platform only in the requests that name
them; the evidence ledger and every result detail pass through :class:`SecretScrubber` first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from audit.adapters.profile_model import MultipartFile, RequestSpec
from audit.adapters.profile_template import Template, TemplateError, render_tree
from audit.http import EvidenceSink
from audit.media_file import MediaFile, media_record
from audit.redaction import Redactor

__all__ = ["AUTH_ACTION", "RenderedRequest", "SecretScrubber", "render_request"]

AUTH_ACTION = "auth"
_WITHHELD_REQUEST = "[withheld: authentication request]"
_WITHHELD_RESPONSE = "[withheld: authentication response]"


@dataclass(frozen=True)
class RenderedRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    form: dict[str, str] | None = None
    timeout: float | None = None
    content: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    media: dict[str, object] | None = None  # the media the body carries, for the ledger


def render_request(
    spec: RequestSpec, values: Mapping[str, str], media: MediaFile | None = None
) -> RenderedRequest:
    """Render a request; raises TemplateError if a value is missing (a profile bug).

    ``media`` is the probe's file, for a request that sends it (raw, as a file part, or in
    base64 through ``{media.base64}``, which ``values`` must then hold)."""
    path = Template.parse(spec.path).render_path(values)
    if spec.query:
        query = "&".join(
            f"{quote(key, safe='')}={quote(Template.parse(value).render(values), safe='')}"
            for key, value in spec.query.items()
        )
        path += ("&" if "?" in path else "?") + query
    headers = {
        name: Template.parse(value).render_header(values) for name, value in spec.headers.items()
    }
    form = None
    if spec.form is not None:
        form = {k: Template.parse(v).render(values) for k, v in spec.form.items()}
    body = render_tree(spec.body, values) if spec.body is not None else None
    content, files = _media_body(spec, values, media)
    if spec.multipart is not None:
        form = {
            k: Template.parse(v).render(values)
            for k, v in spec.multipart.items()
            if isinstance(v, str)
        }
    carried = media is not None and spec.carries_media
    return RenderedRequest(
        spec.method,
        path,
        headers,
        body,
        form,
        spec.timeout,
        content,
        files,
        media_record(media) if carried and media is not None else None,
    )


def _media_body(
    spec: RequestSpec, values: Mapping[str, str], media: MediaFile | None
) -> tuple[bytes | None, dict[str, tuple[str, bytes, str]] | None]:
    """The raw body or the multipart file part, made of the probe's media."""
    parts = {k: v for k, v in (spec.multipart or {}).items() if isinstance(v, MultipartFile)}
    if spec.content is None and not parts:
        return None, None
    if media is None:
        raise TemplateError("the request sends the probe's media, but this probe has none")
    if spec.content == "media":
        return media.data, None
    files = {
        name: (
            Template.parse(part.filename).render_header(values),
            media.data,
            Template.parse(part.type).render_header(values),
        )
        for name, part in parts.items()
    }
    return None, files


class SecretScrubber:
    """Every secret value the adapter knows (from the target, and tokens the platform hands
    out), cut from result details and evidence, and passed on to other redactors (the HTTP
    client's, the ledger's) as soon as it is known."""

    def __init__(self) -> None:
        self._redactor = Redactor()
        self._listeners: list[Callable[[str], object]] = []

    def listen(self, register: Callable[[str], object]) -> None:
        self._listeners.append(register)

    def add(self, secret: str) -> None:
        self._redactor.add(secret)
        for register in self._listeners:
            register(secret)

    def text(self, value: str) -> str:
        return self._redactor(value)

    def sink(self, downstream: EvidenceSink) -> EvidenceSink:
        """Wrap the ledger: scrub secrets; withhold authentication bodies altogether."""

        def write(probe_id: str | None, entry: dict[str, Any]) -> object:
            if entry.get("action") == AUTH_ACTION:
                entry = dict(entry, request_body=_WITHHELD_REQUEST)
                status = entry.get("status")
                if isinstance(status, int) and 200 <= status < 300:
                    entry["response_body"] = _WITHHELD_RESPONSE
            return downstream(probe_id, self._redactor.scrub(entry))

        return write
