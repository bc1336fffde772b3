"""Keeping secrets out of everything the tool writes.

A :class:`Redactor` knows the secret values of a run (bearer tokens, passwords) and replaces them,
and the encodings a platform might echo them in (percent-encoded, JSON- or HTML-escaped,
base64), with ``[REDACTED]``. The HTTP client redacts every answer before an adapter, the store or
the ledger sees it, so a platform that echoes a token back cannot make the audit write it down.

Query parameters and headers with secret-looking names are redacted by name as well, whatever
their value.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode

__all__ = [
    "REDACTED",
    "Redactor",
    "is_secret_header",
    "is_secret_param",
    "redact_fields",
    "redact_query",
    "secrets_in_headers",
]

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4  # shorter values would mangle ordinary text

_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-access-token",
        "private-token",
        "x-csrf-token",
    }
)
_SECRET_PARAMS = frozenset({"key", "auth", "code", "sig", "pass", "pwd", "session", "jwt"})
_SECRET_SUFFIXES = (
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "signature",
    "credential",
    "sessionid",
)


def is_secret_header(name: str) -> bool:
    return name.strip().lower() in _SECRET_HEADERS


def is_secret_param(name: str) -> bool:
    """True for query parameter names that carry credentials (``access_token``, ``api_key``)."""
    plain = name.strip().lower().replace("-", "").replace("_", "")
    return plain in _SECRET_PARAMS or plain.endswith(_SECRET_SUFFIXES)


def redact_query(query: str) -> str:
    """The query string with the values of secret-named parameters replaced."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(is_secret_param(name) for name, _ in pairs):
        return query
    clean = [(name, REDACTED if is_secret_param(name) else value) for name, value in pairs]
    return urlencode(clean, safe="[]")


def is_secret_field(name: str) -> bool:
    """True for body field names that carry credentials; narrower than query parameters, so
    that fields such as ``code`` or ``key`` in a platform's error bodies stay readable."""
    plain = name.strip().lower().replace("-", "").replace("_", "")
    return plain in ("authorization", "cookie") or plain.endswith(_SECRET_SUFFIXES)


# A member "name": "value"; the value may run to the end of a cut body. Possessive and bounded,
# so a hostile body of broken strings is scanned in linear time.
_JSON_FIELD = re.compile(
    rb'"([A-Za-z0-9_.-]{1,64})"(\s{0,16}:\s{0,16})"(?:[^"\\]|\\.)*+(?:"|\Z)', re.DOTALL
)
_FORM_FIELD = re.compile(rb"(^|&)([^=&]{1,64})=([^&]*)")


_FIELD_MARKERS = tuple(m.encode() for m in ("authorization", "cookie", *_SECRET_SUFFIXES))
_PARAM_MARKERS = tuple(m.encode() for m in _SECRET_PARAMS)
# any of the markers anywhere, in one scan of the body
_MARKER = re.compile(b"|".join(re.escape(m) for m in (*_FIELD_MARKERS, *_PARAM_MARKERS)))


def _may_name_a_secret(body: bytes) -> bool:
    """Whether some field or parameter name in the body could be secret-named (what
    :func:`is_secret_field` and :func:`is_secret_param` look for, with case, ``-`` and ``_``
    ignored); False means no name can be, so the body is left as it is without a scan."""
    plain = body.lower().replace(b"_", b"").replace(b"-", b"")
    return _MARKER.search(plain) is not None


def redact_fields(body: bytes, content_type: str = "") -> bytes:
    """A body with the values of secret-named fields replaced: JSON string members anywhere
    (even in a cut or broken document), and form fields when the body is form-encoded."""

    def json_member(match: re.Match[bytes]) -> bytes:
        name = match.group(1).decode("ascii")
        if not is_secret_field(name):
            return match.group(0)
        closed = match.end() - match.end(2) >= 2 and match.group(0).endswith(b'"')
        end = b'"' if closed else b""  # a value cut at the end of the body stays unterminated
        return b'"' + match.group(1) + b'"' + match.group(2) + b'"' + REDACTED.encode() + end

    def form_field(match: re.Match[bytes]) -> bytes:
        name = match.group(2).decode("utf-8", "replace")
        if not (is_secret_field(name) or is_secret_param(name)):
            return match.group(0)
        return match.group(1) + match.group(2) + b"=" + REDACTED.encode()

    if not _may_name_a_secret(body):
        return body
    if b'"' in body:
        body = _JSON_FIELD.sub(json_member, body)
    if "x-www-form-urlencoded" in content_type.lower():
        body = _FORM_FIELD.sub(form_field, body)
    return body


def _credential_parts(value: str) -> list[str]:
    """The secret pieces of an Authorization-style header value."""
    parts = [value]
    scheme, _, credential = value.strip().partition(" ")
    if credential:
        parts.append(credential.strip())
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if decoded:
                parts += [decoded, decoded.partition(":")[2]]
    for cookie in value.split(";"):
        parts.append(cookie.partition("=")[2].strip())
    return parts


def secrets_in_headers(headers: Mapping[str, str] | None) -> list[str]:
    """The secret values carried by request headers such as ``Authorization``."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        if is_secret_header(name):
            found += _credential_parts(value)
    return found


def _forms(secret: str) -> set[str]:
    """The ways a platform may echo a secret: as is, percent-encoded, escaped, base64."""
    raw = secret.encode("utf-8", "replace")
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1],
        secret.replace("/", "\\/"),
        html.escape(secret),
        base64.b64encode(raw).decode("ascii"),
        base64.b64encode(raw).decode("ascii").rstrip("="),
        base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
    }


class Redactor:
    """Replaces every known secret value with ``[REDACTED]`` in text, bytes and JSON values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._texts: list[str] = []
        self._bytes: list[bytes] = []
        for secret in secrets:
            self.add(secret)

    def __bool__(self) -> bool:
        return bool(self._texts)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret.strip()) < MIN_SECRET_LENGTH:
            return
        forms = {f for f in _forms(secret.strip()) | _forms(secret) if len(f) >= MIN_SECRET_LENGTH}
        merged = set(self._texts) | forms
        self._texts = sorted(merged, key=lambda f: (-len(f), f))
        self._bytes = [f.encode("utf-8", "replace") for f in self._texts]

    def __call__(self, text: str) -> str:
        for secret in self._texts:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        for secret in self._bytes:
            if secret in data:
                data = data.replace(secret, REDACTED.encode("ascii"))
        return data

    def scrub(self, value: Any) -> Any:
        """Redact secrets anywhere inside a JSON-like value (keys included)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, bytes):
            return self.redact_bytes(value)
        if isinstance(value, dict):
            return {self(str(k)): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value
