"""Every run of a plan keeps its own schedule: the second pack's run, started after the first
has finished (a day later), spreads its submissions over the plan's window from its own start
instead of sending them all at once, late."""

from __future__ import annotations

import asyncio
from pathlib import Path

from audit.clock import VirtualClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs, execute_run
from audit.store import Store
from tests.durable_support import virtual_platform

WINDOW = 3600.0


def test_the_second_run_of_a_plan_lays_its_schedule_when_it_starts(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = virtual_platform(clock, seed=2)
    plan = Plan(
        name="two-packs",
        packs=["vn-superstition", "scam-ads"],
        targets=[Target(name="sandbox", base_url="http://sandbox.test", concurrency=8)],
        seed=4,
        sample=Sample(violating_per_criterion=6, controls_per_criterion=2),
        schedule=Schedule(submission_window="PT1H"),
    )
    store = Store(tmp_path / "audit.sqlite")
    first, second = create_runs(store, plan, None, clock)
    planned = {r.probe_id: r.scheduled_at for r in store.probes(second.run_id)}
    assert (
        asyncio.run(execute_run(store, first.run_id, clock, transport=platform.transport)) is None
    )
    started = clock.now()
    assert started - min(planned.values()) > 86_400  # the first run took its day and more
    assert (
        asyncio.run(execute_run(store, second.run_id, clock, transport=platform.transport)) is None
    )
    rows = store.probes(second.run_id)
    sent = sorted(r.submitted_at for r in rows if r.submitted_at is not None)
    assert len(sent) == len(rows)
    assert sent[0] >= started
    # the window's spread is kept: the same offsets from the run's start as planned
    span = sent[-1] - sent[0]
    planned_span = max(planned.values()) - min(planned.values())
    assert abs(span - planned_span) <= 1.0 and span > 0.8 * WINDOW * (len(rows) - 1) / len(rows)
    for row in rows:
        assert (
            abs((row.scheduled_at - planned[row.probe_id]) - (started - min(planned.values())))
            < 1e-6
        )
