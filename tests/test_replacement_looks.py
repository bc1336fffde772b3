"""A fault on a decisive look decides nothing: the engine looks again soon (issue 13.2)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from audit.clock import VirtualClock
from audit.runner import execute_run
from tests.evidence_support import start_run, tiny_plan


def _json(status: int, body: object) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


class FlakyAtTheEnd:
    """Posts stay up; once the deadline has passed, the first ``faults`` looks answer 503."""

    def __init__(self, clock: VirtualClock, faults: int) -> None:
        self.clock = clock
        self.faults = faults
        self.created: float | None = None
        self.deadline: float | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.created = self.clock.now()
            return _json(201, {"id": "p1", "state": "visible"})
        if request.method == "GET" and request.url.path == "/api/v1/posts":
            return _json(404, {"error": "not_found"})  # a lookup: the run's preflight
        if request.method == "GET":
            assert self.deadline is not None and self.created is not None
            if self.clock.now() >= self.created + self.deadline and self.faults:
                self.faults -= 1
                return httpx.Response(503)
            return _json(200, {"state": "visible"})
        return httpx.Response(204)


def _run(tmp_path: Path, faults: int) -> tuple[str | None, list[tuple[str, float, float]]]:
    clock = VirtualClock()
    platform = FlakyAtTheEnd(clock, faults)
    store, run_id = start_run(tmp_path, tiny_plan(1, 0, criteria=["VN-SUP-02"]), clock)
    (row,) = store.probes(run_id)
    platform.deadline = row.deadline_s
    # the dead-target rule (which would end a run failing this long) is not what is tested
    transport = httpx.MockTransport(platform)
    asyncio.run(execute_run(store, run_id, clock, transport=transport, give_up=30 * 86400.0))
    (row,) = store.probes(run_id)
    looks = [
        (o.result, o.started_at, o.ended_at)
        for o in store.observations(run_id)[row.probe_id]
        if o.action == "status"
    ]
    return row.outcome, looks


def test_a_failed_deadline_look_is_replaced_and_measured(tmp_path: Path) -> None:
    # each look is 4 attempts of 503, so 1 failed look (4 faults) then a replacement that answers
    outcome, looks = _run(tmp_path, faults=4)
    failed = [i for i, look in enumerate(looks) if look[0] == "error"]
    assert len(failed) == 1
    replacement = looks[failed[0] + 1]
    assert replacement[0] == "visible"
    assert replacement[1] - looks[failed[0]][2] <= 10.0  # soon, not at the next planned look
    assert outcome == "survived"


def test_an_unrecoverable_end_of_observation_is_inconclusive(tmp_path: Path) -> None:
    outcome, looks = _run(tmp_path, faults=10_000)
    assert looks[-1][0] == "error"
    assert sum(1 for look in looks if look[0] == "error") > 2  # replaced before giving up
    assert outcome == "inconclusive"
