"""Every exchange an adapter makes carries its probe id, across a restart (issue 14.2)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from audit.clock import VirtualClock
from audit.runner import execute_run
from audit.store_protocol import ProbeUpdate
from tests.durable_support import plan, planned_run, virtual_platform
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores

_PER_PROBE = frozenset({"submit", "lookup", "status", "notice", "order", "withdraw"})


def test_every_probe_exchange_is_attributed_after_a_restart(tmp_path: Path) -> None:
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(4, 2), clock)
    first = min(store.probes(run_id), key=lambda r: r.next_at or 0)
    clock.advance((first.next_at or clock.now()) - clock.now())
    # killed mid-submission of the first probe, then stopped part-way through watching
    change = ProbeUpdate(state="submitting", submitted_at=clock.now(), next_at=clock.now())
    store.update_probe(run_id, first.probe_id, None, change)
    stop = clock.now() + 1800
    asyncio.run(execute_run(store, run_id, clock, stop_at=stop, transport=platform.transport))
    assert any(r.state != "finished" for r in store.probes(run_id))
    asyncio.run(execute_run(store, run_id, clock, transport=platform.transport))

    posts = {r.post_id: r.probe_id for r in store.probes(run_id) if r.post_id}
    entries = [e for e in store.exchanges(run_id) if e.entry.get("action") in _PER_PROBE]
    assert {e.entry["action"] for e in entries} >= {"submit", "lookup", "status", "withdraw"}
    assert all(e.probe_id is not None for e in entries)
    for record in entries:
        segments = str(record.entry["url"]).split("/")
        named = [posts[s] for s in segments if s in posts]
        assert named in ([], [record.probe_id]), record.entry["url"]
