"""The engine: drives every probe of a run through its lifecycle, durably.

Lifecycle of a probe (persisted in the store; each transition is committed before the next step
acts on it)::

    planned ─▶ submitting ─▶ noticing ─▶ watching ─▶ withdrawing ─▶ finished
                   │  (proactive: straight to watching)   ▲
                   └────────── refused / failed ──────────┴─▶ finished

The engine runs under the run's lock (:mod:`audit.locking`), so it is the only writer of the
run's probes. It holds only the probes whose next step falls due soonest (at most
``EngineSettings.resident`` of them, read in the order they fall due, as a compact row without
the content, which is read when a step sends it), keeps a write-through copy of those with a
heap of due times, and commits every transition (with the observation that caused it) before
the probe's next network action, before any step of the same probe starts and before the
engine returns: the transitions of steps that finished together go in one transaction. At
most ``concurrency`` of them wait; on a real clock none waits longer than :data:`COMMIT_LAG`
or through a sleep (a virtual clock's sleeps take no time). A kill loses only steps whose
answers were not committed yet, redone from the state before them, as after a kill during
their requests. A probe whose next step moves
past the last one read goes back to the store and is read again when its turn comes, so memory
follows the work in flight, not the size of the run.

A probe found in ``submitting`` when the engine starts was interrupted mid-submission (nobody
else can be submitting it: the lock says so). It is reconciled at once: looked up by its
idempotency key, re-sent with the same key only where the platform de-duplicates by key, and
otherwise marked inconclusive, never blindly posted twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from audit.adapters.base import (
    Adapter,
    NoticeResult,
    PostState,
    StatusResult,
    SubmitKind,
    SubmitResult,
    View,
    WithdrawResult,
    never_arrived,
)
from audit.clock import Clock
from audit.errors import TargetUnreachable
from audit.lifecycle import Action, FilingResult, ProbeState, WithdrawalResult
from audit.outcomes import (
    Outcome,
    ProbeFacts,
    Window,
    classify_window,
    extend_window,
    look_window,
)
from audit.packs import Pack
from audit.polling import PollingPolicy, lead_from, next_poll_index, poll_offsets
from audit.probe import Probe
from audit.reachability import Reachability
from audit.store_protocol import KEEP, NO_CHANGE, ProbeUpdate, RunStore
from audit.store_rows import ObservationRow, ProbeRow
from audit.synthesis import derive_rng

__all__ = ["Engine", "EngineSettings", "ProgressEvent", "filing_fate_unknown", "probe_facts"]

RECONCILE_AFTER = 30.0  # shown as a submitting probe's next step; a restart reconciles at once
WITHDRAW_RETRY = 60.0  # first retry of a failed withdrawal; doubles each time
WITHDRAW_ATTEMPTS = 5
FAULT_RETRY = 5.0  # first retry of a submission or filing whose adapter call raised; doubles
FAULT_ATTEMPTS = 3  # then the call's error result stands (the probe is inconclusive)
# a submission or filing whose retries were all used up is tried again later, durably, for as
# long as its probe can still be measured: until one deadline after its planned time
LATER_RETRY = 0.005  # share of the deadline before the first later try (doubling)
LATER_RETRY_MIN, LATER_RETRY_MAX = 5.0, 900.0  # seconds, whatever the deadline
REPLACEMENT_LOOKS = 4  # a failed decisive look is made again up to this many times
REPLACE_AFTER = 0.002  # share of the deadline before the first replacement (doubling, <= 5 s)
COMMIT_LAG = 0.05  # real seconds a finished step's transition may wait for others to share a commit


@dataclass(frozen=True)
class EngineSettings:
    concurrency: int = 16
    polling: PollingPolicy = field(default_factory=PollingPolicy)
    notice_reason: str = "This post offers a prohibited service under {instrument}, {article}."
    # end the run when the target has given no working answer for this long (wall seconds)
    give_up_after: float | None = None
    # probes held in memory at once (those due soonest); the rest wait in the store
    resident: int = 2000


@dataclass(frozen=True)
class ProgressEvent:
    probe_id: str
    state: str
    outcome: str | None


_SUBMIT_ACTIONS = frozenset({Action.SUBMIT, Action.LOOKUP, Action.RESUBMIT})
_FILINGS = frozenset({Action.NOTICE, Action.ORDER})


def _observation_end(row: ProbeRow) -> float | None:
    if row.offsets and row.clock_start is not None and row.poll_index >= len(row.offsets):
        return row.clock_start + row.offsets[-1]
    return None


def probe_facts(row: ProbeRow, observations: list[ObservationRow]) -> ProbeFacts:
    """What the store says about a probe, in the terms :func:`classify` needs."""
    rejected = any(o.action in _SUBMIT_ACTIONS and o.result == "rejected" for o in observations)
    failure = None
    filings = [o.result for o in observations if o.action in _FILINGS]
    # a failed filing counts only where no later try filed it
    if FilingResult.FAILED in filings and FilingResult.FILED not in filings:
        failure = f"the {row.trigger} could not be filed"
    elif row.post_id is None and not rejected and row.state == ProbeState.FINISHED:
        failure = row.note or "not submitted"
    return ProbeFacts(
        expectation=row.expectation,
        accepted=row.post_id is not None and row.clock_start is not None,
        rejected=rejected,
        clock_start=row.clock_start,
        deadline_at=row.deadline_at,
        observation_end=_observation_end(row),
        failure=failure,
        posted_at=row.submitted_at,
    )


def filing_fate_unknown(history: Sequence[ObservationRow], action: str) -> bool:
    """Whether an earlier attempt at this filing may have reached the platform unrecorded: an
    intent ("sending") with no answer after it, or an adapter exception. A filing sent again
    then takes the platform's time of the first (its answer carries it) as the clock's start;
    after a clean "failed" answer nothing was filed and the new attempt's own time stands."""
    pending = unknown = False
    for o in history:
        if o.action != action:
            continue
        if o.result == FilingResult.SENDING:
            unknown = unknown or pending
            pending = True
        elif o.result in (FilingResult.FILED, FilingResult.FAILED):
            pending = False
        else:  # "error": the adapter raised, before or after sending
            unknown, pending = True, False
    return unknown or pending


def _watching_facts(row: ProbeRow, poll_index: int) -> ProbeFacts:
    """The facts of a probe being watched (accepted, its deadline clock running), with the
    planned looks up to ``poll_index`` made."""
    assert row.offsets is not None
    assert row.clock_start is not None
    done = poll_index >= len(row.offsets)
    return ProbeFacts(
        expectation=row.expectation,
        accepted=True,
        rejected=False,
        clock_start=row.clock_start,
        deadline_at=row.deadline_at,
        observation_end=row.clock_start + row.offsets[-1] if done else None,
        posted_at=row.submitted_at,
    )


@dataclass
class _Live:
    """The engine's copy of one probe with work left (the store has the same, committed)."""

    row: ProbeRow
    window: Window = (None, None)
    withdrawals: int = 0
    faults: int = 0  # adapter calls of this probe that raised and were retried later
    replacements: int = 0  # replacement looks made for the current planned look
    version: int = 0
    probe: Probe | None = field(default=None, repr=False)


class Engine:
    def __init__(
        self,
        store: RunStore,
        run_id: str,
        pack: Pack,
        adapter: Adapter,
        clock: Clock,
        settings: EngineSettings,
        progress: Callable[[ProgressEvent], None] | None = None,
        reachability: Reachability | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.pack = pack
        self.adapter = adapter
        self.clock = clock
        self.settings = settings
        self._progress = progress
        self._reach = reachability
        self._live: dict[str, _Live] = {}
        self._due: list[tuple[float, int, int, str]] = []  # (next_at, seq, version, probe_id)
        self._versions = 0
        # every probe whose next step falls at or before this (time, seq) is held; None with
        # _exhausted: the store had nothing more, so every probe with work left is held
        self._until: tuple[float, int] | None = None
        self._exhausted = False
        # retry counters of probes gone back to the store (only those that faulted)
        self._kept: dict[str, tuple[int, int]] = {}
        # transitions made and not yet committed: (probe_id, observation, fields)
        self._queued: list[tuple[str, ObservationRow | None, ProbeUpdate]] = []
        self._dirty: set[str] = set()  # the probes among them
        # how late recent looks' answers came after their planned time (queueing, limits,
        # round trip): places the last look before each deadline so its answer precedes it
        self._lateness: deque[float] = deque(maxlen=64)
        self._since = 0.0
        # the step of a probe in each state with work left (by the stored state's text)
        self._handlers: dict[str, Callable[[_Live], Awaitable[None]]] = {
            ProbeState.PLANNED: self._submit,
            ProbeState.SUBMITTING: self._reconcile,
            ProbeState.NOTICING: self._notice,
            ProbeState.WATCHING: self._look,
            ProbeState.WITHDRAWING: self._withdraw,
        }

    # loop -------------------------------------------------------------------------------
    async def run(self, *, until_idle: bool = False, stop_at: float | None = None) -> float | None:
        """Do due work; return None when every probe is finished, else the next due time.

        With ``until_idle`` it returns as soon as nothing is due now (for cron-style polling);
        with ``stop_at`` it keeps going, sleeping on the clock, until the next piece of work is
        due after that time; otherwise it runs until every probe is finished.
        """
        self._load()
        self._since = self.clock.now()  # looks due before this waited for the process itself
        inflight: dict[str, asyncio.Task[None]] = {}
        with self.store.exchanges_with_transitions():
            try:
                while True:
                    if len(self._queued) >= self.settings.concurrency:
                        self._flush()
                    self._check_target()
                    self._start_due(inflight)
                    if inflight:
                        await self._wait_some(inflight)
                        continue
                    upcoming = self._next_due()
                    if upcoming is None or until_idle:
                        return upcoming
                    if stop_at is not None and upcoming > stop_at:
                        return upcoming
                    if self.clock.real:  # a real sleep: nothing waits through it
                        self._flush()
                    await self.clock.sleep_until(upcoming)
            finally:
                for task in inflight.values():
                    task.cancel()
                if inflight:
                    await asyncio.gather(*inflight.values(), return_exceptions=True)
                self._flush()

    def _check_target(self) -> None:
        """End the run, loudly, once the target has answered nothing usable for too long
        while some probe still waits for its outcome (the work in flight is cancelled; a
        submission cut short is reconciled on resume). Once every outcome is known, only
        withdrawals are left: their own bounded retries leave what fails to `cleanup`."""
        limit = self.settings.give_up_after
        if self._reach is None or limit is None:
            return
        down = self._reach.dead(limit)
        if down is not None and self._outcomes_pending():
            raise TargetUnreachable(down.reason())

    def _outcomes_pending(self) -> bool:
        if any(live.row.outcome is None for live in self._live.values()):
            return True
        self._flush()
        return not self._exhausted and self.store.outcomes_pending(self.run_id)

    def _load(self) -> None:
        """Read the probes due first; interrupted submissions are read too and due now."""
        self._live.clear()
        self._due.clear()
        self._until, self._exhausted = None, False
        now = self.clock.now()
        rows = [
            dataclasses.replace(row, next_at=now) if row.state == ProbeState.SUBMITTING else row
            for row in self.store.unscheduled_probes(self.run_id)
        ]
        self._admit(rows)
        self._refill()

    def _refill(self) -> None:
        """Read the next probes due from the store, after those already held."""
        self._flush()
        rows = self.store.due_probes(self.run_id, self._until, self.settings.resident)
        if len(rows) < self.settings.resident:
            self._exhausted = True
        if rows:
            last = rows[-1]
            assert last.next_at is not None
            self._until = (last.next_at, last.seq)
        self._admit(rows)

    def _admit(self, rows: Sequence[ProbeRow]) -> None:
        """Hold these probes (those not held already), with their look windows."""
        fresh: list[str] = []
        for row in rows:
            if row.probe_id in self._live:  # in flight: its own copy is newer
                continue
            live = _Live(row)
            live.faults, live.replacements = self._kept.pop(row.probe_id, (0, 0))
            self._live[row.probe_id] = live
            self._schedule(live)
            fresh.append(row.probe_id)
        looks: dict[str, list[ObservationRow]] = {}
        for obs in self.store.looks_of(self.run_id, fresh) if fresh else ():
            if obs.action == "withdraw":
                self._live[obs.probe_id].withdrawals += 1
            else:
                looks.setdefault(obs.probe_id, []).append(obs)
        for probe_id, history in looks.items():
            self._live[probe_id].window = look_window(history)

    def _beyond(self, live: _Live) -> bool:
        """Whether the probe's next step falls after the last one read (it may go back)."""
        at = live.row.next_at
        if self._exhausted or at is None or self._until is None:
            return False
        return (at, live.row.seq) > self._until

    def _release(self, probe_id: str) -> None:
        """After a step: a probe now due after the last one read goes back to the store."""
        live = self._live.get(probe_id)
        if live is None or not self._beyond(live):
            return
        del self._live[probe_id]
        if live.faults or live.replacements:
            self._kept[probe_id] = (live.faults, live.replacements)
        if len(self._due) > 4 * (len(self._live) + self.settings.resident):
            # the entries of probes gone back to the store: dropped, so the heap stays as
            # small as what is held
            self._due = [
                e for e in self._due if e[3] in self._live and self._live[e[3]].version == e[2]
            ]
            heapq.heapify(self._due)

    def _schedule(self, live: _Live) -> None:
        self._versions += 1
        live.version = self._versions
        if live.row.next_at is not None:
            entry = (live.row.next_at, live.row.seq, live.version, live.row.probe_id)
            heapq.heappush(self._due, entry)

    def _pop_stale(self, inflight: dict[str, asyncio.Task[None]]) -> None:
        while self._due:
            _, _, version, probe_id = self._due[0]
            live = self._live.get(probe_id)
            if live is not None and live.version == version and probe_id not in inflight:
                return
            heapq.heappop(self._due)

    def _next_due(self, inflight: dict[str, asyncio.Task[None]] | None = None) -> float | None:
        self._pop_stale(inflight or {})
        if not self._exhausted and (
            not self._due or self._until is None or self._due[0][:2] > self._until
        ):  # probes due before the next held one may wait in the store
            self._refill()
            self._pop_stale(inflight or {})
        return self._due[0][0] if self._due else None

    def _start_due(self, inflight: dict[str, asyncio.Task[None]]) -> None:
        now = self.clock.now()
        while len(inflight) < self.settings.concurrency:
            upcoming = self._next_due(inflight)
            if upcoming is None or upcoming > now:
                return
            probe_id = heapq.heappop(self._due)[3]
            if probe_id in self._dirty:  # its last transition is committed before it acts
                self._flush()
            inflight[probe_id] = asyncio.create_task(self._step(self._live[probe_id]))

    async def _wait_some(self, inflight: dict[str, asyncio.Task[None]]) -> None:
        timeout = None
        upcoming = self._next_due(inflight)
        if upcoming is not None and self.clock.real and len(inflight) < self.settings.concurrency:
            timeout = max(0.0, upcoming - self.clock.now())
        if self._queued and self.clock.real:
            timeout = COMMIT_LAG if timeout is None else min(timeout, COMMIT_LAG)
        # virtual time: in-flight work completes without time passing, so wait for it
        done, _ = await asyncio.wait(
            inflight.values(), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:  # nothing else finished meanwhile: what waits is committed now
            self._flush()
        for probe_id, task in list(inflight.items()):
            if task in done:
                del inflight[probe_id]
                task.result()
                self._release(probe_id)

    # transitions ------------------------------------------------------------------------
    def _commit(
        self, live: _Live, obs: ObservationRow | None = None, change: ProbeUpdate = NO_CHANGE
    ) -> None:
        """Make the transition (and record what caused it) in the engine's copy, and queue it
        for the store: :meth:`_flush` commits it, with every other one queued, in one
        transaction, before the probe's next network action (the steps call it) or its next
        step (the loop does), and before any store read that needs it."""
        self._queued.append((live.row.probe_id, obs, change))
        self._dirty.add(live.row.probe_id)
        live.row = change.applied_to(live.row)
        if live.row.state == ProbeState.FINISHED and live.row.next_at is None:
            del self._live[live.row.probe_id]
            self._kept.pop(live.row.probe_id, None)
        elif change.sets("next_at"):
            self._schedule(live)

    def _flush(self) -> None:
        """Commit every queued transition, in one transaction."""
        if self._queued:
            queued, self._queued = self._queued, []
            self._dirty.clear()
            self.store.update_probes(self.run_id, queued)

    def _emit(self, probe_id: str, state: str, outcome: str | None = None) -> None:
        if self._progress is not None:
            self._progress(ProgressEvent(probe_id, state, outcome))

    def _probe(self, live: _Live) -> Probe:
        """The probe's content, read from the store when a step first needs it."""
        if live.probe is None:
            content = self.store.probe_content(self.run_id, live.row.probe_id)
            live.probe = Probe.model_validate(content)
        return live.probe

    # steps ------------------------------------------------------------------------------
    async def _step(self, live: _Live) -> None:
        handler = self._handlers.get(live.row.state)
        if handler is None:
            ProbeState(live.row.state)  # a state that is none raises, as it always has
            self._commit(live, None, ProbeUpdate(next_at=None))
            return
        await handler(live)

    async def _submit(self, live: _Live) -> None:
        now = self.clock.now()
        self._commit(
            live,
            None,
            ProbeUpdate(
                state=ProbeState.SUBMITTING, submitted_at=now, next_at=now + RECONCILE_AFTER
            ),
        )
        self._flush()  # a process killed from here on reconciles, never posts blindly
        try:
            result = await self.adapter.submit(self._probe(live), live.row.probe_id)
        except Exception as exc:  # an adapter's exception costs this probe's step only
            if self._retry_raised(live, "submit", now, exc):
                return  # still submitting: reconciled by lookup later, never posted blindly
            result = SubmitResult(SubmitKind.ERROR, detail=_raised(exc))
        self._after_submit(live, now, result, "submit")

    async def _reconcile(self, live: _Live) -> None:
        probe = self._probe(live)
        try:
            found = await self.adapter.lookup(probe, live.row.probe_id)
        except Exception as exc:
            found = SubmitResult(SubmitKind.ERROR, detail=_raised(exc))
        row = live.row
        intent = row.submitted_at if row.submitted_at is not None else self.clock.now()
        if found is not None and found.kind is SubmitKind.ACCEPTED and found.sent_at is None:
            # found after a restart: the platform's own time of the post is the accepted
            # attempt's. Without it a proactive probe's clock start cannot be known (never the
            # intent); a triggered probe's clock starts at its filing, so it goes on.
            found = dataclasses.replace(found, sent_at=found.platform_time)
            if found.sent_at is None and row.trigger == "proactive":
                self._finish(
                    live,
                    Outcome.INCONCLUSIVE,
                    "found after a restart; when the platform received it is not known",
                    ObservationRow(
                        row.probe_id, "lookup", "accepted", intent, self.clock.now(), found.detail
                    ),
                    post_id=found.post_id,
                )
                return
        if found is not None and found.kind is not SubmitKind.ERROR:
            self._after_submit(live, intent, found, "lookup")
            return
        detail = found.detail if found is not None else "the platform offers no lookup"
        lookup = ObservationRow(row.probe_id, "lookup", "error", intent, self.clock.now(), detail)
        self._commit(live, lookup)
        self._flush()
        if self.adapter.supports_idempotency or (found is not None and never_arrived(found)):
            # The platform de-duplicates by key, or says it never got the post: sending again
            # cannot post twice.
            try:
                result = await self.adapter.submit(probe, row.probe_id)
            except Exception as exc:
                result = SubmitResult(SubmitKind.ERROR, detail=_raised(exc))
            self._after_submit(live, intent, result, "resubmit")
            return
        if found is not None:  # the lookup itself failed (an outage): ask again later
            retry_at = self._later_try(live, _SUBMIT_ACTIONS)
            if retry_at is not None:
                self._commit(live, None, ProbeUpdate(next_at=retry_at))
                return
        self._finish(
            live,
            Outcome.INCONCLUSIVE,
            "interrupted during submission; the platform cannot tell whether it was posted",
        )

    def _after_submit(self, live: _Live, intent: float, result: SubmitResult, action: str) -> None:
        row = live.row
        now = self.clock.now()
        obs = ObservationRow(row.probe_id, action, result.kind.value, intent, now, result.detail)
        if result.kind is SubmitKind.REJECTED:
            outcome = (
                Outcome.OVER_REMOVED
                if row.expectation == "control"
                else Outcome.REJECTED_AT_SUBMISSION
            )
            self._finish(live, outcome, "refused at submission", obs)
        elif result.kind is SubmitKind.ERROR or result.post_id is None:
            retry_at = self._later_try(live, _SUBMIT_ACTIONS)
            if retry_at is not None:  # reconciled by lookup first, then sent again if safe
                self._commit(live, obs, ProbeUpdate(next_at=retry_at))
                return
            self._finish(live, Outcome.INCONCLUSIVE, f"submission failed: {result.detail}", obs)
        elif row.trigger == "proactive":
            if result.sent_at is None:
                # the clock starts when the platform received it, never at the tool's intent
                reason = "accepted, but when the platform received it is not known"
                self._finish(live, Outcome.INCONCLUSIVE, reason, obs, post_id=result.post_id)
            else:
                self._start_clock(live, result.post_id, result.sent_at, obs)
        else:  # its clock starts at the filing: when the platform received the post is moot
            self._commit(
                live,
                obs,
                ProbeUpdate(state=ProbeState.NOTICING, post_id=result.post_id, next_at=now),
            )
            self._emit(row.probe_id, ProbeState.NOTICING)

    def _start_clock(
        self, live: _Live, post_id: str, start: float, obs: ObservationRow | None
    ) -> None:
        row = live.row
        rng = derive_rng(self.run_id, row.probe_id, "polls")
        offsets = poll_offsets(
            row.deadline_s, row.grace_s, self.settings.polling, rng, self._lead()
        )
        self._commit(
            live,
            obs,
            ProbeUpdate(
                state=ProbeState.WATCHING,
                post_id=post_id,
                clock_start=start,
                deadline_at=start + row.deadline_s,
                offsets=offsets,
                poll_index=0,
                next_at=start + offsets[0],
            ),
        )
        self._emit(row.probe_id, ProbeState.WATCHING)

    async def _notice(self, live: _Live) -> None:
        """File the notice or order once. Its intent is stored before it is sent ("sending"),
        so a process that stops between the two leaves a trace: the next one sends the same
        filing again only where the platform de-duplicates filings (and then takes the
        platform's time of the first), else the probe is inconclusive, never filed twice."""
        row = live.row
        assert row.post_id is not None
        start = self.clock.now()
        self._flush()
        history = self.store.observations_of(self.run_id, row.probe_id)
        interrupted = filing_fate_unknown(history, row.trigger)
        if interrupted and not self.adapter.notice_idempotent:
            reason = (
                f"interrupted while the {row.trigger} was being filed; not filed again (it may "
                "have reached the platform, which cannot de-duplicate filings)"
            )
            self._finish(live, Outcome.INCONCLUSIVE, reason)
            return
        criterion = self.pack.criterion(row.criterion_id)
        reason = self.settings.notice_reason.format(
            instrument=criterion.legal_reference.instrument,
            article=criterion.legal_reference.article,
        )
        intent = ObservationRow(row.probe_id, row.trigger, FilingResult.SENDING, start, start, "")
        self._commit(live, intent)
        self._flush()  # committed before anything is sent
        try:
            result = await self.adapter.notice(row.post_id, self._probe(live), reason, row.trigger)
        except Exception as exc:
            if self._retry_raised(live, row.trigger, start, exc):
                return
            result = NoticeResult(False, detail=_raised(exc))
        obs = ObservationRow(
            row.probe_id,
            row.trigger,
            FilingResult.FILED if result.filed else FilingResult.FAILED,
            start,
            self.clock.now(),
            result.detail,
        )
        # the deadline runs from the accepted filing attempt, not from the tool's intent; a
        # filing sent again may be answered with the first one: the platform's time is its
        sent_at = result.platform_time if interrupted else result.sent_at
        if not result.filed and self.adapter.notice_idempotent:
            retry_at = self._later_try(live, frozenset({row.trigger}))
            if retry_at is not None:  # sent again later under the same key: filed once
                self._commit(live, obs, ProbeUpdate(next_at=retry_at))
                return
        if not result.filed or sent_at is None:
            why = f"{row.trigger} could not be filed"
            if result.filed:
                why = f"{row.trigger} filed again; when the platform received it is not known"
            self._finish(live, Outcome.INCONCLUSIVE, why, obs)
            return
        self._start_clock(live, row.post_id, sent_at, obs)

    async def _look(self, live: _Live) -> None:
        row = live.row
        assert row.post_id is not None
        assert row.offsets is not None
        assert row.clock_start is not None
        started = self.clock.now()
        try:
            status = await self.adapter.status(row.post_id, row.probe_id)
        except Exception as exc:
            status = StatusResult(PostState.ERROR, _raised(exc))
        author = status.author_state.value if status.author_state is not None else None
        obs = ObservationRow(
            row.probe_id,
            "status",
            status.state.value,
            started,
            self.clock.now(),
            status.detail,
            status.view.value,
            author,
        )
        if status.state.is_measured and row.next_at is not None and row.next_at >= self._since:
            self._lateness.append(obs.ended_at - row.next_at)
        replace_at = self._replacement_at(live, status.state, started)
        if replace_at is not None:  # a fault on a decisive look decides nothing: look again
            self._commit(live, obs, ProbeUpdate(next_at=replace_at))
            return
        live.replacements = 0
        # planned looks that fell due while the engine was down are not made in a burst
        index = next_poll_index(row.offsets, row.clock_start, row.poll_index, started)
        live.window = extend_window(live.window, obs)
        decided = classify_window(_watching_facts(row, index), live.window)
        if decided.outcome is not None:
            self._finish(live, decided.outcome, decided.reason, obs, poll_index=index)
            return
        self._commit(live, obs, ProbeUpdate(poll_index=index, next_at=self._planned_at(row, index)))

    def _lead(self) -> float:
        return lead_from(list(self._lateness))

    def _planned_at(self, row: ProbeRow, index: int) -> float:
        """When the planned look ``index`` is due; the last before the deadline moves earlier
        if the target's answers have become slower since the schedule was laid."""
        assert row.offsets is not None
        assert row.clock_start is not None
        planned = row.clock_start + row.offsets[index]
        policy = self.settings.polling
        last_before = index + 1 < len(row.offsets) and row.offsets[index + 1] == row.deadline_s
        if policy.margin is None and last_before:
            lead = policy.margin_seconds(row.deadline_s, self._lead())
            planned = min(planned, row.clock_start + row.deadline_s - lead)
        return planned

    def _later_try(self, live: _Live, actions: frozenset[str]) -> float | None:
        """When to try a submission or filing again whose retries were used up (an outage
        longer than the request's budget); None once the probe could no longer be measured
        as planned (one deadline after its planned time). Counted from the stored
        observations, so a restart does not reset it."""
        row = live.row
        self._flush()
        failed = sum(
            1
            for o in self.store.observations_of(self.run_id, row.probe_id)
            if o.action in actions and o.result in ("error", "failed")
        )
        delay = min(LATER_RETRY_MAX, max(LATER_RETRY_MIN, LATER_RETRY * row.deadline_s))
        at = self.clock.now() + min(LATER_RETRY_MAX, delay * 2.0**failed)
        return at if at <= row.scheduled_at + row.deadline_s else None

    def _retry_raised(self, live: _Live, action: str, started: float, exc: Exception) -> bool:
        """Record an adapter's exception as an error observation and retry the step later;
        False once it has raised :data:`FAULT_ATTEMPTS` times (its error result then stands)."""
        live.faults += 1
        if live.faults >= FAULT_ATTEMPTS:
            return False
        now = self.clock.now()
        obs = ObservationRow(live.row.probe_id, action, "error", started, now, _raised(exc))
        self._commit(live, obs, ProbeUpdate(next_at=now + FAULT_RETRY * 2 ** (live.faults - 1)))
        return True

    def _replacement_at(self, live: _Live, state: PostState, started: float) -> float | None:
        """When to replace a failed decisive look (the last planned before the deadline, the
        one at it, the grace looks); None: not failed, not decisive, or out of replacements
        (or, before the deadline, a replacement would not be answered before it)."""
        row = live.row
        assert row.offsets is not None
        assert row.clock_start is not None
        if state.is_measured or live.replacements >= REPLACEMENT_LOOKS:
            return None
        before = [i for i, offset in enumerate(row.offsets) if offset < row.deadline_s]
        if before and row.poll_index < before[-1]:
            return None
        delay = min(5.0, REPLACE_AFTER * row.deadline_s) * float(2**live.replacements)
        at = self.clock.now() + delay
        planned = row.clock_start + row.offsets[row.poll_index]
        if planned < row.clock_start + row.deadline_s <= at + (self.clock.now() - started):
            return None  # the deadline look comes next and tells as much
        live.replacements += 1
        return at

    def _finish(
        self,
        live: _Live,
        outcome: Outcome,
        reason: str,
        obs: ObservationRow | None = None,
        poll_index: int | None = None,
        post_id: str | None = None,
    ) -> None:
        up = (live.row.post_id is not None or post_id is not None) and self._still_up(obs)
        state = ProbeState.WITHDRAWING if up else ProbeState.FINISHED
        change = ProbeUpdate(
            outcome=outcome.value,
            note=reason or None,
            state=state,
            next_at=self.clock.now() if up else None,
            poll_index=KEEP if poll_index is None else poll_index,
            post_id=KEEP if post_id is None else post_id,
        )
        probe_id = live.row.probe_id
        self._commit(live, obs, change)
        self._emit(probe_id, str(state), outcome.value)

    def _still_up(self, obs: ObservationRow | None) -> bool:
        """Whether a post must be withdrawn: not when the look that decided saw it gone, nor
        removed where the platform's removal took it down for good; always after a look in the
        observer's view, which says nothing of what the author can still reach."""
        if obs is None or obs.action != "status":
            return True
        if obs.view == View.OBSERVER:  # gone for the public may still be up for its author
            return True
        if obs.result == "gone":
            return False
        return obs.result != "removed" or self.adapter.withdraw_removed

    async def _withdraw(self, live: _Live) -> None:
        row = live.row
        assert row.post_id is not None
        started = self.clock.now()
        try:
            result = await self.adapter.withdraw(row.post_id, row.probe_id)
        except Exception as exc:
            result = WithdrawResult(False, _raised(exc))
        now = self.clock.now()
        obs = _withdraw_observation(row.probe_id, result.withdrawn, started, now, result.detail)
        live.withdrawals += 1
        if result.withdrawn or live.withdrawals >= WITHDRAW_ATTEMPTS:
            self._commit(
                live,
                obs,
                ProbeUpdate(
                    state=ProbeState.FINISHED,
                    withdrawn_at=now if result.withdrawn else None,
                    next_at=None,
                ),
            )
            self._emit(row.probe_id, ProbeState.FINISHED, row.outcome)
            return
        delay = WITHDRAW_RETRY * 2 ** (live.withdrawals - 1)
        self._commit(live, obs, ProbeUpdate(next_at=now + delay))


def _raised(exc: Exception) -> str:
    """An adapter's exception as an error observation's detail: its type and message."""
    return f"the adapter raised {type(exc).__name__}: {exc}"[:1000]


def _withdraw_observation(
    probe_id: str, withdrawn: bool, started: float, ended: float, detail: str
) -> ObservationRow:
    result = WithdrawalResult.WITHDRAWN if withdrawn else WithdrawalResult.FAILED
    return ObservationRow(probe_id, "withdraw", result, started, ended, detail)
