"""Submissions are spread over the plan's window with jitter, and the rate limit holds."""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections import Counter
from pathlib import Path

import pytest

from audit.clock import SystemClock, VirtualClock
from audit.runner import cleanup_run, create_runs, execute_run
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.sandbox.server import SandboxServer
from tests.durable_support import plan, planned_run, virtual_platform
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores

HOUR = 3600.0


def test_submissions_are_spread_over_the_window_in_mixed_order(tmp_path: Path) -> None:
    clock = VirtualClock()
    store = open_store(tmp_path / "audit.sqlite")
    start = clock.now()
    run_id = planned_run(store, plan(40, 10, window="PT2H"), clock)
    rows = sorted(store.probes(run_id), key=lambda r: r.scheduled_at)
    times = [r.scheduled_at - start for r in rows]

    assert len(rows) == 150
    assert min(times) >= 0
    assert max(times) <= 2 * HOUR
    per_quarter = Counter(min(int(t // (HOUR / 2)), 3) for t in times)
    assert all(30 <= per_quarter[q] <= 45 for q in range(4))  # no burst, no gap
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len({round(g, 3) for g in gaps}) > 100  # jittered, not a metronome
    criteria = [r.criterion_id for r in rows]
    longest = max(len(list(group)) for _, group in itertools.groupby(criteria))
    assert longest <= 8  # criteria interleaved, not one block after another
    assert {r.expectation for r in rows[:30]} == {"violating", "control"}


def test_rate_limit_spaces_requests_on_the_virtual_clock(tmp_path: Path) -> None:
    """Everything is due at once (a one-second window), the target allows 2 requests per
    second: no two requests start closer than half a second. One request at a time, since the
    virtual clock jumps for every task when one of them sleeps."""
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    the_plan = plan(5, 2, window="PT1S", rate_limit=2.0, concurrency=1)
    run_id = planned_run(store, the_plan, clock)

    asyncio.run(execute_run(store, run_id, clock, transport=platform.transport))

    starts = sorted(r.entry["started_at"] for r in store.exchanges(run_id))
    assert len(starts) > 50
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.5 - 1e-6
    assert set(store.state_counts(run_id)) == {"finished"}


@pytest.mark.slow
def test_rate_limit_holds_under_concurrency_in_real_time(tmp_path: Path) -> None:
    """Fifteen probes due at once against a real server, 16 requests in flight allowed, 20
    requests per second: no one-second window holds more than 21 request starts (three
    seconds of work, then a cleanup, rate-limited too)."""
    config = load_sandbox_config(default_config_path(), time_scale=3600.0)
    with SandboxServer(config) as server:
        clock = SystemClock()
        store = open_store(tmp_path / "audit.sqlite")
        the_plan = plan(
            4, 1, base_url=server.base_url, window="PT1S", rate_limit=20.0, time_scale=3600.0
        )
        (prepared,) = create_runs(store, the_plan, None, clock)
        stop_at = clock.now() + 3.0
        asyncio.run(execute_run(store, prepared.run_id, clock, stop_at=stop_at))
        asyncio.run(cleanup_run(store, prepared.run_id, clock))
    starts = sorted(r.entry["started_at"] for r in store.exchanges(prepared.run_id))
    assert len(starts) > 50
    busiest = max(bisect.bisect_left(starts, t + 1.0) - i for i, t in enumerate(starts))
    assert busiest <= 21
