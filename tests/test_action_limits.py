"""Per-action limits in a plan's target: a platform that rate-limits posting hard but not
looking. The submissions get their own rate and more attempts; status looks are not held to
the posting rate."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from audit.clock import VirtualClock
from audit.plan import ActionLimits, Target
from audit.runner import execute_run
from audit.store_protocol import RunStore
from tests.evidence_support import start_run, tiny_plan

pytestmark = pytest.mark.both_stores


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )


class PostingLimited:
    """Each submission is refused with 429 (Retry-After: 1) six times before it is taken."""

    def __init__(self) -> None:
        self.refused: Counter[str] = Counter()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v1/posts":
            key = request.headers["idempotency-key"]
            if self.refused[key] < 6:
                self.refused[key] += 1
                return _json(429, {"error": "rate_limited"}, {"retry-after": "1"})
            return _json(201, {"id": key[:12], "state": "visible"})
        if request.method == "GET" and request.url.path == "/api/v1/posts":
            return _json(404, {"error": "not_found"})
        if request.method == "GET":
            return _json(200, {"state": "visible"})
        return httpx.Response(204)


def _run(tmp_path: Path, actions: dict[str, ActionLimits]) -> tuple[list[dict], RunStore, str]:  # type: ignore[type-arg]
    clock = VirtualClock()
    plan = tiny_plan(4, 0, criteria=["VN-SUP-02"])
    target = plan.targets[0].model_copy(update={"rate_limit": None, "actions": actions})
    plan = plan.model_copy(update={"targets": [target]})
    store, run_id = start_run(tmp_path, plan, clock)
    transport = httpx.MockTransport(PostingLimited())
    asyncio.run(execute_run(store, run_id, clock, transport=transport, give_up=86_400.0))
    entries = [r.entry for r in store.exchanges(run_id)]
    return entries, store, run_id


def test_a_posting_limit_of_its_own_and_more_attempts(tmp_path: Path) -> None:
    limits = {"submit": ActionLimits(rate_limit=0.5, attempts=8)}
    entries, store, run_id = _run(tmp_path / "limited", limits)
    submits = sorted(e["started_at"] for e in entries if e["action"] == "submit")
    # every submission went through within its own attempts: none had to wait for a later try
    assert all(r.post_id is not None for r in store.probes(run_id))
    results = [o.result for obs in store.observations(run_id).values() for o in obs]
    assert "error" not in results
    gaps = [b - a for a, b in itertools.pairwise(submits)]
    assert min(gaps) >= 2.0 - 1e-6  # 0.5 per second, the posting rate
    looks = sorted(e["started_at"] for e in entries if e["action"] == "status")
    look_gaps = [b - a for a, b in itertools.pairwise(looks)]
    assert min(look_gaps) < 2.0  # looks are not held to the posting rate


def test_without_more_attempts_each_submission_needs_a_later_try(tmp_path: Path) -> None:
    entries, store, run_id = _run(tmp_path / "default", {})
    submits = [e for e in entries if e["action"] == "submit"]
    first_tries = [e for e in submits if e["attempt"] == 1]
    assert len(first_tries) > 4  # four attempts each time: tried again later, durably
    assert all(r.post_id is not None for r in store.probes(run_id))


def test_action_limits_are_checked() -> None:
    with pytest.raises(ValidationError):
        Target(name="t", base_url="http://x.test", actions={"post": {"attempts": 3}})  # type: ignore[dict-item]
    with pytest.raises(ValidationError):
        ActionLimits(attempts=0)
