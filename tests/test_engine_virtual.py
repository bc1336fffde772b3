"""The engine on the virtual clock against the in-process reference sandbox.

A 24-hour-deadline audit of 1,000 probes runs here in seconds; runs interrupted at random points
and resumed end exactly as an uninterrupted run of the same stored run does.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import audit.runner
from audit.clock import VirtualClock
from audit.engine import EngineSettings
from audit.outcomes import Outcome
from audit.runner import execute_run
from audit.store import ProbeRow
from audit.store_protocol import RunStore
from tests.durable_support import (
    copy_store,
    outcomes,
    plan,
    planned_run,
    posts_by_key,
    quiet_asgi,
    virtual_platform,
)
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores

DAY = 86_400.0


def _check_against_truth(row: ProbeRow, post: dict[str, Any] | None) -> None:
    """Each outcome agrees with what the platform really did."""
    outcome = Outcome(row.outcome) if row.outcome else None
    if outcome in (Outcome.REJECTED_AT_SUBMISSION, Outcome.OVER_REMOVED) and post is None:
        return  # blocked at upload (a control blocked is over-removed too)
    assert post is not None, row.probe_id
    assert post["submissions"] == 1, row.probe_id
    assert post["withdrawn_at"] is not None, row.probe_id
    assert row.deadline_at is not None
    removal = post["removal_at"]
    removed_in_time = removal is not None and removal <= row.deadline_at
    if outcome is Outcome.REMOVED_IN_TIME:
        assert removed_in_time
    elif outcome in (Outcome.REMOVED_LATE, Outcome.SURVIVED, Outcome.KEPT):
        assert not removed_in_time
    elif outcome is Outcome.OVER_REMOVED:
        assert removal is not None


def test_thousand_probe_24h_audit_in_virtual_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet_asgi(monkeypatch)
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(300, 34), clock)
    start = clock.now()

    upcoming = asyncio.run(execute_run(store, run_id, clock, transport=platform.transport))

    assert upcoming is None
    rows = store.probes(run_id)
    assert len(rows) == 1002
    assert {r.state for r in rows} == {"finished"}
    assert store.run(run_id).status == "complete"
    assert all(r.deadline_s == DAY for r in rows)
    assert clock.now() - start > DAY  # a day of platform time went by
    posts = posts_by_key(platform.truth())
    accepted = [r for r in rows if r.post_id is not None]
    assert len(posts) == len(accepted)
    for row in rows:
        _check_against_truth(row, posts.get(row.probe_id))
    looks = Counter(o.probe_id for o in _status_looks(store, run_id))
    assert max(looks.values()) <= 16
    counts = Counter(r.outcome for r in rows)
    assert counts[Outcome.REMOVED_IN_TIME] > 500
    assert counts[Outcome.INCONCLUSIVE] <= 5


def _status_looks(store: RunStore, run_id: str) -> list[Any]:
    return [o for obs in store.observations(run_id).values() for o in obs if o.action == "status"]


def _twins(tmp_path: Path, violating: int = 12, controls: int = 4) -> tuple[Path, Path, str]:
    clock = VirtualClock()
    first = tmp_path / "a" / "audit.sqlite"
    store = open_store(first)
    run_id = planned_run(store, plan(violating, controls), clock)
    store.close()
    second = tmp_path / "b" / "audit.sqlite"
    copy_store(first, second)
    return first, second, run_id


async def _interrupted(store: RunStore, run_id: str, rng: random.Random, stops: int) -> int:
    """Run, cancelling the engine after a random number of loop turns, until it finishes."""
    clock = VirtualClock()
    platform = virtual_platform(clock)
    interruptions = 0
    while True:
        task = asyncio.create_task(execute_run(store, run_id, clock, transport=platform.transport))
        for _ in range(rng.randint(1, 40) if interruptions < stops else 10**9):
            if task.done():
                break
            await asyncio.sleep(0)
        if task.done():
            assert task.result() is None
            _assert_posted_once(platform.truth())
            return interruptions
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        interruptions += 1


def _assert_posted_once(truth: dict[str, Any]) -> None:
    assert all(p["submissions"] == 1 for p in truth["posts"])
    assert all(p["withdrawn_at"] is not None for p in truth["posts"])


def test_interrupted_virtual_run_ends_as_the_uninterrupted_one(tmp_path: Path) -> None:
    first, second, run_id = _twins(tmp_path)
    reference = open_store(first)
    clock = VirtualClock()
    platform = virtual_platform(clock)
    asyncio.run(execute_run(reference, run_id, clock, transport=platform.transport))
    _assert_posted_once(platform.truth())

    interrupted = open_store(second)
    count = asyncio.run(_interrupted(interrupted, run_id, random.Random(3), stops=40))

    assert count == 40
    assert outcomes(interrupted, run_id) == outcomes(reference, run_id)
    assert None not in outcomes(reference, run_id).values()


def test_engine_holding_few_probes_ends_as_one_holding_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probes go back to the store when their next step falls after the last one read, and
    are read again in their turn: with three held at a time (and interruptions), every
    outcome is the one of an engine holding the whole run, and nothing is posted twice."""
    first, second, run_id = _twins(tmp_path, violating=20, controls=6)
    third = tmp_path / "c" / "audit.sqlite"
    copy_store(first, third)
    reference = open_store(first)
    clock = VirtualClock()
    platform = virtual_platform(clock)
    asyncio.run(execute_run(reference, run_id, clock, transport=platform.transport))
    _assert_posted_once(platform.truth())

    few = functools.partial(EngineSettings, resident=3)
    monkeypatch.setattr(audit.runner, "EngineSettings", few)
    held, clock = open_store(second), VirtualClock()
    platform = virtual_platform(clock)
    asyncio.run(execute_run(held, run_id, clock, transport=platform.transport))
    _assert_posted_once(platform.truth())
    interrupted = open_store(third)
    assert asyncio.run(_interrupted(interrupted, run_id, random.Random(5), stops=10)) == 10

    assert outcomes(held, run_id) == outcomes(reference, run_id)
    assert held.action_counts(run_id) == reference.action_counts(run_id)
    assert outcomes(interrupted, run_id) == outcomes(reference, run_id)
    assert None not in outcomes(reference, run_id).values()


def test_until_idle_does_only_what_is_due(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(3, 1), clock)

    upcoming = asyncio.run(
        execute_run(store, run_id, clock, until_idle=True, transport=platform.transport)
    )

    assert upcoming is not None
    assert upcoming > clock.now()
    assert upcoming == store.next_due_time(run_id)
    assert store.run(run_id).status == "running"


def test_stop_at_works_until_then_and_resumes_later(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(3, 1), clock)
    half_day = clock.now() + DAY / 2

    upcoming = asyncio.run(
        execute_run(store, run_id, clock, stop_at=half_day, transport=platform.transport)
    )

    assert upcoming is not None
    assert upcoming > half_day
    assert clock.now() <= half_day
    assert "watching" in store.state_counts(run_id)
    assert asyncio.run(execute_run(store, run_id, clock, transport=platform.transport)) is None
    assert set(store.state_counts(run_id)) == {"finished"}
