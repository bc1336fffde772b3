"""The engine: drives every probe of a run through its lifecycle, durably.

Lifecycle of a probe (persisted in the store; each transition is committed before the next step
acts on it)::

    planned ─▶ submitting ─▶ noticing ─▶ watching ─▶ withdrawing ─▶ finished
                   │  (proactive: straight to watching)   ▲
                   └────────── refused / failed ──────────┴─▶ finished

A probe found in ``submitting`` after a crash is reconciled: looked up by its idempotency key,
re-sent with the same key only where the platform de-duplicates by key, and otherwise marked
inconclusive, never blindly posted twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from audit.adapters.base import Adapter, SubmitKind, SubmitResult
from audit.clock import Clock
from audit.outcomes import Outcome, ProbeFacts, classify
from audit.packs import Pack
from audit.polling import PollingPolicy, poll_offsets
from audit.probe import Probe
from audit.store import ObservationRow, ProbeRow, Store
from audit.synthesis import derive_rng

__all__ = ["Engine", "EngineSettings", "ProgressEvent", "probe_facts"]

RECONCILE_AFTER = 30.0  # seconds a submission may be in flight before a restart reconciles it
WITHDRAW_RETRY = 60.0
WITHDRAW_ATTEMPTS = 5


@dataclass(frozen=True)
class EngineSettings:
    concurrency: int = 16
    polling: PollingPolicy = PollingPolicy()
    notice_reason: str = "This post offers a prohibited service under {instrument}, {article}."


@dataclass(frozen=True)
class ProgressEvent:
    probe_id: str
    state: str
    outcome: str | None


_SUBMIT_ACTIONS = frozenset({"submit", "lookup", "resubmit"})


def probe_facts(row: ProbeRow, observations: list[ObservationRow]) -> ProbeFacts:
    """What the store says about a probe, in the terms :func:`classify` needs."""
    end = None
    if row.offsets and row.clock_start is not None and row.poll_index >= len(row.offsets):
        end = row.clock_start + row.offsets[-1]
    rejected = any(o.action in _SUBMIT_ACTIONS and o.result == "rejected" for o in observations)
    failure = None
    if any(o.action in ("notice", "order") and o.result == "failed" for o in observations):
        failure = f"the {row.trigger} could not be filed"
    elif row.post_id is None and not rejected and row.state == "finished":
        failure = row.note or "not submitted"
    return ProbeFacts(
        expectation=row.expectation,
        accepted=row.post_id is not None and row.clock_start is not None,
        rejected=rejected,
        clock_start=row.clock_start,
        deadline_at=row.deadline_at,
        observation_end=end,
        failure=failure,
    )


class Engine:
    def __init__(
        self,
        store: Store,
        run_id: str,
        pack: Pack,
        adapter: Adapter,
        clock: Clock,
        settings: EngineSettings,
        progress: Callable[[ProgressEvent], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.pack = pack
        self.adapter = adapter
        self.clock = clock
        self.settings = settings
        self._progress = progress

    # loop -------------------------------------------------------------------------------
    async def run(self, *, until_idle: bool = False) -> float | None:
        """Do due work; return None when every probe is finished, else the next due time.

        With ``until_idle`` it returns as soon as nothing is due now (for cron-style polling);
        otherwise it sleeps on the clock until the next piece of work.
        """
        inflight: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                self._start_due(inflight)
                if inflight:
                    await self._wait_some(inflight)
                    continue
                upcoming = self.store.next_due_time(self.run_id)
                if upcoming is None or until_idle:
                    return upcoming
                await self.clock.sleep_until(upcoming)
        finally:
            for task in inflight.values():
                task.cancel()
            if inflight:
                await asyncio.gather(*inflight.values(), return_exceptions=True)

    def _start_due(self, inflight: dict[str, asyncio.Task[None]]) -> None:
        room = self.settings.concurrency - len(inflight)
        if room <= 0:
            return
        due = self.store.due_probes(self.run_id, self.clock.now(), room, exclude=inflight)
        for row in due:
            inflight[row.probe_id] = asyncio.create_task(self._step(row))

    async def _wait_some(self, inflight: dict[str, asyncio.Task[None]]) -> None:
        upcoming = self.store.next_due_time(self.run_id, exclude=inflight)
        timeout = None
        if upcoming is not None and len(inflight) < self.settings.concurrency:
            timeout = max(0.0, upcoming - self.clock.now())
            if not self.clock.real:
                timeout = None  # virtual time: in-flight work completes without time passing
        done, _ = await asyncio.wait(
            inflight.values(), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for probe_id, task in list(inflight.items()):
            if task in done:
                del inflight[probe_id]
                task.result()

    # steps ------------------------------------------------------------------------------
    async def _step(self, row: ProbeRow) -> None:
        handler = {
            "planned": self._submit,
            "submitting": self._reconcile,
            "noticing": self._notice,
            "watching": self._look,
            "withdrawing": self._withdraw,
        }.get(row.state)
        if handler is None:
            self.store.update_probe(self.run_id, row.probe_id, next_at=None)
            return
        await handler(row)

    def _probe(self, row: ProbeRow) -> Probe:
        return Probe.model_validate(row.probe)

    def _emit(self, probe_id: str, state: str, outcome: str | None = None) -> None:
        if self._progress is not None:
            self._progress(ProgressEvent(probe_id, state, outcome))

    async def _submit(self, row: ProbeRow) -> None:
        now = self.clock.now()
        self.store.update_probe(
            self.run_id,
            row.probe_id,
            state="submitting",
            submitted_at=now,
            next_at=now + RECONCILE_AFTER,
        )
        result = await self.adapter.submit(self._probe(row), row.probe_id)
        self._after_submit(row, now, result, "submit")

    async def _reconcile(self, row: ProbeRow) -> None:
        probe = self._probe(row)
        found = await self.adapter.lookup(probe, row.probe_id)
        intent = row.submitted_at if row.submitted_at is not None else self.clock.now()
        if found is not None and found.kind is not SubmitKind.ERROR:
            self._after_submit(row, intent, found, "lookup")
            return
        if self.adapter.supports_idempotency:
            # The platform de-duplicates by key, so sending again cannot post twice.
            result = await self.adapter.submit(probe, row.probe_id)
            self._after_submit(row, intent, result, "resubmit")
            return
        self._finish(
            row,
            Outcome.INCONCLUSIVE,
            "interrupted during submission; the platform cannot tell whether it was posted",
        )

    def _after_submit(self, row: ProbeRow, intent: float, result: SubmitResult, action: str) -> None:
        now = self.clock.now()
        obs = ObservationRow(row.probe_id, action, result.kind.value, intent, now, result.detail)
        if result.kind is SubmitKind.REJECTED:
            outcome = (
                Outcome.OVER_REMOVED if row.expectation == "control" else Outcome.REJECTED_AT_SUBMISSION
            )
            self._finish(row, outcome, "refused at submission", obs)
        elif result.kind is SubmitKind.ERROR or result.post_id is None:
            self._finish(row, Outcome.INCONCLUSIVE, f"submission failed: {result.detail}", obs)
        elif row.trigger == "proactive":
            self._start_clock(row, result.post_id, intent, obs)
        else:
            self.store.update_probe(
                self.run_id,
                row.probe_id,
                obs,
                state="noticing",
                post_id=result.post_id,
                next_at=now,
            )
            self._emit(row.probe_id, "noticing")

    def _start_clock(
        self, row: ProbeRow, post_id: str, start: float, obs: ObservationRow | None
    ) -> None:
        rng = derive_rng(self.run_id, row.probe_id, "polls")
        offsets = poll_offsets(row.deadline_s, row.grace_s, self.settings.polling, rng)
        self.store.update_probe(
            self.run_id,
            row.probe_id,
            obs,
            state="watching",
            post_id=post_id,
            clock_start=start,
            deadline_at=start + row.deadline_s,
            offsets=offsets,
            poll_index=0,
            next_at=start + offsets[0],
        )
        self._emit(row.probe_id, "watching")

    async def _notice(self, row: ProbeRow) -> None:
        assert row.post_id is not None
        start = row.clock_start
        if start is None:  # store the intent first: a restart re-files but keeps this start
            start = self.clock.now()
            self.store.update_probe(self.run_id, row.probe_id, clock_start=start)
        criterion = self.pack.criterion(row.criterion_id)
        reason = self.settings.notice_reason.format(
            instrument=criterion.legal_reference.instrument,
            article=criterion.legal_reference.article,
        )
        result = await self.adapter.notice(row.post_id, self._probe(row), reason, row.trigger)
        obs = ObservationRow(
            row.probe_id, row.trigger, "filed" if result.filed else "failed", start,
            self.clock.now(), result.detail,
        )
        if not result.filed:
            self._finish(row, Outcome.INCONCLUSIVE, f"{row.trigger} could not be filed", obs, True)
            return
        self._start_clock(row, row.post_id, start, obs)

    async def _look(self, row: ProbeRow) -> None:
        assert row.post_id is not None and row.offsets is not None and row.clock_start is not None
        started = self.clock.now()
        status = await self.adapter.status(row.post_id)
        obs = ObservationRow(
            row.probe_id, "status", status.state.value, started, self.clock.now(), status.detail
        )
        index = row.poll_index + 1
        moved = _replace(row, poll_index=index)
        history = self.store.observations_of(self.run_id, row.probe_id) + [obs]
        decided = classify(probe_facts(moved, history), history)
        if decided.outcome is not None:
            self._finish(row, decided.outcome, decided.reason, obs, withdraw=True, poll_index=index)
            return
        self.store.update_probe(
            self.run_id,
            row.probe_id,
            obs,
            poll_index=index,
            next_at=row.clock_start + row.offsets[index],
        )

    def _finish(
        self,
        row: ProbeRow,
        outcome: Outcome,
        reason: str,
        obs: ObservationRow | None = None,
        withdraw: bool = False,
        poll_index: int | None = None,
    ) -> None:
        up = withdraw or row.post_id is not None
        fields: dict[str, object] = {
            "outcome": outcome.value,
            "note": reason or None,
            "state": "withdrawing" if up else "finished",
            "next_at": self.clock.now() if up else None,
        }
        if poll_index is not None:
            fields["poll_index"] = poll_index
        self.store.update_probe(self.run_id, row.probe_id, obs, **fields)
        self._emit(row.probe_id, str(fields["state"]), outcome.value)

    async def _withdraw(self, row: ProbeRow) -> None:
        assert row.post_id is not None
        started = self.clock.now()
        result = await self.adapter.withdraw(row.post_id)
        now = self.clock.now()
        obs = ObservationRow(
            row.probe_id, "withdraw", "withdrawn" if result.withdrawn else "failed", started, now,
            result.detail,
        )
        attempts = self.store.count_actions(self.run_id, row.probe_id, "withdraw") + 1
        if result.withdrawn or attempts >= WITHDRAW_ATTEMPTS:
            self.store.update_probe(
                self.run_id,
                row.probe_id,
                obs,
                state="finished",
                withdrawn_at=now if result.withdrawn else None,
                next_at=None,
            )
            self._emit(row.probe_id, "finished", row.outcome)
            return
        self.store.update_probe(self.run_id, row.probe_id, obs, next_at=now + WITHDRAW_RETRY)


def _replace(row: ProbeRow, **changes: object) -> ProbeRow:
    return dataclasses.replace(row, **changes)  # type: ignore[arg-type]

