"""Probes left in ``submitting`` by a crash are reconciled, never blindly posted twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

from audit.clock import VirtualClock
from audit.evidence.bundle import verify_store
from audit.runner import execute_run
from audit.store_protocol import ProbeUpdate, RunStore
from tests.durable_support import plan, planned_run, posts_by_key, virtual_platform
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores


def _crash_mid_submission(store: RunStore, run_id: str, clock: VirtualClock) -> str:
    """The first probe due: its intent stored, as if the process died during the POST."""
    row = min(store.probes(run_id), key=lambda r: r.next_at or 0)
    clock.advance((row.next_at or clock.now()) - clock.now())
    change = ProbeUpdate(state="submitting", submitted_at=clock.now(), next_at=clock.now() + 30)
    store.update_probe(run_id, row.probe_id, None, change)
    return row.probe_id


def _post(base: httpx.Client, probe: dict[str, str], key: str) -> None:
    answer = base.post(
        "/api/v1/posts", json={"text": probe["text"]}, headers={"Idempotency-Key": key}
    )
    assert answer.status_code in (201, 422)


def test_post_that_reached_the_platform_is_found_not_reposted(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(2, 1), clock)
    probe_id = _crash_mid_submission(store, run_id, clock)
    probe = store.probe(run_id, probe_id).probe

    async def reach_platform() -> None:
        async with httpx.AsyncClient(transport=platform.transport, base_url="http://s") as c:
            await c.post(
                "/api/v1/posts", json={"text": probe["text"]}, headers={"Idempotency-Key": probe_id}
            )

    asyncio.run(reach_platform())
    asyncio.run(execute_run(store, run_id, clock, transport=platform.transport))

    post = posts_by_key(platform.truth()).get(probe_id)
    row = store.probe(run_id, probe_id)
    actions = [o.action for o in store.observations(run_id)[probe_id]]
    assert actions[0] == "lookup"
    assert "submit" not in actions and "resubmit" not in actions
    if post is not None:  # accepted: found by its key, watched, withdrawn, posted once
        assert post["submissions"] == 1
        assert row.post_id == post["id"]
        assert post["withdrawn_at"] is not None
    assert row.state == "finished"
    assert row.outcome is not None


def test_post_that_never_reached_the_platform_is_sent_once_with_its_key(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(2, 1), clock)
    probe_id = _crash_mid_submission(store, run_id, clock)

    asyncio.run(execute_run(store, run_id, clock, transport=platform.transport))

    actions = [o.action for o in store.observations(run_id)[probe_id]]
    assert actions[:2] == ["lookup", "resubmit"]
    truth = platform.truth()
    keys = [p["idempotency_key"] for p in truth["posts"]] + [
        b["idempotency_key"] for b in truth["blocked"]
    ]
    assert keys.count(probe_id) == 1
    assert all(p["submissions"] == 1 for p in truth["posts"])


def test_reconciliation_is_immediate_on_restart(tmp_path: Path) -> None:
    """The lock guarantees nobody else is submitting, so there is no reason to wait."""
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(2, 1), clock)
    probe_id = _crash_mid_submission(store, run_id, clock)
    crashed_at = clock.now()

    asyncio.run(execute_run(store, run_id, clock, until_idle=True, transport=platform.transport))

    lookup = store.observations(run_id)[probe_id][0]
    assert lookup.action == "lookup"
    assert lookup.ended_at == crashed_at


class _Untimed(httpx.AsyncBaseTransport):
    """A platform whose lookups by idempotency key never say when the post was made."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.inner.handle_async_request(request)
        if request.method != "GET" or "idempotency_key" not in request.url.params:
            return answer
        await answer.aread()
        body = json.loads(answer.content)
        body.pop("created_at", None)
        return httpx.Response(answer.status_code, json=body)


def test_a_post_found_without_its_time_is_judged_where_its_clock_allows(tmp_path: Path) -> None:
    """Every probe's POST reached the platform and the process died before recording the
    answer; on restart the lookups find every post, but the platform does not say when it made
    them. A triggered probe's clock starts at its filing, so it is filed and judged as ever; a
    proactive probe's clock started when the platform received the post, which is now
    unknowable: inconclusive, never judged from the tool's intent."""
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(8, 2), clock)
    rows = sorted(store.probes(run_id), key=lambda r: r.next_at or 0)
    clock.advance((rows[-1].next_at or clock.now()) - clock.now())
    for row in rows:
        change = ProbeUpdate(state="submitting", submitted_at=clock.now(), next_at=clock.now())
        store.update_probe(run_id, row.probe_id, None, change)

    async def reach_platform() -> None:
        async with httpx.AsyncClient(transport=platform.transport, base_url="http://s") as c:
            for row in rows:
                await _post_async(c, row.probe["text"], row.probe_id)

    asyncio.run(reach_platform())
    clock.advance(600.0)
    transport = _Untimed(platform.transport)
    asyncio.run(execute_run(store, run_id, clock, transport=transport))

    posts = posts_by_key(platform.truth())
    judged = Counter[str]()
    for row in store.probes(run_id):
        history = store.observations(run_id)[row.probe_id]
        assert history[0].action == "lookup"
        assert not {"submit", "resubmit"} & {o.action for o in history}
        post = posts.get(row.probe_id)
        if post is None:  # refused at upload: the lookup says so
            assert row.outcome in ("rejected_at_submission", "over_removed")
            continue
        assert post["submissions"] == 1 and post["withdrawn_at"] is not None
        if row.trigger == "proactive":
            assert row.outcome == "inconclusive"
            assert row.note == "found after a restart; when the platform received it is not known"
            assert row.clock_start is None
        else:
            assert row.clock_start is not None and row.clock_start >= history[0].ended_at
            assert row.deadline_at is not None
            removal = post["removal_at"]
            if row.expectation == "control":
                truth = "kept" if removal is None else "over_removed"
            elif removal is not None and removal <= row.deadline_at:
                truth = "removed_in_time"
            else:
                truth = "survived" if removal is None else "removed_late"
            assert row.outcome == truth, (row.probe_id, row.outcome, truth)
        judged[row.trigger] += 1
    assert judged["proactive"] and judged["notice"] and judged["order"], judged
    verified = verify_store(store, run_id)  # the ledger backs every clock and outcome
    assert verified.ok, verified.problems


async def _post_async(client: httpx.AsyncClient, text: str, key: str) -> None:
    answer = await client.post(
        "/api/v1/posts", json={"text": text}, headers={"Idempotency-Key": key}
    )
    assert answer.status_code in (201, 422)
