"""HTTP to a platform: retries with backoff honouring Retry-After, a rate limit, capped bodies,
no redirects to other hosts, and every attempt written to the evidence ledger.

Adapters build requests; this module decides nothing about what an answer means.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email.utils
import functools
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from audit.clock import Clock
from audit.redaction import (
    Redactor,
    redact_fields,
    redact_query,
    secrets_in_headers,
)

__all__ = [
    "Exchange",
    "Pacer",
    "PlatformClient",
    "RateLimiter",
    "RetryPolicy",
    "SendGate",
    "parse_rate_limit_reset",
    "parse_retry_after",
]

MAX_BODY_BYTES = 1 << 20  # larger bodies are cut here and marked truncated
EVIDENCE_BODY_BYTES = 4096  # how much of each body the ledger keeps verbatim
_KEPT_HEADERS = (
    "content-type",
    "content-length",
    "retry-after",
    "location",
    "date",
    "x-request-id",
    "server",
    "ratelimit-remaining",
    "x-ratelimit-remaining",
)
_KEPT_REQUEST_HEADERS = ("content-type", "content-length", "idempotency-key")
MAX_HEADER_CHARS = 1024  # longer header values are cut, for adapters and the ledger alike
TOTAL_TIMEOUT_FACTOR = 4  # a whole answer (headers and body) must arrive within 4x the timeout

EvidenceSink = Callable[[str | None, dict[str, Any]], object]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 300.0
    retry_statuses: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})
    reset_header: str | None = None  # e.g. X-RateLimit-Reset, used when Retry-After is absent


_UNREAD: Any = object()  # an answer's JSON not parsed yet


def _json_of(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


@dataclass(frozen=True)
class Exchange:
    """The final answer to a request after retries (or the last fault)."""

    status: int | None  # None when no HTTP answer was received
    headers: Mapping[str, str]
    body: bytes
    truncated: bool
    error: str | None
    started_at: float
    ended_at: float
    attempts: int
    mono_started: float = 0.0
    mono_ended: float = 0.0
    redacted: bool = False  # a known secret was cut out of the body
    # the body as JSON once read (the client's check that an answer is JSON and the adapter
    # reading it both ask for it)
    _parsed: Any = field(default=_UNREAD, init=False, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status is not None and self.error is None

    def json(self) -> Any:
        """The body as JSON, or None when it is not valid JSON: parsed once, the same value for
        every caller, to be read and never changed."""
        parsed = self._parsed
        if parsed is _UNREAD:
            parsed = _json_of(self.body) if self.body and not self.truncated else None
            object.__setattr__(self, "_parsed", parsed)
        return parsed

    def describe(self) -> str:
        if self.status is None:
            return f"no answer: {self.error}"
        text = self.body[:200].decode("utf-8", "replace")
        return f"HTTP {self.status}" + (f" {text}" if text else "")


def parse_rate_limit_reset(value: str | None, now: float, cap: float) -> float | None:
    """Seconds to wait from a rate-limit reset header: epoch seconds, a delay in seconds, an
    ISO 8601 date-time or an HTTP date; clamped to [0, cap]."""
    if value is None:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return parse_retry_after(value, now, cap)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        number = when.timestamp()
    if number != number:  # NaN
        return None
    seconds = number - now if number > 1e9 else number  # an epoch, or a delay
    return min(max(seconds, 0.0), cap)


def parse_retry_after(value: str | None, now: float, cap: float) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date), clamped to [0, cap]."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), cap)


class RateLimiter:
    """At most ``rate`` requests per second, spaced evenly, on the injected clock."""

    def __init__(self, clock: Clock, rate: float | None) -> None:
        self._clock = clock
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = self._clock.now()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            await self._clock.sleep_until(slot)


class Pacer(Protocol):
    """Waits until the next request under a rate limit may be sent (:class:`RateLimiter`)."""

    async def acquire(self) -> None: ...


class SendGate(Protocol):
    """A target's limits shared with other processes (the workers of one store): its rate
    limits, and its concurrent requests. Waiting at the gate is the auditor's own queue: it
    comes before an attempt's send time is taken, so it is never charged to the platform."""

    def limiter(self, name: str, rate: float | None) -> Pacer:
        """The shared limiter of ``rate`` requests a second under ``name`` ("" for the
        target's own limit, else an action's or a request section's)."""
        ...

    def place(self) -> AbstractAsyncContextManager[None]:
        """Held while one request is in flight: one of the target's concurrent places."""
        ...

    def scoped(self, scope: str) -> SendGate:
        """The gate of another client of the same target (other credentials): its own rate
        limits, the target's concurrent places."""
        ...


class PlatformClient:
    """One platform's HTTP endpoint as the engine sees it."""

    def __init__(
        self,
        base_url: str,
        clock: Clock,
        evidence: EvidenceSink,
        *,
        headers: Mapping[str, str] | None = None,
        rate_limit: float | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        verify_tls: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        seed: int = 0,
        secrets: Iterable[str] = (),
        actions: Mapping[str, tuple[float | None, int | None]] | None = None,
        gate: SendGate | None = None,
    ) -> None:
        """``actions``: per action, its own rate limit (on top of ``rate_limit``) and its
        attempts (instead of the retry policy's), e.g. ``{"submit": (0.2, 8)}``. ``gate``:
        limits shared with other processes, in place of this client's own limiters."""
        self.base_url = base_url.rstrip("/")
        self._redactor = Redactor([*secrets_in_headers(headers), *secrets])
        self._redactor.add(httpx.URL(self.base_url).password)
        self._clock = clock
        self._evidence = evidence
        self._retry = retry or RetryPolicy()
        self._gate = gate
        self._limiter = self.limiter("", rate_limit)
        self._action_limiters = {
            name: self.limiter(name, rate) for name, (rate, _) in (actions or {}).items() if rate
        }
        self._action_attempts = {
            name: tries for name, (_, tries) in (actions or {}).items() if tries is not None
        }
        self._rng = random.Random(seed)
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=dict(headers or {}),
            timeout=timeout,
            verify=verify_tls,
            follow_redirects=False,
            transport=transport,
        )
        self._client._cookies = _SetCookiesOnly()

    def limiter(self, name: str, rate: float | None) -> Pacer:
        """A limiter of ``rate`` requests a second: this process's own, or the gate's shared
        one under ``name``."""
        if self._gate is not None:
            return self._gate.limiter(name, rate)
        return RateLimiter(self._clock, rate)

    def add_secret(self, secret: str) -> None:
        """A value to cut from every answer and every ledger entry (e.g. a password sent in a
        login body)."""
        self._redactor.add(secret)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        action: str,
        probe_id: str | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        timeout: float | None = None,
        expect_json: bool = False,
        readable: Callable[[Exchange], bool] | None = None,
        attempts: int | None = None,
        media: Mapping[str, object] | None = None,
    ) -> Exchange:
        """Send with retries; every attempt goes to the evidence ledger.

        ``path`` is relative to the base URL, or an absolute URL (e.g. an OAuth token endpoint
        named by a profile). ``timeout`` overrides the client's timeout for this request. With
        ``expect_json`` an answer whose body is cut off or is not JSON is a fault (its
        ``error`` says so), retried with backoff like a 5xx; ``readable`` says the same of
        answers it refuses (e.g. no rule of a profile matches).

        The exchange returned is the last attempt's, so its ``started_at`` is the send time of
        the attempt the platform answered (after the tool's own queue and retries).

        ``files`` makes a multipart body (field name -> file name, bytes, content type) with
        ``data`` as its text fields. ``media`` describes a probe's media the body carries (its
        digest, size and type: :func:`audit.media_file.media_record`); every attempt's ledger
        entry records it, so the ledger shows which media reached the platform.
        """
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        if files is not None:
            extra["files"] = dict(files)
        request = self._client.build_request(
            method,
            self._absolute(path),
            json=json_body,
            content=content,
            headers=headers,
            data=data,
            **extra,
        )
        if files is not None:
            request.read()  # a multipart body is built once, so every attempt sends the same
        check = readable or (_is_json if expect_json else None)
        budget = self._action_attempts.get(action, attempts or self._retry.attempts)
        action_limiter = self._action_limiters.get(action)
        attempt = 0
        while True:
            attempt += 1
            if action_limiter is not None:
                await action_limiter.acquire()
            await self._limiter.acquire()
            place = self._gate.place() if self._gate is not None else nullcontext()
            try:
                async with place:
                    exchange = await self._send_once(request, attempt)
            except asyncio.CancelledError:
                # the run ended (a dead target, Ctrl-C) with this request in flight: the
                # platform may have seen it, so the ledger records it, unanswered
                cut = self._finished(
                    None,
                    {},
                    b"",
                    False,
                    "cancelled: the run ended before the answer",
                    (self._clock.now(), self._clock.monotonic()),
                    attempt,
                )
                self._record(action, probe_id, request, cut, media)
                raise
            if check is not None:
                exchange = _unreadable_as_fault(exchange, check)
            self._record(action, probe_id, request, exchange, media)
            delay = self._retry_delay(exchange, attempt, check is not None, budget)
            if delay is None:
                return exchange
            await self._clock.sleep_until(self._clock.now() + delay)

    def _absolute(self, path: str) -> httpx.URL:
        """The request's URL, parsed by httpx once for all the requests to it (a probe's post
        is looked at again and again); a path relative to the base URL is joined to it first
        (it would be parsed, then merged and parsed again, on every request)."""
        if "://" not in path:
            path = f"{self.base_url}/{path.lstrip('/')}"
        return _parsed_url(path)

    def _retry_delay(
        self, exchange: Exchange, attempt: int, expect_json: bool, budget: int
    ) -> float | None:
        if attempt >= budget:
            return None
        # where the answer must be JSON, a body cut off (by the cap or in transit) or
        # unparseable is a fault like a 5xx (elsewhere: not sent again, it may have been acted on)
        unreadable = (
            expect_json and exchange.error is not None and exchange.error.startswith(UNREADABLE)
        )
        if (
            exchange.status is not None
            and exchange.status not in self._retry.retry_statuses
            and not unreadable
        ):
            return None
        hinted = parse_retry_after(
            exchange.headers.get("retry-after"), self._clock.now(), self._retry.max_delay
        )
        if hinted is None and self._retry.reset_header:
            hinted = parse_rate_limit_reset(
                exchange.headers.get(self._retry.reset_header.lower()),
                self._clock.now(),
                self._retry.max_delay,
            )
        backoff = float(self._retry.base_delay * 2 ** (attempt - 1))
        backoff *= 0.5 + self._rng.random()  # jitter
        return float(max(hinted or 0.0, min(backoff, self._retry.max_delay)))

    async def _send_once(self, request: httpx.Request, attempt: int) -> Exchange:
        started, mono = self._clock.now(), self._clock.monotonic()
        try:
            async with asyncio.timeout(_total_timeout(request)):
                response = await self._client.send(request, stream=True)
                try:
                    body, truncated = await _read_capped(response)
                finally:
                    await response.aclose()
        except (httpx.HTTPError, TimeoutError) as exc:
            fault = _fault(exc, request)
            return self._finished(None, {}, b"", False, fault, (started, mono), attempt)
        error = None
        if response.is_redirect:
            error = "redirect refused (the audit never follows redirects)"
        elif truncated:
            error = f"{UNREADABLE}: response body larger than {MAX_BODY_BYTES} bytes"
        headers = {k.lower(): v[:MAX_HEADER_CHARS] for k, v in response.headers.items()}
        status = response.status_code
        return self._finished(status, headers, body, truncated, error, (started, mono), attempt)

    def _finished(
        self,
        status: int | None,
        headers: dict[str, str],
        body: bytes,
        truncated: bool,
        error: str | None,
        start: tuple[float, float],
        attempt: int,
    ) -> Exchange:
        """The exchange as it ends now (wall and monotonic time), with known secrets cut out."""
        now, mono = self._clock.now(), self._clock.monotonic()
        exchange = Exchange(
            status, headers, body, truncated, error, start[0], now, attempt, start[1], mono
        )
        return self._redacted(exchange)

    def _redacted(self, exchange: Exchange) -> Exchange:
        """The exchange with every known secret cut out, before anyone else sees it."""
        if not self._redactor:
            return exchange
        body = self._redactor.redact_bytes(exchange.body)
        return dataclasses.replace(
            exchange,
            body=body,
            headers={k: self._redactor(v) for k, v in exchange.headers.items()},
            error=self._redactor(exchange.error) if exchange.error else exchange.error,
            redacted=body != exchange.body,
        )

    def _request_facts(self, request: httpx.Request, exchange: Exchange) -> dict[str, Any]:
        """Kept request headers and both bodies, as evidence: redacted (known secrets and
        secret-named fields), then digested and cut to :data:`EVIDENCE_BODY_BYTES`. Nothing is
        recorded of an empty request body (a GET), no digest of an empty answer."""
        facts: dict[str, Any] = {}
        kept = {
            k: self._redactor(v[:MAX_HEADER_CHARS])
            for k, v in request.headers.items()
            if k.lower() in _KEPT_REQUEST_HEADERS
        }
        if kept:
            facts["request_headers"] = kept
        sent = request.content if isinstance(request.content, bytes) else b""
        if sent:
            sent_type = request.headers.get("content-type", "")
            facts |= _body_evidence("request", self._redactor.redact_bytes(sent), sent_type)
        if exchange.body:
            answer_type = exchange.headers.get("content-type", "")
            facts |= _body_evidence("response", exchange.body, answer_type)
        else:  # an empty answer: its size and empty text, no digest
            facts |= {"response_bytes": 0, "response_body": ""}
        if exchange.redacted:
            facts["response_redacted"] = True
        return facts

    def _kept_header(self, name: str) -> bool:
        reset = self._retry.reset_header
        return name in _KEPT_HEADERS or (reset is not None and name == reset.lower())

    def _record(
        self,
        action: str,
        probe_id: str | None,
        request: httpx.Request,
        exchange: Exchange,
        media: Mapping[str, object] | None = None,
    ) -> None:
        entry = {
            "action": action,
            "attempt": exchange.attempts,
            "method": request.method,
            "url": _evidence_url(request.url),
            "status": exchange.status,
            "headers": {k: v for k, v in exchange.headers.items() if self._kept_header(k)},
            **self._request_facts(request, exchange),
            "started_at": exchange.started_at,
            "ended_at": exchange.ended_at,
            "mono_started": exchange.mono_started,
            "mono_ended": exchange.mono_ended,
        }
        if exchange.error is not None:  # an answer read as it came records no error
            entry["error"] = exchange.error
        if exchange.truncated:
            entry["response_truncated"] = True
        query = request.url.query
        if query:
            entry["query"] = redact_query(query.decode("ascii", "replace"))
        if media is not None:
            entry["media"] = dict(media)
        self._evidence(probe_id, entry)


@functools.lru_cache(maxsize=4096)
def _parsed_url(url: str) -> httpx.URL:
    """A URL as httpx parses it, for every request to it (httpx never changes a URL)."""
    return httpx.URL(url)


def _evidence_url(url: httpx.URL) -> str:
    """The URL without its query and user information, as the ledger keeps it (built from its
    parts: no re-parsing)."""
    host = url.raw_host.decode("ascii")
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    port = f":{url.port}" if url.port is not None else ""
    path = url.raw_path.split(b"?", 1)[0].decode("ascii")
    return f"{url.scheme}://{host}{port}{path}"


class _SetCookiesOnly(httpx.Cookies):
    """The client's cookie jar, read only from answers that set a cookie: building the
    standard library's cookie request and response for every answer is a large share of a
    request's cost, for nothing when no cookie is set."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


UNREADABLE = "unreadable answer"
_AUTH_REFUSALS = frozenset({401, 403, 407})


def _is_json(exchange: Exchange) -> bool:
    if exchange.status in (204, 304) or exchange.json() is not None:
        return True
    return not exchange.truncated and exchange.body.strip() == b"null"


def _unreadable_as_fault(exchange: Exchange, readable: Callable[[Exchange], bool]) -> Exchange:
    """An answer the caller cannot read (a body cut off, not JSON, matching nothing), as a
    fault. A refusal of the tool's credentials (401, 403, 407) is a definite answer, left to
    the authentication layer (which refreshes a token once), never retried as unreadable."""
    if not exchange.ok or exchange.status in _AUTH_REFUSALS or readable(exchange):
        return exchange
    return dataclasses.replace(
        exchange, error=f"{UNREADABLE}: the body is cut off, not JSON or matches no rule"
    )


def _total_timeout(request: httpx.Request) -> float | None:
    """How long a whole answer may take: a body dripped byte by byte cannot hold a request for
    longer than this, whatever the per-read timeout."""
    parts = request.extensions.get("timeout", {})
    limits = [v for v in parts.values() if isinstance(v, int | float) and v > 0]
    return TOTAL_TIMEOUT_FACTOR * max(limits) if limits else None


def _fault(exc: Exception, request: httpx.Request) -> str:
    if isinstance(exc, TimeoutError):
        return f"TotalTimeout: no complete answer within {_total_timeout(request):g} s"
    return f"{type(exc).__name__}: {exc}"[:MAX_HEADER_CHARS]


def _body_evidence(prefix: str, body: bytes, content_type: str) -> dict[str, Any]:
    """Size, the first :data:`EVIDENCE_BODY_BYTES` of a body and, where that is not all of it,
    the digest of the whole, with secret-named fields (``access_token``, ``client_secret``...)
    cut out first; text when it is UTF-8, else base64 (the encoding is named only then, and
    the cut only where there is one). A body recorded whole carries no digest: its recorded
    bytes are the body (:func:`audit.evidence.ledger.body_digest` gives the same digest)."""
    clean = redact_fields(body, content_type)
    head = clean[:EVIDENCE_BODY_BYTES]
    kept = len(head)
    try:
        text, encoding = head.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            text, encoding, kept = head[: exc.start].decode("utf-8"), "utf-8", exc.start
        else:
            text, encoding = base64.b64encode(head).decode("ascii"), "base64"
    facts: dict[str, Any] = {f"{prefix}_bytes": len(body), f"{prefix}_body": text}
    if encoding != "utf-8":
        facts[f"{prefix}_body_encoding"] = encoding
    if len(clean) > EVIDENCE_BODY_BYTES:
        facts[f"{prefix}_body_cut"] = True
    if kept != len(clean):  # recorded in part: the digest of the whole
        facts[f"{prefix}_sha256"] = hashlib.sha256(clean).hexdigest()
    return facts


async def _read_capped(response: httpx.Response) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False
