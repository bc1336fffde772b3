"""HTTP to a platform: retries with backoff honouring Retry-After, a rate limit, capped bodies,
no redirects to other hosts, and every attempt written to the evidence ledger.

Adapters build requests; this module decides nothing about what an answer means.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from audit.clock import Clock, utc_iso

__all__ = ["Exchange", "PlatformClient", "RateLimiter", "RetryPolicy", "parse_retry_after"]

MAX_BODY_BYTES = 1 << 20  # larger bodies are cut here and marked truncated
EVIDENCE_BODY_BYTES = 4096  # how much of each body the ledger keeps verbatim
_KEPT_HEADERS = ("content-type", "retry-after", "location", "date", "x-request-id")

EvidenceSink = Callable[[str | None, dict[str, Any]], object]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 300.0
    retry_statuses: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})


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

    @property
    def ok(self) -> bool:
        return self.status is not None and self.error is None

    def json(self) -> Any:
        """The body as JSON, or None when it is not valid JSON."""
        import json

        if self.truncated or not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def describe(self) -> str:
        if self.status is None:
            return f"no answer: {self.error}"
        text = self.body[:200].decode("utf-8", "replace")
        return f"HTTP {self.status}" + (f" {text}" if text else "")


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._evidence = evidence
        self._retry = retry or RetryPolicy()
        self._limiter = RateLimiter(clock, rate_limit)
        self._rng = random.Random(seed)
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=dict(headers or {}),
            timeout=timeout,
            verify=verify_tls,
            follow_redirects=False,
            transport=transport,
        )

    def set_header(self, name: str, value: str) -> None:
        self._client.headers[name] = value

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
    ) -> Exchange:
        """Send with retries; every attempt goes to the evidence ledger."""
        request = self._client.build_request(
            method, path, json=json_body, content=content, headers=headers, data=data
        )
        attempt = 0
        while True:
            attempt += 1
            await self._limiter.acquire()
            exchange = await self._send_once(request, attempt)
            self._record(action, probe_id, request, exchange)
            delay = self._retry_delay(exchange, attempt)
            if delay is None:
                return exchange
            await self._clock.sleep_until(self._clock.now() + delay)

    def _retry_delay(self, exchange: Exchange, attempt: int) -> float | None:
        if attempt >= self._retry.attempts:
            return None
        if exchange.status is not None and exchange.status not in self._retry.retry_statuses:
            return None
        hinted = parse_retry_after(
            exchange.headers.get("retry-after"), self._clock.now(), self._retry.max_delay
        )
        backoff = float(self._retry.base_delay * 2 ** (attempt - 1))
        backoff *= 0.5 + self._rng.random()  # jitter
        return float(max(hinted or 0.0, min(backoff, self._retry.max_delay)))

    async def _send_once(self, request: httpx.Request, attempt: int) -> Exchange:
        started, mono = self._clock.now(), self._clock.monotonic()
        try:
            response = await self._client.send(request, stream=True)
            try:
                body, truncated = await _read_capped(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            return Exchange(
                None,
                {},
                b"",
                False,
                f"{type(exc).__name__}: {exc}",
                started,
                self._clock.now(),
                attempt,
                mono,
                self._clock.monotonic(),
            )
        error = None
        if response.is_redirect:
            error = "redirect refused (the audit never follows redirects)"
        elif truncated:
            error = f"response body larger than {MAX_BODY_BYTES} bytes"
        headers = {k.lower(): v for k, v in response.headers.items()}
        return Exchange(
            response.status_code,
            headers,
            body,
            truncated,
            error,
            started,
            self._clock.now(),
            attempt,
            mono,
            self._clock.monotonic(),
        )

    def _record(
        self, action: str, probe_id: str | None, request: httpx.Request, exchange: Exchange
    ) -> None:
        req_body = request.content if isinstance(request.content, bytes) else b""
        self._evidence(
            probe_id,
            {
                "action": action,
                "attempt": exchange.attempts,
                "method": request.method,
                "url": str(request.url.copy_with(query=None)),
                "query": request.url.query.decode("ascii", "replace"),
                "status": exchange.status,
                "error": exchange.error,
                "headers": {k: v for k, v in exchange.headers.items() if k in _KEPT_HEADERS},
                "request_sha256": hashlib.sha256(req_body).hexdigest(),
                "request_body": req_body[:EVIDENCE_BODY_BYTES].decode("utf-8", "replace"),
                "response_sha256": hashlib.sha256(exchange.body).hexdigest(),
                "response_body": exchange.body[:EVIDENCE_BODY_BYTES].decode("utf-8", "replace"),
                "response_truncated": exchange.truncated,
                "started_utc": utc_iso(exchange.started_at),
                "ended_utc": utc_iso(exchange.ended_at),
                "started_at": exchange.started_at,
                "ended_at": exchange.ended_at,
                "mono_started": exchange.mono_started,
                "mono_ended": exchange.mono_ended,
            },
        )


async def _read_capped(response: httpx.Response) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False
