"""The workers' shared state in the store: claims, fenced writes, renewals, releases, the
run's completion, target pace and places, the ledger chained by many writers; and the leased
engine dropping a probe whose lease it lost, before acting and after."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from audit.adapters.base import StatusResult
from audit.adapters.factory import build_adapter
from audit.clock import VirtualClock
from audit.engine import EngineSettings
from audit.evidence.ledger import EvidenceLedger, Redactor, verify_chain
from audit.lifecycle import ProbeState
from audit.plan import Target
from audit.runner import execute_run
from audit.store import SCHEMA_VERSION, ObservationRow, Store
from audit.store_leases import leases_of
from audit.store_protocol import LeaseStore, ProbeUpdate, RunStore
from audit.worker import LeasedEngine, LeaseTerms
from tests.durable_support import outcomes, plan, planned_run, quiet_asgi, virtual_platform
from tests.evidence_support import as_version_4
from tests.store_backends import open_store, raw_rows

pytestmark = pytest.mark.both_stores

LEASE = 2.0


def _store(tmp_path: Path, violating: int = 2, controls: int = 1) -> tuple[RunStore, str, float]:
    clock = VirtualClock()
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(violating, controls, window="PT1M"), clock)
    return store, run_id, clock.now()


def _every_probe_due(store: RunStore, run_id: str, at: float) -> None:
    raw_rows(store, "UPDATE probes SET next_at = ? WHERE run_id = ?", at, run_id)


def Leases(store: RunStore) -> LeaseStore:  # noqa: N802 - reads as the class it stands for
    return leases_of(store)


def test_a_claimed_probe_is_nobody_elses_until_its_lease_lapses(tmp_path: Path) -> None:
    store, run_id, now = _store(tmp_path)
    _every_probe_due(store, run_id, now)
    leases = Leases(store)
    first = leases.claim(run_id, "a", now, now, now + LEASE, 4)
    second = leases.claim(run_id, "b", now, now, now + LEASE, 100)
    assert len(first) == 4
    assert len(second) == len(store.probes(run_id)) - 4
    assert not {r.probe_id for r in first} & {r.probe_id for r in second}
    assert leases.claim(run_id, "c", now + 1, now + 1, now + 1 + LEASE, 100) == []
    # once a's lapse, c takes them (and only them: b's were renewed)
    leases.renew("b", now + 1.5, now + 1.5 + LEASE)
    taken = leases.claim(run_id, "c", now + LEASE, now + LEASE, now + 2 * LEASE, 100)
    assert {r.probe_id for r in taken} == {r.probe_id for r in first}
    assert {owner for owner, _ in leases.held(run_id).values()} == {"b", "c"}


def test_a_claim_reaches_only_its_horizon_but_takes_interrupted_submissions(
    tmp_path: Path,
) -> None:
    store, run_id, now = _store(tmp_path)
    rows = store.probes(run_id)
    raw_rows(store, "UPDATE probes SET next_at = ? WHERE run_id = ?", now + 100, run_id)
    raw_rows(
        store,
        "UPDATE probes SET state = 'submitting', next_at = ? WHERE run_id = ? AND seq = 0",
        now + 30,
        run_id,
    )
    raw_rows(store, "UPDATE probes SET next_at = ? WHERE run_id = ? AND seq = 1", now + 5, run_id)
    leases = Leases(store)
    assert leases.next_claimable(run_id, now) == now  # the interrupted submission
    claimed = leases.claim(run_id, "a", now, now + 10, now + LEASE, 100)
    assert {r.seq for r in claimed} == {0, 1}
    assert leases.next_claimable(run_id, now) == now + 100
    assert all(r.probe == {} for r in claimed)  # without their content
    assert len(rows) > 2


def test_a_write_whose_lease_was_lost_writes_nothing(tmp_path: Path) -> None:
    store, run_id, now = _store(tmp_path)
    _every_probe_due(store, run_id, now)
    leases = Leases(store)
    (probe,) = leases.claim(run_id, "a", now, now, now + LEASE, 1)
    later = now + LEASE + 0.1  # a's lease lapsed; b takes the probe
    assert [r.probe_id for r in leases.claim(run_id, "b", later, later, later + LEASE, 1)] == [
        probe.probe_id
    ]
    look = ObservationRow(probe.probe_id, "status", "visible", later, later, "")
    change = (probe.probe_id, look, ProbeUpdate(state=ProbeState.WATCHING, next_at=later + 9))
    lost = leases.write_fenced(run_id, [change], "a", later, later + LEASE)
    assert lost == {probe.probe_id}
    assert store.probe(run_id, probe.probe_id).state == ProbeState.PLANNED
    assert store.observations_of(run_id, probe.probe_id) == []
    assert leases.write_fenced(run_id, [change], "b", later, later + LEASE) == set()
    assert store.probe(run_id, probe.probe_id).state == ProbeState.WATCHING
    assert leases.held(run_id)[probe.probe_id] == ("b", later + LEASE)  # renewed by the write
    # released with the write that finishes it
    done = (probe.probe_id, None, ProbeUpdate(state=ProbeState.FINISHED, next_at=None))
    leases.write_fenced(run_id, [done], "b", later, later + LEASE, release=[probe.probe_id])
    assert probe.probe_id not in leases.held(run_id)


def test_renew_keeps_only_live_leases_and_release_frees_them(tmp_path: Path) -> None:
    store, run_id, now = _store(tmp_path)
    _every_probe_due(store, run_id, now)
    leases = Leases(store)
    mine = {r.probe_id for r in leases.claim(run_id, "a", now, now, now + LEASE, 3)}
    assert {p for _, p in leases.renew("a", now + 1, now + 1 + LEASE)} == mine
    assert leases.renew("a", now + 1 + LEASE, now + 2 + LEASE) == set()  # lapsed meanwhile
    assert leases.holds(run_id, next(iter(mine)), "a", now + 1 + LEASE, now + 9) is False
    again = {r.probe_id for r in leases.claim(run_id, "a", now + 5, now + 5, now + 9, 3)}
    assert leases.holds(run_id, next(iter(again)), "a", now + 6, now + 12) is True
    assert leases.release("a", run_id) == 3
    assert len(leases.claim(run_id, "b", now + 6, now + 6, now + 9, 100)) == len(
        store.probes(run_id)
    )


def test_a_run_is_completed_once_and_only_when_every_probe_finished(tmp_path: Path) -> None:
    store, run_id, now = _store(tmp_path)
    leases = Leases(store)
    assert leases.complete_run(run_id, now) is False
    finished = "UPDATE probes SET state = 'finished', next_at = NULL WHERE run_id = ?"
    raw_rows(store, finished, run_id)
    assert leases.complete_run(run_id, now) is True
    assert leases.complete_run(run_id, now + 1) is False
    assert store.run(run_id).status == "complete"


def test_target_pace_spaces_requests_and_places_bound_concurrency(tmp_path: Path) -> None:
    store, _, now = _store(tmp_path)
    leases = Leases(store)
    slots = [leases.take_pace("http://t", 0.5, now) for _ in range(4)]
    assert slots == [now, now + 0.5, now + 1.0, now + 1.5]
    assert leases.take_pace("http://t", 0.5, now + 10) == now + 10  # idle: not before now
    assert leases.take_pace("http://other", 0.5, now) == now
    places = [leases.take_place("http://t", 2, "a", now, now + LEASE) for _ in range(3)]
    assert places == [0, 1, None]
    leases.leave_place("http://t", 0, "a")
    assert leases.take_place("http://t", 2, "b", now + 1, now + 1 + LEASE) == 0
    # a killed holder's place lapses
    assert leases.take_place("http://t", 2, "b", now + LEASE, now + 2 * LEASE) == 1


@pytest.mark.sqlite_store
def test_a_store_of_version_4_gains_the_workers_tables(tmp_path: Path) -> None:
    store, run_id, _ = _store(tmp_path)
    store.close()
    as_version_4(tmp_path / "audit.sqlite")
    upgraded = Store(tmp_path / "audit.sqlite")
    assert Leases(upgraded).held(run_id) == {}
    with sqlite3.connect(tmp_path / "audit.sqlite") as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert row[0] == str(SCHEMA_VERSION)


def test_many_writers_keep_one_ledger_chain(tmp_path: Path) -> None:
    store, run_id, _ = _store(tmp_path)
    writers = [store] + [open_store(tmp_path / "audit.sqlite") for _ in range(2)]
    ledgers = []
    for writer in writers:
        ledgers.append(EvidenceLedger(writer, run_id, Redactor([])))
    for n in range(12):  # each writer's ledger numbered its entries from the same head
        ledgers[n % 3].append(None, {"n": n})
    ok, _, bad = verify_chain(store.exchanges(run_id))
    assert (ok, bad) == (True, None)
    assert [r.entry["n"] for r in store.exchanges(run_id)] == list(range(12))
    assert [r.seq for r in store.exchanges(run_id)] == list(range(1, 13))


# the leased engine -----------------------------------------------------------------------
class _Stealing:
    """The run's adapter; the first status look lets another worker take the probe's lease
    (the lease lapsed meanwhile) while the request is in flight."""

    def __init__(self, adapter: Any, store: RunStore, clock: VirtualClock, run_id: str) -> None:
        self._adapter = adapter
        self._store = store
        self._clock = clock
        self._run_id = run_id
        self.stolen: str | None = None
        self.looks: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    async def status(self, post_id: str, probe_id: str) -> StatusResult:
        self.looks.append(probe_id)
        if self.stolen is None:
            self.stolen = probe_id
            self._clock.advance(LEASE + 0.1)  # a stall longer than the lease
            now = self._clock.now()
            raw_rows(  # b takes exactly this probe
                self._store,
                "UPDATE leases SET owner = 'b', until = ? WHERE run_id = ? AND probe_id = ?",
                now + 1000,
                self._run_id,
                probe_id,
            )
        result: StatusResult = await self._adapter.status(post_id, probe_id)
        return result


def _leased(
    store: RunStore, run_id: str, clock: VirtualClock, transport: Any
) -> tuple[LeasedEngine, _Stealing]:
    from audit.evidence.ledger import EvidenceLedger as Ledger

    run = store.run(run_id)
    target = Target.model_validate(run.target)
    ledger = Ledger(store, run_id, Redactor([]))
    adapter = build_adapter(target, clock, ledger, seed=run.seed, transport=transport)
    leases = Leases(store)
    stealing = _Stealing(adapter, store, clock, run_id)
    terms = LeaseTerms("a", LEASE)
    engine = LeasedEngine(
        store, run_id, store.pack_of(run), stealing, clock, EngineSettings(), leases, terms
    )
    return engine, stealing


async def _carry(engine: LeasedEngine, store: RunStore, clock: VirtualClock, run_id: str) -> None:
    """Drive the engine as a worker does, until the run has no next step."""
    while store.next_due_time(engine.run_id) is not None:
        await engine.run()
        upcoming = engine.leases.next_claimable(run_id, clock.now())
        if upcoming is None:  # the rest is b's: b never acts in this test, its leases lapse
            await clock.sleep_until(clock.now() + 1000.5)
        else:
            await clock.sleep_until(max(clock.now(), upcoming - engine.terms.horizon))


def test_a_lost_lease_discards_the_step_in_flight_and_stops_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet_asgi(monkeypatch)
    clock = VirtualClock()
    platform = virtual_platform(clock)
    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(3, 1, window="PT10M"), clock)
    engine, stealing = _leased(store, run_id, clock, platform.transport)
    asyncio.run(_carry(engine, store, clock, run_id))
    stolen = stealing.stolen
    assert stolen is not None
    assert engine.lost_leases >= 1
    # the look a sent while its lease lapsed was discarded, not recorded as its finding
    recorded = [o for o in store.observations_of(run_id, stolen) if o.action == "status"]
    assert stealing.looks.count(stolen) == len(recorded) + 1
    rows = {r.probe_id: r for r in store.probes(run_id)}
    assert {r.state for r in rows.values()} == {"finished"}
    assert None not in {r.outcome for r in rows.values()}


def test_a_leased_engine_ends_as_one_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no other worker about, the leased engine gives the plain engine's outcomes."""
    quiet_asgi(monkeypatch)
    results = []
    for name, leased in (("plain", False), ("leased", True)):
        clock = VirtualClock()
        platform = virtual_platform(clock)
        store = open_store(tmp_path / name / "audit.sqlite")
        run_id = planned_run(store, plan(8, 2, window="PT1H"), clock)
        if leased:
            engine, stealing = _leased(store, run_id, clock, platform.transport)
            stealing.stolen = "nobody"  # no stealing here
            asyncio.run(_carry(engine, store, clock, run_id))
        else:
            asyncio.run(execute_run(store, run_id, clock, transport=platform.transport))
        results.append(outcomes(store, run_id))
        assert Leases(store).held(run_id) == {}
    assert results[0] == results[1]


def test_until_idle_waits_for_a_run_held_alone_and_ends_when_its_holder_completed_it(
    tmp_path: Path,
) -> None:
    """A worker with ``until_idle`` finds the store's only run held alone by another process
    (a ``poll``): it waits rather than exit while that run has work, and exits once the holder
    has completed it and let go, not later."""
    from audit.clock import SystemClock
    from audit.worker import Worker, WorkerSettings

    store = open_store(tmp_path / "audit.sqlite")
    run_id = planned_run(store, plan(2, 0), VirtualClock())
    holder = store.run_lock(run_id)
    assert holder.acquire()
    worker = Worker(store, SystemClock(), WorkerSettings(lease=0.3, until_idle=True))

    async def hold_then_complete() -> None:
        carried = asyncio.create_task(worker.run())
        for _ in range(100):  # waits on the worker's state, never on a set time
            await asyncio.sleep(0.02)
            if run_id in worker.report.busy:
                break
        await asyncio.sleep(0.3)  # three of the worker's claim intervals
        assert not carried.done(), "the worker exited while the run still had work"
        store.finish_run(run_id, "complete", SystemClock().now())
        holder.release()
        await asyncio.wait_for(carried, timeout=10)

    asyncio.run(hold_then_complete())
    assert worker.report.completed == [] and worker.report.busy == set()
