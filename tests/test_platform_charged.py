"""The platform is charged only for what it did: the clock starts at the accepted attempt, an
unreadable answer is a fault retried like a 5xx, an adapter's exception costs one probe's step,
and every exchange carries its probe id."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from audit.clock import VirtualClock
from audit.runner import execute_run
from tests.evidence_support import start_run, tiny_plan


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


class Platform:
    """The sandbox API, minimal: posts stay up; the first submissions meet 429s."""

    def __init__(self, clock: VirtualClock, refusals: int = 0, truncations: int = 0) -> None:
        self.clock = clock
        self.refusals = refusals
        self.truncations = truncations
        self.created: dict[str, float] = {}
        self.posts = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v1/posts":
            if self.refusals:
                self.refusals -= 1
                return httpx.Response(429, headers={"retry-after": "5"})
            key = request.headers["idempotency-key"]
            if key not in self.created:
                self.posts += 1
                self.created[key] = self.clock.now()
            if self.truncations:
                self.truncations -= 1
                return httpx.Response(201, content=b'{"id": "00')
            return _json(201, {"id": key[:12], "state": "visible"})
        if request.method == "GET" and request.url.path == "/api/v1/posts":
            return _json(404, {"error": "not_found"})  # a lookup: the run's preflight
        if request.method == "GET":
            if self.truncations:
                self.truncations -= 1
                return httpx.Response(200, content=b'{"state": "vis')
            return _json(200, {"state": "visible"})
        return httpx.Response(204)


def test_clock_starts_at_the_accepted_attempt_not_the_intent(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = Platform(clock, refusals=3)
    store, run_id = start_run(tmp_path, tiny_plan(1, 0, criteria=["VN-SUP-02"]), clock)
    asyncio.run(execute_run(store, run_id, clock, transport=httpx.MockTransport(platform)))
    (row,) = store.probes(run_id)
    assert row.submitted_at is not None and row.clock_start is not None
    assert row.clock_start == platform.created[row.probe_id]
    assert row.clock_start - row.submitted_at >= 15.0  # three 429s waited out first


def test_truncated_answers_are_retried_not_read(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = Platform(clock, truncations=1)
    store, run_id = start_run(tmp_path, tiny_plan(1, 0, criteria=["VN-SUP-02"]), clock)
    asyncio.run(execute_run(store, run_id, clock, transport=httpx.MockTransport(platform)))
    (row,) = store.probes(run_id)
    assert platform.posts == 1
    assert row.post_id is not None  # the truncated 201 was retried (idempotent), not given up
    submits = [r.entry for r in store.exchanges(run_id) if r.entry["action"] == "submit"]
    assert len(submits) == 2 and submits[0]["error"].startswith("unreadable answer")


def test_every_exchange_of_a_probe_carries_its_probe_id(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = Platform(clock)
    store, run_id = start_run(tmp_path, tiny_plan(2, 1, criteria=["VN-SUP-02"]), clock)
    asyncio.run(execute_run(store, run_id, clock, transport=httpx.MockTransport(platform)))
    records = list(store.exchanges(run_id))
    per_probe = [r for r in records if r.entry["action"] in ("submit", "status", "withdraw")]
    assert {r.entry["action"] for r in per_probe} == {"submit", "status", "withdraw"}
    assert all(r.probe_id is not None for r in per_probe)


class Raising:
    """An adapter whose status raises: wraps the real one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.supports_idempotency = inner.supports_idempotency
        self.withdraw_removed = inner.withdraw_removed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def status(self, post_id: str, probe_id: str) -> Any:
        raise RuntimeError("adapter bug")


def test_an_adapter_exception_costs_only_the_probe_step(tmp_path: Path, monkeypatch: Any) -> None:
    import audit.runner

    real = audit.runner.build_adapter
    monkeypatch.setattr(audit.runner, "build_adapter", lambda *a, **k: Raising(real(*a, **k)))
    clock = VirtualClock()
    platform = Platform(clock)
    store, run_id = start_run(tmp_path, tiny_plan(1, 0, criteria=["VN-SUP-02"]), clock)
    upcoming = asyncio.run(
        execute_run(store, run_id, clock, transport=httpx.MockTransport(platform))
    )
    assert upcoming is None
    (row,) = store.probes(run_id)
    assert row.outcome == "inconclusive"
    errors = [o for o in store.observations(run_id)[row.probe_id] if o.result == "error"]
    assert errors and "RuntimeError: adapter bug" in errors[0].detail


def test_a_failed_last_look_does_not_make_a_survivor() -> None:
    from audit.outcomes import Outcome, ProbeFacts, classify_window

    facts = ProbeFacts("violating", True, False, 0.0, 100.0, observation_end=110.0)
    assert classify_window(facts, (100.0, None)).outcome is Outcome.INCONCLUSIVE
    assert classify_window(facts, (110.0, None)).outcome is Outcome.SURVIVED
    control = ProbeFacts("control", True, False, 0.0, 100.0, observation_end=110.0)
    assert classify_window(control, (100.0, None)).outcome is Outcome.INCONCLUSIVE


def test_a_post_seen_gone_is_not_withdrawn_again(tmp_path: Path) -> None:
    clock = VirtualClock()
    deletes: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return _json(201, {"id": "p1", "state": "visible"})
        if request.method == "DELETE":
            deletes.append(request.url.path)
            return httpx.Response(204)
        return _json(404, {"error": "not_found"})

    store, run_id = start_run(tmp_path, tiny_plan(1, 0, criteria=["VN-SUP-02"]), clock)
    asyncio.run(execute_run(store, run_id, clock, transport=httpx.MockTransport(handler)))
    (row,) = store.probes(run_id)
    assert row.outcome == "removed_in_time" and row.state == "finished"
    assert deletes == []
