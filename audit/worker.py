"""Workers: any number of processes carrying any number of runs forward, under probe leases.

A worker holds each probe it works on under a lease in the store (:mod:`audit.store_leases`):
its owner id (host, pid, random) and the time the lease ends. It claims the due probes of a
running run whose lease is free or lapsed, acts only on those, and commits every transition
*fenced*: written only if its lease is still its own (and renewed by the same write); a probe
whose lease was lost is dropped, and whatever its step in flight brings back is discarded.
The engine's step logic is reused as it is: :class:`LeasedEngine` is the :class:`Engine` with
the store reads that pick its probes replaced by claims, and its commits fenced.

Why a probe is never acted on twice (the argument in docs/scaling.md, "Workers"):

* a claim is one transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``FOR UPDATE SKIP
  LOCKED``), so two workers never hold one probe's lease at once;
* each step's transition is committed, fenced, before the probe's next network action, as in
  one process: the durable rules (reconciliation of ``submitting`` by idempotency key, the
  filing intent before a notice) make a taker's redo correct exactly as after a kill;
* right before each network action the step checks its lease (:meth:`LeasedEngine.fence`):
  held, and valid for at least half a lease more, else renewed first; a lost lease ends the
  step there. While the worker lives, a task renews every lease it holds each third of a lease,
  so a lease lapses only when its worker is dead or stalled for more than two thirds of one.

A worker stopped by SIGTERM or SIGINT (or with ``--until-idle`` once no run has work left)
ends its leases; one killed outright leaves them to lapse, and another worker takes its probes
over after at most one lease and a claim interval (a quarter of a lease).

Whoever commits a run's last step marks it complete (once: :meth:`LeaseStore.complete_run`) and
the command writes its scorecard. Per-target rate limits and concurrency hold across workers
through :class:`StoreGate` (a paced token bucket and leased places in the store).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from audit.adapters.base import (
    Adapter,
    NoticeResult,
    StatusResult,
    SubmitResult,
    WithdrawResult,
)
from audit.clock import Clock
from audit.engine import Engine, EngineSettings, _Live
from audit.errors import AuditError
from audit.http import Pacer
from audit.lifecycle import ProbeState, RunStatus
from audit.locking import HeldLock
from audit.packs import Pack
from audit.plan import Target
from audit.probe import Probe
from audit.reachability import Reachability
from audit.store import ProbeRow
from audit.store_leases import leases_of
from audit.store_protocol import LeaseStore, RunStore

__all__ = [
    "LeaseLost",
    "LeaseTerms",
    "LeasedEngine",
    "StoreGate",
    "Worker",
    "WorkerReport",
    "WorkerSettings",
    "worker_id",
]


def worker_id() -> str:
    """This process's owner id for leases: host, pid and a random part (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseLost(BaseException):
    """The probe's lease is no longer this worker's: its step stops before acting.

    A BaseException, so the steps' handling of adapter failures (``except Exception``) never
    records it as the platform's fault."""


@dataclass(frozen=True)
class LeaseTerms:
    owner: str
    length: float = 60.0  # seconds a lease lasts from its last renewal (real time)

    @property
    def horizon(self) -> float:
        """How far ahead a claim reaches, and how often a worker claims again."""
        return self.length / 4

    @property
    def margin(self) -> float:
        """The least a lease must still run for a step to act on it without renewing first."""
        return self.length / 2


class _FencedAdapter:
    """The run's adapter, with the lease checked right before every network action."""

    def __init__(self, adapter: Adapter, engine: LeasedEngine) -> None:
        self._adapter = adapter
        self._engine = engine
        self.name = adapter.name
        self.supports_idempotency = adapter.supports_idempotency
        self.withdraw_removed = adapter.withdraw_removed
        self.notice_idempotent = adapter.notice_idempotent

    async def submit(self, probe: Probe, idempotency_key: str) -> SubmitResult:
        self._engine.fence(idempotency_key)
        return await self._adapter.submit(probe, idempotency_key)

    async def lookup(self, probe: Probe, idempotency_key: str) -> SubmitResult | None:
        self._engine.fence(idempotency_key)
        return await self._adapter.lookup(probe, idempotency_key)

    async def status(self, post_id: str, probe_id: str) -> StatusResult:
        self._engine.fence(probe_id)
        return await self._adapter.status(post_id, probe_id)

    async def notice(self, post_id: str, probe: Probe, reason: str, kind: str) -> NoticeResult:
        self._engine.fence(probe.probe_id)
        return await self._adapter.notice(post_id, probe, reason, kind)

    async def withdraw(self, post_id: str, probe_id: str) -> WithdrawResult:
        self._engine.fence(probe_id)
        return await self._adapter.withdraw(post_id, probe_id)

    async def preflight(self) -> str | None:
        return await self._adapter.preflight()

    async def aclose(self) -> None:
        await self._adapter.aclose()


class LeasedEngine(Engine):
    """The engine over the probes this worker leases: claims in place of the store's reads of
    due probes, fenced commits in place of plain ones; every step as in one process.

    :meth:`run` returns None once it holds nothing and nothing is claimable within the
    horizon (other workers may hold the run's remaining probes); call it again later."""

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        pack: Pack,
        adapter: Adapter,
        clock: Clock,
        settings: EngineSettings,
        leases: LeaseStore,
        terms: LeaseTerms,
        room: Callable[[], int] | None = None,
        reachability: Reachability | None = None,
    ) -> None:
        super().__init__(store, run_id, pack, adapter, clock, settings, None, reachability)
        self.adapter = _FencedAdapter(adapter, self)
        self.leases = leases
        self.terms = terms
        self._room = room or (lambda: settings.resident - len(self._live))
        self._running: set[str] = set()  # probes with a step in flight
        self._lost: set[str] = set()  # among them, those whose lease was lost
        self._unlease: set[str] = set()  # gone back to the store: end their leases
        self._expiry: dict[str, float] = {}  # when each held lease ends, as last renewed
        self._claimed_at = float("-inf")
        self._more = False  # the last claim was cut at its limit: more may be due now
        self.lost_leases = 0

    @property
    def held(self) -> int:
        return len(self._live)

    # the probes held: claimed, not read ---------------------------------------------------
    def _load(self) -> None:
        self._live.clear()
        self._due.clear()
        self._until, self._exhausted = None, False
        self._refill()

    def _refill(self) -> None:
        self._flush()
        now = self.clock.now()
        limit = min(self._room(), self.settings.resident)
        rows = self.leases.claim(
            self.run_id,
            self.terms.owner,
            now,
            now + self.terms.horizon,
            now + self.terms.length,
            limit,
        )
        self._claimed_at, self._more = now, limit > 0 and len(rows) >= limit
        fresh: list[ProbeRow] = []
        for row in rows:
            if row.probe_id in self._running and row.probe_id not in self._live:
                self._unlease.add(row.probe_id)  # its lost step is still winding down
                continue
            self._expiry[row.probe_id] = now + self.terms.length
            if row.state == ProbeState.SUBMITTING:  # interrupted: reconciled at once
                row = dataclasses.replace(row, next_at=now)
            fresh.append(row)
        self._admit(fresh)

    def _next_due(self, inflight: dict[str, asyncio.Task[None]] | None = None) -> float | None:
        self._pop_stale(inflight or {})
        stale = self.clock.now() - self._claimed_at >= self.terms.horizon
        if stale or (not self._due and self._more):
            self._refill()
            self._pop_stale(inflight or {})
        return self._due[0][0] if self._due else None

    def _beyond(self, live: _Live) -> bool:
        at = live.row.next_at
        return at is not None and at > self.clock.now() + self.terms.horizon

    def _release(self, probe_id: str) -> None:
        held = probe_id in self._live
        super()._release(probe_id)
        if held and probe_id not in self._live:
            self._unlease.add(probe_id)

    # fenced commits -----------------------------------------------------------------------
    def _commit(self, live: _Live, *args: Any, **kwargs: Any) -> None:
        if live.row.probe_id in self._lost:
            return  # the lease is another's now: this step's result is discarded
        super()._commit(live, *args, **kwargs)

    def _flush(self) -> None:
        if not self._queued and not self._unlease:
            return
        queued, self._queued = self._queued, []
        self._dirty.clear()
        release = {probe_id for probe_id, _, _ in queued if probe_id not in self._live}
        release |= self._unlease
        self._unlease = set()
        now = self.clock.now()
        until = now + self.terms.length
        lost = self.leases.write_fenced(self.run_id, queued, self.terms.owner, now, until, release)
        for probe_id, _, _ in queued:
            if probe_id in self._live and probe_id not in lost:
                self._expiry[probe_id] = until
        for probe_id in release:
            self._expiry.pop(probe_id, None)
        self.lose(lost)

    def lose(self, probe_ids: set[str], *, found: bool = True) -> None:
        """These probes' leases are lost (``found``: the store just said so): dropped, and
        any step of theirs in flight stops before it acts again, its result discarded."""
        if found:
            self.lost_leases += len(probe_ids)
        for probe_id in probe_ids:
            self._live.pop(probe_id, None)
            self._expiry.pop(probe_id, None)
            self._kept.pop(probe_id, None)
            if probe_id in self._running:
                self._lost.add(probe_id)

    def renewed(self, held: set[tuple[str, str]], until: float) -> None:
        """After the worker renewed its leases: those still held run to ``until``; a held
        probe not among them has lapsed and is lost."""
        lapsed = set()
        for probe_id in self._live:
            if (self.run_id, probe_id) in held:
                self._expiry[probe_id] = until
            else:
                lapsed.add(probe_id)
        self.lose(lapsed)

    def fence(self, probe_id: str) -> None:
        """Right before a step's network action: raises :class:`LeaseLost` unless the lease is
        still this worker's and runs at least :attr:`LeaseTerms.margin` longer (renewed here
        first when it would not)."""
        if probe_id in self._lost or probe_id not in self._live:
            raise LeaseLost(probe_id)
        now = self.clock.now()
        if self._expiry.get(probe_id, now) - now >= self.terms.margin:
            return
        until = now + self.terms.length
        if not self.leases.holds(self.run_id, probe_id, self.terms.owner, now, until):
            self.lose({probe_id})
            raise LeaseLost(probe_id)
        self._expiry[probe_id] = until

    async def _step(self, live: _Live) -> None:
        probe_id = live.row.probe_id
        self._running.add(probe_id)
        try:
            await super()._step(live)
        except LeaseLost:  # counted where it was found
            self.lose({probe_id}, found=False)
        finally:
            self._running.discard(probe_id)
            self._lost.discard(probe_id)


# shared limits --------------------------------------------------------------------------
class _StorePacer:
    def __init__(self, gate: StoreGate, key: str, rate: float | None) -> None:
        self._gate = gate
        self._key = key
        self._interval = 1.0 / rate if rate else 0.0

    async def acquire(self) -> None:
        if not self._interval:
            return
        clock = self._gate.clock
        now = clock.now()
        slot = self._gate.leases.take_pace(self._key, self._interval, now)
        if slot > now:
            await clock.sleep_until(slot)


@dataclass
class StoreGate:
    """A target's rate limits and concurrency, kept in the store for every worker: each
    request takes the next slot of the target's paced bucket (one transaction) and one of its
    ``concurrency`` places while in flight. Places are held under the worker's lease terms, so
    a killed worker's lapse."""

    leases: LeaseStore
    clock: Clock
    key: str  # the target (its base URL)
    concurrency: int
    terms: LeaseTerms
    scope: str = ""

    def limiter(self, name: str, rate: float | None) -> Pacer:
        return _StorePacer(self, f"{self.key} {self.scope}/{name}", rate)

    def scoped(self, scope: str) -> StoreGate:
        return dataclasses.replace(self, scope=scope)

    @asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        wait = 0.005
        while True:
            now = self.clock.now()
            until = now + self.terms.length
            taken = self.leases.take_place(self.key, self.concurrency, self.terms.owner, now, until)
            if taken is not None:
                break
            await self.clock.sleep_until(now + wait)
            wait = min(wait * 2, self.terms.length / 20)
        try:
            yield
        finally:
            self.leases.leave_place(self.key, taken, self.terms.owner)


# the worker -----------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerSettings:
    lease: float = 60.0
    max_probes: int = 2000  # probes held at once, over every run
    until_idle: bool = False  # exit once no running run has work left (busy ones are waited for)
    give_up: float | None = None  # as `poll --give-up-after`


@dataclass
class WorkerReport:
    owner: str
    completed: list[str] = field(default_factory=list)  # runs this worker marked complete
    failed: dict[str, str] = field(default_factory=dict)  # run id -> why it could not go on
    busy: set[str] = field(default_factory=set)  # runs another process holds alone
    lost_leases: int = 0


class Worker:
    """Carries every running run of the store forward, one session per run, until stopped."""

    def __init__(
        self,
        store: RunStore,
        clock: Clock,
        settings: WorkerSettings,
        *,
        owner: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        completed: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.terms = LeaseTerms(owner or worker_id(), settings.lease)
        self.leases = leases_of(store)
        self._transport = transport
        self._completed = completed
        self._engines: dict[str, LeasedEngine] = {}
        self._sessions: dict[str, asyncio.Task[None]] = {}
        self.report = WorkerReport(self.terms.owner)

    def _room(self) -> int:
        return self.settings.max_probes - sum(e.held for e in self._engines.values())

    async def run(self, stop: asyncio.Event | None = None) -> WorkerReport:
        stop = stop or asyncio.Event()
        renewing = asyncio.create_task(self._renew())
        stopped = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                started = self._start_sessions()
                # a run another process holds alone (a poll) still has work: wait for it
                idle = not self._sessions and not started and not self.report.busy
                if self.settings.until_idle and idle:
                    break
                pending = [stopped, *self._sessions.values()]
                await asyncio.wait(
                    pending, timeout=self.terms.horizon, return_when=asyncio.FIRST_COMPLETED
                )
                self._reap()
        finally:
            for task in self._sessions.values():
                task.cancel()
            await asyncio.gather(*self._sessions.values(), return_exceptions=True)
            self._sessions.clear()
            renewing.cancel()
            stopped.cancel()
            await asyncio.gather(renewing, stopped, return_exceptions=True)
            self.leases.release(self.terms.owner)
        return self.report

    def _start_sessions(self) -> int:
        started = 0
        running = [run for run in self.store.runs() if run.status == RunStatus.RUNNING]
        # a run another process held that has since ended is busy no longer
        self.report.busy &= {run.run_id for run in running}
        for run in running:
            if run.run_id in self._sessions:
                continue
            lock = self.store.run_lock(run.run_id, shared=True)
            if not lock.acquire():
                self.report.busy.add(run.run_id)
                continue
            self.report.busy.discard(run.run_id)
            self._sessions[run.run_id] = asyncio.create_task(self._session(run.run_id, lock))
            started += 1
        return started

    def _reap(self) -> None:
        for run_id, task in list(self._sessions.items()):
            if task.done():
                del self._sessions[run_id]
                failure = None if task.cancelled() else task.exception()
                if failure is not None:
                    raise failure

    async def _renew(self) -> None:
        while True:
            await self.clock.sleep_until(self.clock.now() + self.terms.length / 3)
            now = self.clock.now()
            until = now + self.terms.length
            held = self.leases.renew(self.terms.owner, now, until)
            for engine in list(self._engines.values()):
                engine.renewed(held, until)

    async def _session(self, run_id: str, lock: HeldLock) -> None:
        """Carry one run while it is running and has work; marks it complete when this worker
        finds its last step done (once, whoever does), or failed when its target is dead."""
        from audit import runner

        try:
            target = Target.model_validate(self.store.run(run_id).target)
            gate = StoreGate(
                self.leases, self.clock, target.base_url, target.concurrency, self.terms
            )
            parts = runner._parts(self.store, run_id, self.clock, self._transport, gate)
            try:
                await self._carry(run_id, parts)
            except AuditError as exc:
                now = self.clock.now()
                reason = f"{type(exc).__name__}: {exc}"[:500]
                self.store.finish_run(run_id, RunStatus.FAILED, now, reason)
                self.report.failed[run_id] = str(exc)
            finally:
                engine = self._engines.pop(run_id, None)
                if engine is not None:
                    self.report.lost_leases += engine.lost_leases
                await parts.adapter.aclose()
                self.leases.release(self.terms.owner, run_id)
            if self.leases.complete_run(run_id, self.clock.now()):
                self.report.completed.append(run_id)
                if self._completed is not None:
                    self._completed(run_id)
        finally:
            lock.release()

    async def _carry(self, run_id: str, parts: Any) -> None:
        from audit import runner

        settings = EngineSettings(
            concurrency=parts.target.concurrency,
            polling=parts.plan.polling,
            notice_reason=parts.plan.notice_reason,
            give_up_after=runner.give_up_after(
                self.store, run_id, parts.plan, self.settings.give_up
            ),
            resident=self.settings.max_probes,
        )
        engine = LeasedEngine(
            self.store,
            run_id,
            parts.pack,
            parts.adapter,
            self.clock,
            settings,
            self.leases,
            self.terms,
            self._room,
            parts.reachability,
        )
        self._engines[run_id] = engine
        if self.leases.next_claimable(run_id, self.clock.now()) is not None:
            await runner._preflight(parts)
            self.store.lay_schedule(run_id, self.clock.now())
        while True:
            await engine.run()
            if self.store.run(run_id).status != RunStatus.RUNNING:
                return
            now = self.clock.now()
            upcoming = self.leases.next_claimable(run_id, now)
            if upcoming is None and self.store.next_due_time(run_id) is None:
                return  # every probe finished
            # others hold the rest, or it is not due yet: look again within a claim interval
            wake = now + self.terms.horizon
            if upcoming is not None and self._room() > 0:
                wake = min(wake, max(now, upcoming - self.terms.horizon))
            # with no room (--max-probes held by this worker's other runs) it claims nothing:
            # waiting a claim interval, not "now", keeps it from spinning without yielding
            await self.clock.sleep_until(wake)
