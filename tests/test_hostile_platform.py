"""The engine against a hostile platform: random and adversarial answers never become removals.

A fake platform speaks the reference sandbox's API honestly, except that each request may instead
get a fault drawn by hypothesis: 5xx (JSON or an HTML page with script), truncated JSON, wrong
types, deeply nested JSON, empty bodies, odd statuses, 429 with strange Retry-After values
(negative, huge, NaN, HTTP dates, garbage, non-ASCII), bodies over 1 MiB streamed in chunks,
redirects to other hosts, slow answers, and connection resets and timeouts raised by the
transport. Everything runs on the virtual clock, so retries and Retry-After cost no wall time.

Checked for every run: it completes; a probe is counted removed (or over-removed) only when the
platform really answered "removed" or "gone" for its post, and refused at submission only when
it really refused; every request the platform saw, fault or not, is in the ledger; bodies in the
ledger are capped; the ledger verifies and every measurement rests on an answer in it.

Examples per test: ``HOSTILE_EXAMPLES`` (default 40).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.clock import VirtualClock
from audit.errors import TargetUnreachable
from audit.evidence.ledger import check_agreement, check_chain
from audit.http import EVIDENCE_BODY_BYTES, MAX_BODY_BYTES
from audit.runner import execute_run
from audit.store_protocol import RunStore
from audit.workspace import scorecard_for
from tests.evidence_support import start_run, tiny_plan

pytestmark = pytest.mark.both_stores

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "40"))
HOSTILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DAY = 86_400.0
ODD_RETRY_AFTER = [
    b"-5",
    b"0",
    b"1e12",
    b"1e309",
    b"NaN",
    b"inf",
    b"-inf",
    b"",
    b"garbage",
    b"10, 20",
    b" 7 ",
    b"Wed, 21 Oct 2015 07:28:00 GMT",
    b"Fri, 31 Dec 9999 23:59:59 GMT",
    b"Mon, 32 Foo 2026 99:99:99 GMT",
    "１０".encode(),
    "é".encode("latin-1"),
    b"\x7f\x01",
]
WRONG_TYPES: list[Any] = [
    {"id": 123},
    {"id": None},
    {"id": ["0000001"]},
    {"state": ["removed"]},
    {"state": None},
    {"state": {"removed": True}},
    {"state": 410},
    [],
    "removed",
    42,
    None,
]


@dataclass
class Post:
    post_id: str
    key: str | None
    created: float
    removal_at: float | None
    withdrawn: bool = False


@dataclass
class HostilePlatform:
    """The sandbox API, honest except where a drawn fault answers instead."""

    clock: VirtualClock
    data: st.DataObject
    fault_percent: int
    rng: random.Random
    posts: dict[str, Post] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)
    requests: int = 0
    faults: dict[int, str] = field(default_factory=dict)
    honest_down: Counter[str] = field(default_factory=Counter)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        n = self.requests
        if self.data.draw(st.integers(0, 99), label="roll") < self.fault_percent:
            kind = self.data.draw(st.sampled_from(FAULTS), label="fault")
            self.faults[n] = kind
            return await fault(kind, n, self)
        return self.honest(request, n)

    # honest answers ------------------------------------------------------------------------
    def honest(self, request: httpx.Request, n: int) -> httpx.Response:
        path, method = request.url.path, request.method
        now = self.clock.now()
        if path == "/api/v1/posts" and method == "POST":
            return self.create(request.headers.get("idempotency-key"), now, n)
        if path == "/api/v1/posts":
            key = request.url.params.get("idempotency_key", "")
            if key in self.by_key:
                return self.view(self.posts[self.by_key[key]], now, n, count=False)
            if key in self.rejected:
                return answer(422, {"error": "policy_violation", "message": "no"}, n)
            return answer(404, {"error": "not_found", "message": "no such key"}, n)
        post = self.posts.get(path.rsplit("/", 2)[-2 if path.endswith("/reports") else -1])
        if post is None or post.withdrawn:
            return answer(404, {"error": "not_found", "message": "no such post"}, n)
        if method == "DELETE":
            post.withdrawn = True
            return httpx.Response(204, headers={"x-request-id": str(n)})
        if path.endswith("/reports"):
            delay = self.rng.uniform(0, 2 * DAY)
            post.removal_at = min(post.removal_at or float("inf"), now + delay)
            return answer(202, {"report_id": f"{post.post_id}-r"}, n)
        return self.view(post, now, n, count=True)

    def create(self, key: str | None, now: float, n: int) -> httpx.Response:
        if key and key in self.by_key:
            return answer(200, {"id": self.by_key[key], "state": "visible"}, n)
        if self.rng.random() < 0.15:
            self.rejected.add(key or "")
            return answer(422, {"error": "policy_violation", "message": "refused"}, n)
        post_id = f"{len(self.posts) + 1:07d}"
        removal = None if self.rng.random() < 0.3 else now + self.rng.uniform(0, 2 * DAY)
        self.posts[post_id] = Post(post_id, key, now, removal)
        if key:
            self.by_key[key] = post_id
        return answer(201, {"id": post_id, "state": "visible"}, n)

    def view(self, post: Post, now: float, n: int, *, count: bool) -> httpx.Response:
        if post.removal_at is not None and now >= post.removal_at:
            if count:
                self.honest_down[post.post_id] += 1
            return answer(410, {"id": post.post_id, "state": "removed", "reason": "rules"}, n)
        return answer(200, {"id": post.post_id, "state": "visible"}, n)


def answer(
    status: int, body: Any, n: int, content_type: str = "application/json"
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(
        status, content=content, headers={"content-type": content_type, "x-request-id": str(n)}
    )


# faults ---------------------------------------------------------------------------------------
async def fault(kind: str, n: int, platform: HostilePlatform) -> httpx.Response:
    draw = platform.data.draw
    if kind in _RAISED:
        raise _RAISED[kind](f"fault #{n}")
    if kind == "slow":  # an honest answer that takes a drawn while to arrive
        platform.clock.advance(draw(st.floats(0, 2 * DAY), label="latency"))
        return httpx.Response(503, headers={"x-request-id": str(n), "retry-after": b"1"})
    if kind == "429":
        value = draw(st.sampled_from(ODD_RETRY_AFTER), label="retry-after")
        return httpx.Response(
            429, headers=[(b"x-request-id", str(n).encode()), (b"retry-after", value)]
        )
    if kind == "oversized":
        return httpx.Response(
            draw(st.sampled_from([200, 201, 410])),
            headers={"x-request-id": str(n), "content-type": "application/json"},
            content=_oversized(draw(st.integers(MAX_BODY_BYTES + 1, 3 * MAX_BODY_BYTES))),
        )
    if kind == "redirect":
        status = draw(st.sampled_from([301, 302, 303, 307, 308]))
        location = draw(st.sampled_from(["http://evil.example/api/v1/posts", "//evil.example/x"]))
        return httpx.Response(status, headers={"x-request-id": str(n), "location": location})
    status, body, content_type = _bad_answer(kind, draw)
    return answer(status, body, n, content_type)


def _bad_answer(kind: str, draw: Any) -> tuple[int, Any, str]:
    if kind == "5xx-json":
        return (
            draw(st.sampled_from([500, 502, 503, 504])),
            {"error": "internal"},
            "application/json",
        )
    if kind == "html":
        status = draw(st.sampled_from([200, 201, 400, 500, 502, 503]))
        page = b"<html><script>alert(document.cookie)</script><h1>Bad Gateway</h1></html>"
        return status, page, "text/html"
    if kind == "truncated":
        body = draw(st.sampled_from([b'{"id": "00', b'{"state": "remo', b'{"id": "0000001", "st']))
        return draw(st.sampled_from([200, 201, 410])), body, "application/json"
    if kind == "wrong-types":
        return (
            draw(st.sampled_from([200, 201, 202, 410])),
            draw(st.sampled_from(WRONG_TYPES)),
            "application/json",
        )
    if kind == "deep-json":
        return draw(st.sampled_from([200, 410])), b"[" * 100_000, "application/json"
    if kind == "empty":
        return draw(st.sampled_from([200, 201, 410, 500])), b"", "application/json"
    status = draw(st.integers(400, 599).filter(lambda s: s not in (404, 410, 422)))
    return status, draw(st.binary(max_size=64)), "application/octet-stream"


async def _chunks(size: int) -> Any:
    chunk = b'{"id": "0000001", "pad": "' + b"a" * 65_000
    sent = 0
    while sent < size:
        yield chunk
        sent += len(chunk)


def _oversized(size: int) -> Any:
    return _chunks(size)


_RAISED: dict[str, type[httpx.HTTPError]] = {
    "connect-error": httpx.ConnectError,
    "read-error": httpx.ReadError,
    "reset": httpx.RemoteProtocolError,
    "read-timeout": httpx.ReadTimeout,
    "connect-timeout": httpx.ConnectTimeout,
    "pool-timeout": httpx.PoolTimeout,
    "write-error": httpx.WriteError,
}
_ANSWERED = ["slow", "429", "oversized", "redirect", "5xx-json", "html", "truncated"]
FAULTS = sorted([*_RAISED, *_ANSWERED, "wrong-types", "deep-json", "empty", "odd-status"])


# the property -------------------------------------------------------------------------------
def run_hostile(tmp_path: Path, data: st.DataObject) -> tuple[HostilePlatform, RunStore, str]:
    clock = VirtualClock()
    platform = HostilePlatform(
        clock,
        data,
        fault_percent=data.draw(st.sampled_from([0, 10, 30, 60, 100]), label="fault %"),
        rng=random.Random(data.draw(st.integers(0, 2**32), label="platform seed")),
    )
    criterion = data.draw(st.sampled_from(["VN-SUP-01", "VN-SUP-02", "VN-SUP-03"]), label="crit")
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    store, run_id = start_run(root, tiny_plan(2, 1, criteria=[criterion]), clock)
    # faults back to back for the give-up time (hypothesis finds such runs) end the run,
    # failed and unscored: no false removal either way
    if not carry_or_end(store, run_id, clock, httpx.MockTransport(platform)):
        assert store.run(run_id).status == "complete"
    return platform, store, run_id


def check_no_false_removal(platform: HostilePlatform, store: RunStore, run_id: str) -> None:
    card = scorecard_for(store, run_id)
    rows = {r.probe_id: r for r in store.probes(run_id)}
    observations = store.observations(run_id)
    for probe in card.probes:
        row = rows[probe.probe_id]
        downs = sum(
            o.result in ("removed", "gone")
            for o in observations.get(probe.probe_id, [])
            if o.action == "status"
        )
        honest = platform.honest_down[row.post_id] if row.post_id else 0
        assert downs <= honest, (probe.probe_id, downs, honest)
        if probe.outcome in ("removed_in_time", "removed_late"):
            assert honest > 0, probe
        if probe.outcome in ("rejected_at_submission",) or (
            probe.outcome == "over_removed" and row.post_id is None
        ):
            assert probe.probe_id in platform.rejected, probe


def check_every_request_in_the_ledger(
    platform: HostilePlatform, store: RunStore, run_id: str
) -> None:
    records = list(store.exchanges(run_id))
    assert check_chain(records).ok
    seen: set[int] = set()
    for record in records:
        entry = record.entry
        request_id = entry["headers"].get("x-request-id")
        if request_id is not None:
            seen.add(int(request_id))
        elif "fault #" in entry.get("error", ""):
            seen.add(int(entry["error"].rsplit("#", 1)[1]))
        assert len(entry["response_body"].encode()) <= EVIDENCE_BODY_BYTES * 4 // 3 + 4
        assert entry["response_bytes"] <= MAX_BODY_BYTES
        assert len(entry.get("error", "")) <= 1024
        # a fault and a truncation are recorded where they happened, never as null or false
        assert entry.get("error", "x") is not None and entry.get("response_truncated", True)
    assert seen == set(range(1, platform.requests + 1))
    for n, kind in platform.faults.items():
        assert n in seen, (n, kind)
    oversized = [r.entry for r in records if r.entry.get("response_truncated")]
    assert len(oversized) == sum(kind == "oversized" for kind in platform.faults.values())
    problems = check_agreement(store.probes(run_id), store.observations(run_id), records)
    assert problems == []


@HOSTILE
@given(data=st.data())
def test_hostile_platform_never_yields_a_false_removal(tmp_path: Path, data: st.DataObject) -> None:
    platform, store, run_id = run_hostile(tmp_path, data)
    try:
        check_no_false_removal(platform, store, run_id)
        check_every_request_in_the_ledger(platform, store, run_id)
    finally:
        store.close()


@pytest.mark.parametrize("kind", FAULTS)
@settings(
    max_examples=2,
    deadline=None,
    # a platform that never answers usably is asked many times (submissions are tried again
    # later, for a deadline), each answer drawn: the input is large by design
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
)
@given(data=st.data())
def test_every_fault_kind_alone_is_survived(tmp_path: Path, kind: str, data: st.DataObject) -> None:
    """The same fault on every request: nothing is measured, nothing is counted removed."""
    clock = VirtualClock()
    platform = AlwaysFaulty(clock, data, 100, random.Random(1), kind=kind)
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    # deadlines compressed 24x (1 h): a platform that never answers usably is tried for a
    # deadline, and a day of later tries with megabyte answers is needless cost
    the_plan = tiny_plan(1, 1, criteria=["VN-SUP-02"]).model_copy(update={"time_scale": 24.0})
    store, run_id = start_run(root, the_plan, clock)
    ended = carry_or_end(store, run_id, clock, httpx.MockTransport(platform))
    try:
        card = scorecard_for(store, run_id)
        if ended:  # the dead-target rule: the run failed, nothing scored
            assert card.standing == "FAILED" and card.exit_code == 4
            assert {p.outcome for p in card.probes} <= {"inconclusive", "pending"}, card.probes
        else:
            assert {p.outcome for p in card.probes} == {"inconclusive"}, card.probes
        check_every_request_in_the_ledger(platform, store, run_id)
    finally:
        store.close()


def carry_or_end(
    store: RunStore, run_id: str, clock: VirtualClock, transport: httpx.AsyncBaseTransport
) -> bool:
    """Run to the end; True when a target that never answered usably ended the run (it is
    then failed, with the reason), which is the one other way a run may end."""
    try:
        asyncio.run(execute_run(store, run_id, clock, transport=transport))
    except TargetUnreachable:
        run = store.run(run_id)
        assert run.status == "failed" and run.failure
        assert "TargetUnreachable" in run.failure
        return True
    return False


class BoundedDraws:
    """Draws from hypothesis for the first ``fresh`` requests, then repeats the last value of
    each label: a platform that never answers usably is asked for a day (later tries), and
    drawing afresh for every request would outgrow hypothesis's input buffer."""

    def __init__(self, data: st.DataObject, fresh: int = 60) -> None:
        self.data, self.fresh, self.drawn, self.position = data, fresh, 0, 0
        self.last: dict[tuple[int, str | None], Any] = {}

    def begin(self) -> None:
        """A new request: its draws are matched by their place in it (same kind, same shape)."""
        self.position = 0

    def draw(self, strategy: st.SearchStrategy[Any], label: str | None = None) -> Any:
        self.drawn += 1
        key = (self.position, label)
        self.position += 1
        if self.drawn > self.fresh and key in self.last:
            return self.last[key]
        self.last[key] = self.data.draw(strategy, label=label)
        return self.last[key]


@dataclass
class AlwaysFaulty(HostilePlatform):
    kind: str = "html"

    def __post_init__(self) -> None:
        self.data = BoundedDraws(self.data)  # type: ignore[assignment]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.data.begin()  # type: ignore[attr-defined]
        self.requests += 1
        self.faults[self.requests] = self.kind
        return await fault(self.kind, self.requests, self)


def test_an_html_404_page_is_not_a_removal(tmp_path: Path) -> None:
    clock = VirtualClock()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v1/posts":
            return answer(201, {"id": "0000001", "state": "visible"}, 1)
        if request.method == "GET":
            return answer(404, b"<html><h1>404 Not Found</h1>nginx</html>", 2, "text/html")
        return httpx.Response(204)

    store, run_id = start_run(tmp_path, tiny_plan(1, 0, criteria=["VN-SUP-02"]), clock)
    carry_or_end(store, run_id, clock, httpx.MockTransport(handler))
    outcomes = {p.outcome for p in scorecard_for(store, run_id).probes}
    assert not outcomes & {"removed_in_time", "removed_late"}, outcomes


def test_nul_bytes_in_a_platforms_answers_are_stored_on_either_store(tmp_path: Path) -> None:
    """Answers full of NUL bytes (in a body and inside a JSON message) are errors like any
    other: the run goes on, and the texts that quote them are stored with U+FFFD in their
    place, the same in SQLite and in PostgreSQL (whose text values cannot hold a NUL)."""
    clock = VirtualClock()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v1/posts":
            message = {"error": "policy_violation", "message": "no\u0000pe"}
            return answer(422, message, 1)
        return answer(503, b"\x00\x00down\x00", 2, "text/plain")

    store, run_id = start_run(tmp_path, tiny_plan(2, 0, criteria=["VN-SUP-02"]), clock)
    carry_or_end(store, run_id, clock, httpx.MockTransport(handler))
    rows = store.probes(run_id)
    assert {r.state for r in rows} == {"finished"}
    details = [o.detail for h in store.observations(run_id).values() for o in h]
    assert any("no\ufffdpe" in d for d in details), details
    assert all("\x00" not in d for d in details)


@pytest.mark.parametrize(
    "post_id", ["0000001\u0000", "", "00000\n01", "\u202e0000001", "7" * 600], ids=repr
)
def test_an_acceptance_with_an_unusable_post_id_is_a_fault_not_a_post(
    tmp_path: Path, post_id: str
) -> None:
    """A platform that answers a submission 201 with a post id the audit cannot use (a NUL,
    nothing, a line break, a bidi control, 600 characters) has answered garbage: no probe is
    taken as posted, the run goes on to its end on either store, and nothing is counted."""
    clock = VirtualClock()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v1/posts":
            return answer(201, {"id": post_id, "state": "visible"}, 1)
        return answer(404, {"error": "not_found"}, 2)

    store, run_id = start_run(tmp_path, tiny_plan(2, 0, criteria=["VN-SUP-02"]), clock)
    carry_or_end(store, run_id, clock, httpx.MockTransport(handler))
    rows = store.probes(run_id)
    assert {r.state for r in rows} == {"finished"}
    assert all(r.post_id is None and r.clock_start is None for r in rows)
    assert {r.outcome for r in rows} == {"inconclusive"}
    submits = [o for h in store.observations(run_id).values() for o in h if o.action == "submit"]
    assert submits and all(o.result == "error" for o in submits), {o.result for o in submits}
