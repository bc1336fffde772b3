"""What the HTTP client records as evidence: redacted, capped, timed, and nothing secret."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from audit.clock import SystemClock, VirtualClock
from audit.evidence.ledger import body_digest
from audit.http import EVIDENCE_BODY_BYTES, MAX_HEADER_CHARS, Exchange, PlatformClient, RetryPolicy

TOKEN = "tok-" + "7" * 28
Handler = Callable[[httpx.Request], Any]


def client(handler: Handler, records: list[dict[str, Any]], **options: Any) -> PlatformClient:
    return PlatformClient(
        options.pop("base_url", "http://platform.test"),
        options.pop("clock", VirtualClock()),
        lambda probe_id, entry: records.append(entry),
        headers={"Authorization": f"Bearer {TOKEN}"},
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=1),
        **options,
    )


def call(
    handler: Handler, method: str = "GET", path: str = "/x", **options: Any
) -> tuple[Exchange, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    request = {
        k: options.pop(k) for k in ("json_body", "content", "headers", "data") if k in options
    }

    async def go() -> Exchange:
        platform = client(handler, records, **options)
        try:
            return await platform.request(method, path, action="status", **request)
        finally:
            await platform.aclose()

    return asyncio.run(go()), records


def test_a_token_echoed_by_the_platform_never_reaches_the_adapter_or_the_ledger() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        auth = request.headers["authorization"]
        return httpx.Response(
            401,
            json={"error": f"bad {auth}", "hint": base64.b64encode(TOKEN.encode()).decode()},
            headers={"location": f"/login?next={TOKEN}", "x-request-id": TOKEN},
        )

    exchange, (entry,) = call(echo)
    text = exchange.body.decode() + repr(exchange.headers) + repr(entry)
    assert TOKEN not in text and base64.b64encode(TOKEN.encode()).decode() not in text
    assert exchange.redacted and entry["response_redacted"]
    assert (
        "[REDACTED]" in entry["response_body"] and entry["headers"]["x-request-id"] == "[REDACTED]"
    )
    # recorded whole, so no digest of its own: the digest is the recorded body's
    assert "response_sha256" not in entry
    assert body_digest(entry, "response") == hashlib.sha256(exchange.body).hexdigest()


def test_a_token_straddling_the_cut_leaves_no_prefix() -> None:
    body = b"x" * (EVIDENCE_BODY_BYTES - 10) + TOKEN.encode() + b"tail"
    _, (entry,) = call(lambda r: httpx.Response(200, content=body))
    assert TOKEN[:8] not in entry["response_body"] and TOKEN[-8:] not in entry["response_body"]


def test_transport_errors_are_redacted() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy said no to {request.headers['authorization']}")

    exchange, (entry,) = call(fail)
    assert exchange.status is None and TOKEN not in (exchange.error or "")
    assert entry["error"].startswith("ConnectError: ") and "[REDACTED]" in entry["error"]


def test_secret_query_parameters_and_url_credentials_are_not_recorded() -> None:
    ok = lambda r: httpx.Response(200, json={})  # noqa: E731
    _, (entry,) = call(
        ok,
        path="/search?access_token=abc123&idempotency_key=p1",
        base_url="https://alice:hunter22@platform.test",
    )
    assert "abc123" not in repr(entry) and "hunter22" not in repr(entry)
    assert "idempotency_key=p1" in entry["query"] and entry["url"] == "https://platform.test/search"


def test_secret_named_fields_in_bodies_are_not_recorded() -> None:
    def token_endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "fresh-token-123", "token_type": "bearer"})

    exchange, (entry,) = call(
        token_endpoint,
        method="POST",
        data={"grant_type": "client_credentials", "client_secret": "shh-its-secret"},
    )
    assert exchange.json()["access_token"] == "fresh-token-123"  # the adapter still reads it
    assert "fresh-token-123" not in repr(entry) and "shh-its-secret" not in repr(entry)
    assert "client_credentials" in entry["request_body"] and "bearer" in entry["response_body"]


def test_an_added_secret_is_cut_before_it_is_hashed() -> None:
    records: list[dict[str, Any]] = []

    async def go() -> None:
        platform = client(lambda r: httpx.Response(204), records)
        platform.add_secret("pa55word")
        await platform.request("POST", "/login", action="login", json_body={"p": "pa55word"})
        await platform.aclose()

    asyncio.run(go())
    (entry,) = records
    assert "pa55word" not in repr(entry)
    assert body_digest(entry, "request") != hashlib.sha256(b'{"p":"pa55word"}').hexdigest()


def test_a_body_kept_in_part_records_the_digest_of_the_whole() -> None:
    whole = b"x" * (EVIDENCE_BODY_BYTES + 10)
    _, (entry,) = call(lambda r: httpx.Response(200, content=whole), method="POST", content=whole)
    for side in ("request", "response"):
        assert entry[f"{side}_body_cut"] is True
        assert entry[f"{side}_sha256"] == hashlib.sha256(whole).hexdigest()
        assert body_digest(entry, side) == entry[f"{side}_sha256"]
    assert "error" not in entry and "response_truncated" not in entry  # read as it came


def test_request_headers_kept_are_harmless() -> None:
    _, (entry,) = call(
        lambda r: httpx.Response(201),
        method="POST",
        json_body={"text": "hi"},
        headers={"Idempotency-Key": "probe-1", "Cookie": "session=abc"},
    )
    assert entry["request_headers"]["idempotency-key"] == "probe-1"
    assert not {"authorization", "cookie"} & set(entry["request_headers"])


def test_bodies_are_cut_on_a_character_boundary_and_binary_is_base64() -> None:
    text = ("é" * EVIDENCE_BODY_BYTES).encode()
    _, (entry,) = call(lambda r: httpx.Response(200, content=text))
    assert entry.get("response_body_encoding", "utf-8") == "utf-8" and entry["response_body_cut"]
    assert len(entry["response_body"].encode()) <= EVIDENCE_BODY_BYTES
    assert entry["response_bytes"] == len(text)
    binary = bytes(range(256)) * 4
    _, (entry,) = call(lambda r: httpx.Response(200, content=binary))
    assert entry["response_body_encoding"] == "base64"
    assert base64.b64decode(entry["response_body"]) == binary


def test_header_values_are_capped() -> None:
    exchange, (entry,) = call(lambda r: httpx.Response(200, headers={"server": "s" * 100_000}))
    assert len(exchange.headers["server"]) == MAX_HEADER_CHARS == len(entry["headers"]["server"])


def test_deeply_nested_json_is_not_json() -> None:
    exchange, _ = call(lambda r: httpx.Response(200, content=b"[" * 200_000))
    assert exchange.json() is None


def test_a_dripping_body_cannot_hold_a_request_longer_than_the_total_limit() -> None:
    async def drip() -> AsyncIterator[bytes]:
        for _ in range(1000):
            await asyncio.sleep(0.01)
            yield b"x"

    started = asyncio.run(
        _timed(
            lambda: call(
                lambda r: httpx.Response(200, content=drip()), clock=SystemClock(), timeout=0.02
            )
        )
    )
    (exchange, (entry,)), seconds = started
    assert exchange.status is None and entry["error"].startswith("TotalTimeout: ")
    assert seconds < 2.0


async def _timed(work: Callable[[], Any]) -> tuple[Any, float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await asyncio.to_thread(work)
    return result, loop.time() - start


@pytest.mark.parametrize(
    "value", ["-5", "1e12", "NaN", "inf", "Fri, 31 Dec 9999 23:59:59 GMT", "x"]
)
def test_odd_retry_after_values_wait_within_bounds(value: str) -> None:
    clock = VirtualClock()
    start = clock.now()
    calls = 0

    def limited(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(429, headers={"retry-after": value})

    records: list[dict[str, Any]] = []

    async def go() -> Exchange:
        platform = PlatformClient(
            "http://p.test",
            clock,
            lambda p, e: records.append(e),
            transport=httpx.MockTransport(limited),
            retry=RetryPolicy(attempts=3, max_delay=300),
        )
        try:
            return await platform.request("GET", "/x", action="status")
        finally:
            await platform.aclose()

    exchange = asyncio.run(go())
    assert exchange.status == 429 and calls == 3 == len(records)
    assert 0 <= clock.now() - start <= 2 * 300
