"""An adapter raising on every fifth call costs only the probes' steps (issue 14.5)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from audit.clock import VirtualClock
from audit.runner import execute_run
from tests.durable_support import plan, planned_run, virtual_platform

pytestmark = pytest.mark.both_stores

_CALLS = ("submit", "lookup", "status", "notice", "withdraw")


class EveryFifth:
    """The real adapter, but every fifth call of any kind raises instead."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.raised = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in _CALLS:
            return attribute

        async def call(*args: Any) -> Any:
            self.calls += 1
            if self.calls % 5 == 0:
                self.raised += 1
                raise RuntimeError(f"adapter bug in {name}")
            return await attribute(*args)

        return call


def test_an_adapter_raising_every_fifth_call_never_aborts_the_run(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import audit.runner
    from tests.store_backends import open_store

    wrappers: list[EveryFifth] = []
    real = audit.runner.build_adapter

    def build(*args: Any, **kwargs: Any) -> EveryFifth:
        wrappers.append(EveryFifth(real(*args, **kwargs)))
        return wrappers[-1]

    monkeypatch.setattr(audit.runner, "build_adapter", build)
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(6, 2), clock)
    assert asyncio.run(execute_run(store, run_id, clock, transport=platform.transport)) is None

    assert wrappers and wrappers[0].raised > 3
    rows = store.probes(run_id)
    assert all(r.state == "finished" and r.outcome is not None for r in rows)
    observations = store.observations(run_id)
    raised = {
        r.probe_id
        for r in rows
        if any("RuntimeError: adapter bug" in o.detail for o in observations[r.probe_id])
    }
    assert raised
    measured = [r for r in rows if r.probe_id in raised and r.outcome != "inconclusive"]
    assert measured  # steps that raised were measured on a later try
    retried = [
        r
        for r in rows
        if any(o.action == "submit" and o.result == "error" for o in observations[r.probe_id])
    ]
    for row in retried:  # a submission that raised is reconciled later, not given up at once
        actions = [o.action for o in observations[row.probe_id]]
        assert "lookup" in actions
