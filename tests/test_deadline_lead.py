"""Exact deadline verdicts by default: the last look before the deadline is placed from the
target's measured lateness, so its answer arrives before the deadline and no share of the
deadline is left undecided.

A platform whose every answer takes 0.4 s (virtual time) removes each post 5 s before its
24 h deadline. The old fixed margin (0.1 % of the deadline, 86 s) left that removal undecided
between the look before and the look at the deadline; placed from the measured lateness, the
last look before the deadline starts a little over a second before it, its answer arrives
before it, and the removal is decided in time.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.clock import VirtualClock
from audit.polling import LEAD_FACTOR, LEAD_MIN, PollingPolicy, lead_from, poll_offsets
from audit.runner import execute_run
from tests.evidence_support import start_run, tiny_plan

ANSWER = 0.4  # seconds every answer takes
REMOVED_BEFORE = 5.0  # seconds before the deadline each post is removed


def _json(status: int, body: object) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


class SlowPlatform:
    def __init__(self, clock: VirtualClock, deadline: float) -> None:
        self.clock, self.deadline = clock, deadline
        self.created: dict[str, float] = {}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.clock.advance(ANSWER)
        path = request.url.path
        if request.method == "POST" and path == "/api/v1/posts":
            key = request.headers["idempotency-key"]
            self.created.setdefault(key, self.clock.now())
            return _json(201, {"id": key, "state": "visible"})
        if request.method == "GET" and path == "/api/v1/posts":
            return _json(404, {"error": "not_found"})
        if request.method == "GET":
            key = path.rsplit("/", 1)[-1]
            if self.clock.now() >= self.created[key] + self.deadline - REMOVED_BEFORE:
                return _json(410, {"id": key, "state": "removed", "reason": "policy"})
            return _json(200, {"id": key, "state": "visible"})
        return httpx.Response(204)


def test_a_removal_seconds_before_the_deadline_is_decided_in_time(tmp_path: Path) -> None:
    clock = VirtualClock()
    store, run_id = start_run(tmp_path, tiny_plan(6, 0, criteria=["VN-SUP-02"]), clock)
    deadline = store.probes(run_id)[0].deadline_s
    platform = SlowPlatform(clock, deadline)
    asyncio.run(execute_run(store, run_id, clock, transport=httpx.MockTransport(platform)))
    observations = store.observations(run_id)
    for row in store.probes(run_id):
        assert row.outcome == "removed_in_time", (row.probe_id, row.outcome, row.note)
        assert row.deadline_at is not None
        before = [
            o
            for o in observations[row.probe_id]
            if o.action == "status" and o.started_at < row.deadline_at
        ]
        last = before[-1]
        assert last.ended_at < row.deadline_at  # its answer arrived before the deadline
        assert row.deadline_at - last.started_at <= 2.0  # not 86 s: a few answers' time


def test_a_plan_margin_still_fixes_the_last_look() -> None:
    import random

    policy = PollingPolicy(margin=0.001)
    offsets = poll_offsets(86_400.0, 0.0, policy, random.Random(1), lead=0.05)
    assert offsets[-2] == 86_400.0 - 86.4 and offsets[-1] == 86_400.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1.0, max_value=1e4, allow_nan=False), max_size=80))
def test_lead_is_at_least_the_floor_and_covers_the_usual_lateness(lateness: list[float]) -> None:
    lead = lead_from(lateness)
    assert lead >= LEAD_MIN
    if lateness:
        ordered = sorted(max(0.0, x) for x in lateness)
        within = sum(1 for x in ordered if x * LEAD_FACTOR <= lead)
        assert within >= 0.9 * len(ordered)  # nine in ten recent answers would come in time
