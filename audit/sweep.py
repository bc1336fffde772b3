"""Cleanup: withdraw every probe of a run that is still up on the platform, and stop the run.

The engine withdraws each probe after its verdict; this sweep is for what is left when a run is
abandoned (stopped for good, interrupted, or its withdrawals failed). It runs under the run's
lock, like the engine, and records every exchange and every change in the store:

* a probe not yet submitted is cancelled, so no later ``resume`` or ``poll`` posts it;
* a probe interrupted mid-submission is looked up by its idempotency key (never re-sent) and
  withdrawn if the platform has it;
* a probe still being watched loses its verdict (``inconclusive``: withdrawn before the
  verdict) and is withdrawn;
* a probe whose withdrawal failed earlier is withdrawn again.

Withdrawing is idempotent: a post already gone counts as withdrawn.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from audit.adapters.base import Adapter, SubmitKind
from audit.clock import Clock
from audit.lifecycle import ProbeState, WithdrawalResult
from audit.outcomes import Outcome
from audit.probe import Probe
from audit.store import ObservationRow, ProbeRow
from audit.store_protocol import ProbeUpdate, RunStore

__all__ = ["CleanupReport", "Sweeper"]

CANCELLED = "cancelled by cleanup before submission"
CUT_SHORT = "withdrawn by cleanup before its verdict"


@dataclass
class CleanupReport:
    run_id: str
    withdrawn: list[str] = field(default_factory=list)  # probes withdrawn by this cleanup
    failed: dict[str, str] = field(default_factory=dict)  # probe id -> why the withdrawal failed
    cancelled: list[str] = field(default_factory=list)  # never submitted, now never will be
    cut_short: list[str] = field(default_factory=list)  # verdict lost: withdrawn while watched
    already_down: int = 0  # probes already withdrawn (or never posted) before this cleanup

    @property
    def clean(self) -> bool:
        """True when nothing of the run is left up on the platform."""
        return not self.failed


class Sweeper:
    def __init__(
        self, store: RunStore, run_id: str, adapter: Adapter, clock: Clock, concurrency: int = 16
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.adapter = adapter
        self.clock = clock
        self._room = asyncio.Semaphore(concurrency)

    async def sweep(self) -> CleanupReport:
        report = CleanupReport(self.run_id)
        rows = self.store.probes(self.run_id)
        with self.store.exchanges_with_transitions():
            await asyncio.gather(*(self._one(row, report) for row in rows))
        return report

    async def _one(self, row: ProbeRow, report: CleanupReport) -> None:
        async with self._room:
            if row.state == ProbeState.PLANNED:
                self._stop(row, Outcome.INCONCLUSIVE, CANCELLED)
                report.cancelled.append(row.probe_id)
                return
            if row.state == ProbeState.SUBMITTING:
                row = await self._reconcile(row, report)
            elif row.state in (ProbeState.NOTICING, ProbeState.WATCHING):
                row = self._stop(row, Outcome.INCONCLUSIVE, CUT_SHORT, up=True)
                report.cut_short.append(row.probe_id)
            if row.post_id is None or row.withdrawn_at is not None:
                if row.state == ProbeState.FINISHED:
                    report.already_down += 1
                return
            await self._withdraw(row, report)

    def _stop(self, row: ProbeRow, outcome: Outcome, note: str, up: bool = False) -> ProbeRow:
        change = ProbeUpdate(
            outcome=row.outcome or outcome.value,
            note=row.note if row.outcome else note,
            state=ProbeState.WITHDRAWING if up else ProbeState.FINISHED,
            next_at=None,
        )
        self.store.update_probe(self.run_id, row.probe_id, None, change)
        return self.store.probe(self.run_id, row.probe_id)

    async def _reconcile(self, row: ProbeRow, report: CleanupReport) -> ProbeRow:
        found = await self.adapter.lookup(Probe.model_validate(row.probe), row.probe_id)
        intent = row.submitted_at if row.submitted_at is not None else self.clock.now()
        if found is None or found.kind is SubmitKind.ERROR or found.post_id is None:
            rejected = found is not None and found.kind is SubmitKind.REJECTED
            obs = self._lookup_observation(row, intent, found.kind.value if found else "none")
            self.store.update_probe(self.run_id, row.probe_id, obs)
            if rejected:
                outcome = (
                    Outcome.OVER_REMOVED
                    if row.expectation == "control"
                    else Outcome.REJECTED_AT_SUBMISSION
                )
                return self._stop(row, outcome, "refused at submission")
            report.cancelled.append(row.probe_id)
            return self._stop(row, Outcome.INCONCLUSIVE, CANCELLED)
        obs = self._lookup_observation(row, intent, found.kind.value)
        self.store.update_probe(self.run_id, row.probe_id, obs, ProbeUpdate(post_id=found.post_id))
        report.cut_short.append(row.probe_id)
        return self._stop(
            self.store.probe(self.run_id, row.probe_id), Outcome.INCONCLUSIVE, CUT_SHORT, up=True
        )

    def _lookup_observation(self, row: ProbeRow, intent: float, result: str) -> ObservationRow:
        return ObservationRow(row.probe_id, "lookup", result, intent, self.clock.now(), "cleanup")

    async def _withdraw(self, row: ProbeRow, report: CleanupReport) -> None:
        assert row.post_id is not None
        started = self.clock.now()
        result = await self.adapter.withdraw(row.post_id, row.probe_id)
        now = self.clock.now()
        outcome = WithdrawalResult.WITHDRAWN if result.withdrawn else WithdrawalResult.FAILED
        obs = ObservationRow(row.probe_id, "withdraw", outcome, started, now, result.detail)
        if result.withdrawn:
            report.withdrawn.append(row.probe_id)
        else:
            report.failed[row.probe_id] = result.detail or "the platform refused"
        change = ProbeUpdate(
            state=ProbeState.FINISHED,
            withdrawn_at=now if result.withdrawn else None,
            next_at=None,
        )
        self.store.update_probe(self.run_id, row.probe_id, obs, change)
