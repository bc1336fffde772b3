"""``cleanup`` leaves nothing of a run up on the platform, wherever the run was stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from audit.clock import VirtualClock
from audit.runner import cleanup_run, execute_run
from audit.store_protocol import ProbeUpdate, RunStore
from tests.durable_support import plan, planned_run, posts_by_key, virtual_platform
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores

DAY = 86_400.0


class FailingWithdrawals(httpx.AsyncBaseTransport):
    """The sandbox, except that every DELETE answers 503."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(503, json={"error": "unavailable"})
        return await self.inner.handle_async_request(request)


def _assert_nothing_up(store: RunStore, run_id: str, truth: dict[str, object]) -> None:
    keys = {row.probe_id for row in store.probes(run_id)}
    posts = [p for p in posts_by_key(truth).values() if p["idempotency_key"] in keys]
    assert all(p["withdrawn_at"] is not None for p in posts)
    assert store.probes_up(run_id) == []
    assert {row.state for row in store.probes(run_id)} == {"finished"}


@pytest.mark.parametrize("stop_after", [0.0, 60.0, 900.0, 3 * 3600.0, DAY, 1.2 * DAY, 2 * DAY])
def test_cleanup_after_a_run_stopped_at_any_point(tmp_path: Path, stop_after: float) -> None:
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(6, 2), clock)
    stop_at = clock.now() + stop_after
    asyncio.run(execute_run(store, run_id, clock, stop_at=stop_at, transport=platform.transport))
    posted_before = len(platform.truth()["posts"])

    report = asyncio.run(cleanup_run(store, run_id, clock, transport=platform.transport))

    assert report.clean
    _assert_nothing_up(store, run_id, platform.truth())
    expected = "complete" if stop_after >= 2 * DAY else "cancelled"
    assert store.run(run_id).status == expected
    # a stopped run posts nothing more, whoever tries to carry it on
    clock.advance(DAY)
    assert asyncio.run(execute_run(store, run_id, clock, transport=platform.transport)) is None
    assert len(platform.truth()["posts"]) == posted_before


def test_cleanup_reconciles_a_probe_interrupted_mid_submission(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(2, 1), clock)
    row = store.probes(run_id)[0]
    change = ProbeUpdate(state="submitting", submitted_at=clock.now())
    store.update_probe(run_id, row.probe_id, None, change)

    async def reach_platform() -> None:
        async with httpx.AsyncClient(transport=platform.transport, base_url="http://s") as c:
            await c.post(
                "/api/v1/posts",
                json={"text": row.probe["text"]},
                headers={"Idempotency-Key": row.probe_id},
            )

    asyncio.run(reach_platform())
    report = asyncio.run(cleanup_run(store, run_id, clock, transport=platform.transport))

    assert report.clean
    post = posts_by_key(platform.truth()).get(row.probe_id)
    if post is not None:
        assert post["withdrawn_at"] is not None
        assert post["submissions"] == 1
        assert row.probe_id in report.withdrawn
    assert len(report.cancelled) == len(store.probes(run_id)) - 1
    _assert_nothing_up(store, run_id, platform.truth())


def test_failed_withdrawals_are_reported_and_a_second_cleanup_finishes(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(4, 1), clock)
    stop_at = clock.now() + 3 * 3600
    asyncio.run(execute_run(store, run_id, clock, stop_at=stop_at, transport=platform.transport))
    failing = FailingWithdrawals(platform.transport)

    first = asyncio.run(cleanup_run(store, run_id, clock, transport=failing))

    assert not first.clean
    assert first.failed
    assert len(store.probes_up(run_id)) == len(first.failed)
    second = asyncio.run(cleanup_run(store, run_id, clock, transport=platform.transport))
    assert second.clean
    assert sorted(second.withdrawn) == sorted(first.failed)
    _assert_nothing_up(store, run_id, platform.truth())


def test_engine_withdrawal_failures_are_left_for_cleanup(tmp_path: Path) -> None:
    """The sweeper after each verdict retries with growing delays, then gives up and says so;
    ``cleanup`` is what takes the post down then."""
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(2, 1), clock)
    failing = FailingWithdrawals(platform.transport)

    assert asyncio.run(execute_run(store, run_id, clock, transport=failing)) is None

    up = store.probes_up(run_id)
    assert up
    attempts = store.observations(run_id)[up[0].probe_id]
    assert [o.result for o in attempts if o.action == "withdraw"] == ["failed"] * 5
    report = asyncio.run(cleanup_run(store, run_id, clock, transport=platform.transport))
    assert report.clean
    _assert_nothing_up(store, run_id, platform.truth())
