"""From a plan to runs in the store, and from a stored run to a finished one.

This is where plans, packs, targets, adapters and the engine meet; the CLI and the tests call it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from audit.adapters.base import Adapter
from audit.adapters.factory import build_adapter
from audit.clock import Clock, to_utc
from audit.durations import parse_duration
from audit.engine import Engine, EngineSettings, ProgressEvent
from audit.errors import InputError, TargetUnreachable
from audit.evidence.ledger import EvidenceLedger, Redactor
from audit.http import SendGate
from audit.lifecycle import ProbeState, RunStatus
from audit.locking import HeldLock, RunBusy
from audit.packs import Pack, load_pack, resolve_pack
from audit.plan import Plan, Target, plan_dump
from audit.reachability import Reachability
from audit.store import ProbeRow, RunRow, SlotTaken
from audit.store_protocol import RunStore
from audit.sweep import CleanupReport, Sweeper
from audit.synthesis import SampleSize, derive_rng, synthesize_each

__all__ = [
    "PreparedRun",
    "cleanup_run",
    "create_runs",
    "execute_run",
    "give_up_after",
    "pack_digest",
    "run_lock",
]


@dataclass(frozen=True)
class PreparedRun:
    run_id: str
    pack: Pack
    target: Target
    probes: int


def pack_digest(pack: Pack) -> str:
    canonical = json.dumps(pack.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _run_id(now: float, plan: Plan, pack: Pack, target: Target) -> str:
    stamp = to_utc(now).strftime("%Y%m%dT%H%M%SZ")
    salt = hashlib.sha256(f"{now}\x00{plan.name}\x00{pack.pack.id}\x00{target.name}".encode())
    return f"{stamp}-{salt.hexdigest()[:6]}"


def check_target_allowed(target: Target, allow_production: bool) -> None:
    if target.environment == "production" and not allow_production:
        raise InputError(
            f"target {target.name} is a production environment; probes are refused there unless "
            "you pass --allow-production (and the plan names the target)"
        )


def _probe_rows(
    run_id: str, plan: Plan, pack: Pack, start: float, probe_key: str | None = None
) -> Iterator[ProbeRow]:
    """The run's probes as planned rows, one at a time, in synthesis order (``seq``); each is
    due at ``start`` until :func:`_submission_times` lays the schedule once all are stored.
    Probe ids derive from ``probe_key`` (default: the run id)."""
    size = SampleSize.from_sample(plan.sample)
    key = probe_key or run_id
    probes = synthesize_each(pack, plan.seed, size, run_key=key, criteria=plan.criteria)
    for index, probe in enumerate(probes):
        criterion = pack.criterion(probe.criterion_id)
        deadline = criterion.deadline_seconds / plan.time_scale
        yield ProbeRow(
            run_id=run_id,
            probe_id=probe.probe_id,
            seq=index,
            criterion_id=probe.criterion_id,
            expectation=probe.expectation.value,
            probe=probe.model_dump(mode="json"),
            trigger=criterion.trigger.value,
            deadline_s=deadline,
            grace_s=deadline * plan.grace,
            state=ProbeState.PLANNED,
            next_at=start,
            scheduled_at=start,
            post_id=None,
            submitted_at=None,
            clock_start=None,
            deadline_at=None,
            offsets=None,
            poll_index=0,
            withdrawn_at=None,
            outcome=None,
            note=None,
        )


def _submission_times(
    plan: Plan, pack: Pack, target: Target, start: float
) -> Callable[[list[str]], Iterator[tuple[float, str]]]:
    """When each stored probe (ids in ``seq`` order) is submitted: the window's slots in a
    shuffled order, so criteria and controls interleave and no block is recognisable."""

    def times(probe_ids: list[str]) -> Iterator[tuple[float, str]]:
        if not probe_ids:
            raise InputError(
                f"plan {plan.name}: pack {pack.pack.id} yields no probes for the chosen criteria"
            )
        rng = derive_rng(plan.seed, "schedule", pack.pack.id, target.name)
        order = list(range(len(probe_ids)))
        rng.shuffle(order)
        window = parse_duration(plan.schedule.submission_window) / plan.time_scale
        slot = window / len(probe_ids)
        for position, index in enumerate(order):
            at = start + slot * (position + plan.schedule.jitter * (rng.random() - 0.5))
            yield max(start, at), probe_ids[index]

    return times


def _checked_packs(plan: Plan, plan_source: Path | None, allow_production: bool) -> list[Pack]:
    """The plan's packs, once every check that needs no platform has passed."""
    base = plan_source.parent if plan_source else None
    packs = [load_pack(resolve_pack(ref, base)) for ref in plan.packs]
    for target in plan.targets:
        check_target_allowed(target, allow_production)
        target.token()  # fail now, not mid-run, when a secret is missing
        target.observer_token()
    for pack in packs:
        _check_criteria(plan, pack)
    return packs


def create_runs(
    store: RunStore,
    plan: Plan,
    plan_source: Path | None,
    clock: Clock,
    *,
    allow_production: bool = False,
    slot: float | None = None,
    probe_key: str | None = None,
) -> list[PreparedRun]:
    """One run per (pack, target) of the plan, with its probes planned in the store.

    With ``slot`` (a cron slot of a recurring plan, see :mod:`audit.schedule`) each run claims
    the slot for its pack and target in the same transaction; a run another process already
    made for that slot is left out, so two pollers never start the same scheduled run twice.

    Probe ids (the idempotency keys the platform sees) derive from the run id, so they never
    collide across runs on one platform. ``probe_key`` replaces the run id there, for a
    platform that lives only as long as one run (the demo's embedded sandbox): the same plan,
    seed and key then give the same ids, hence the same decisions of the seeded simulator.
    """
    try:
        packs = _checked_packs(plan, plan_source, allow_production)
    except InputError as exc:
        raise exc.naming(plan_source) from None
    prepared: list[PreparedRun] = []
    for pack in packs:
        for target in plan.targets:
            now = clock.now()
            run_id = _run_id(now, plan, pack, target)
            profile = _profile_of(target)
            rows = _carried(plan, target, profile, _probe_rows(run_id, plan, pack, now, probe_key))
            run = RunRow(
                run_id=run_id,
                created_at=now,
                plan_name=plan.name,
                plan=plan_dump(plan),
                target_name=target.name,
                target=target.model_dump(mode="json"),
                pack=pack.model_dump(mode="json"),
                pack_digest=pack_digest(pack),
                seed=plan.seed,
                time_scale=plan.time_scale,
                status=RunStatus.RUNNING,
                finished_at=None,
                failure=None,
                profile=profile,
            )
            times = _submission_times(plan, pack, target, now)
            try:
                count = store.create_run(run, rows, slot=slot, schedule=times)
            except SlotTaken:
                continue
            except InputError as exc:
                raise exc.naming(plan_source) from None
            prepared.append(PreparedRun(run_id, pack, target, count))
    return prepared


def _carried(
    plan: Plan, target: Target, profile: dict[str, Any] | None, rows: Iterable[ProbeRow]
) -> Iterator[ProbeRow]:
    """The rows, refused (an InputError, before anything is committed or posted) at the first
    probe of a modality the target cannot carry: a result for a modality that was never sent
    would be a false statement in a report."""
    media = None if profile is None else (profile.get("media") or {})
    for row in rows:
        modality = str(row.probe.get("modality", "text"))
        # the reference sandbox (no profile) takes every modality as media
        if media is not None and modality != "text" and modality not in media:
            share = f"{modality}_share: 0 in the plan's sample"
            raise InputError(
                f"plan {plan.name}: target {target.name} cannot carry {modality} probes (its "
                f"profile {profile.get('name') if profile else None!r} has no "
                f"'media.{modality}' post); fix: describe one in the profile "
                f"(docs/audit-your-sandbox.md, media posts) or set {share}"
            )
        yield row


def _profile_of(target: Target) -> dict[str, Any] | None:
    """The resolved profile a profile target reads its answers with, to record with the run."""
    if target.adapter != "profile":
        return None
    from audit.adapters.profile_load import check_target, profile_record

    return profile_record(check_target(target))


def _check_criteria(plan: Plan, pack: Pack) -> None:
    if plan.criteria is None:
        return
    known = {c.id for c in pack.criteria}
    unknown = [c for c in plan.criteria if c not in known]
    if unknown:
        raise InputError(
            f"'criteria' must name criteria of pack {pack.pack.id} "
            f"(got {', '.join(unknown)}; known: {', '.join(sorted(known))})"
        )


GIVE_UP_SHARE = 0.05  # of the shortest deadline as run: the default --give-up-after
GIVE_UP_FLOOR = 30.0  # seconds: never sooner than this


@dataclass
class _Parts:
    run: RunRow
    pack: Pack
    target: Target
    plan: Plan
    adapter: Adapter
    reachability: Reachability


def _parts(
    store: RunStore,
    run_id: str,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None,
    gate: SendGate | None = None,
) -> _Parts:
    run = store.run(run_id)
    target = Target.model_validate(run.target)
    token = target.token()
    ledger = EvidenceLedger(store, run_id, Redactor([token] if token else []))
    reachability = Reachability()
    ledger.observe(reachability.record)
    # a profile target reads its answers with the rules recorded with the run (the file may
    # have changed since), exactly as verify reads them again later
    profile = None
    if target.adapter == "profile":
        from audit.adapters.profile_load import recorded_profile

        profile = recorded_profile(run.profile)
    adapter = build_adapter(
        target, clock, ledger, seed=run.seed, transport=transport, profile=profile, gate=gate
    )
    return _Parts(
        run,
        store.pack_of(run),
        target,
        Plan.model_validate(run.plan),
        adapter,
        reachability,
    )


def give_up_after(store: RunStore, run_id: str, plan: Plan, override: float | None) -> float:
    """Wall seconds without a working answer after which the run ends: the flag, else the
    plan's ``give_up_after``, else :data:`GIVE_UP_SHARE` of the shortest deadline as run
    (deadlines compressed by the plan's time scale), at least :data:`GIVE_UP_FLOOR`."""
    if override is not None:
        return override
    if plan.give_up_after is not None:
        return parse_duration(plan.give_up_after)
    shortest = store.shortest_deadline(run_id) or 0.0  # one query, whatever the run's size
    return max(GIVE_UP_FLOOR, GIVE_UP_SHARE * shortest)


def run_lock(store: RunStore, run_id: str) -> HeldLock:
    """The lock a process must hold to carry the run forward or clean it up."""
    return store.run_lock(run_id)


async def execute_run(
    store: RunStore,
    run_id: str,
    clock: Clock,
    *,
    until_idle: bool = False,
    stop_at: float | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    give_up: float | None = None,
) -> float | None:
    """Carry a stored run forward; returns None once finished, else when work is next due.

    Takes the run's lock first: raises :class:`~audit.locking.RunBusy` (a runtime failure) when
    another process is working on the run. ``until_idle`` and ``stop_at`` are as for
    :meth:`Engine.run`. Before any step, one preflight exchange checks that the target answers
    (a wrong port or token fails in seconds); a target that then gives no working answer for
    ``give_up`` seconds (see :func:`give_up_after`) ends the run: it is marked failed with the
    reason and :class:`~audit.errors.TargetUnreachable` is raised. `resume` continues it.
    """
    with run_lock(store, run_id):
        parts = _parts(store, run_id, clock, transport)
        settings = EngineSettings(
            concurrency=parts.target.concurrency,
            polling=parts.plan.polling,
            notice_reason=parts.plan.notice_reason,
            give_up_after=give_up_after(store, run_id, parts.plan, give_up),
        )
        engine = Engine(
            store, run_id, parts.pack, parts.adapter, clock, settings, progress, parts.reachability
        )
        try:
            if store.next_due_time(run_id) is not None:
                await _preflight(parts)
                # the schedule is laid when the run starts, not when the plan was made
                store.lay_schedule(run_id, clock.now())
            upcoming = await engine.run(until_idle=until_idle, stop_at=stop_at)
        except Exception as exc:  # a failure of the tool, not of the platform: the run failed
            store.finish_run(
                run_id, RunStatus.FAILED, clock.now(), f"{type(exc).__name__}: {exc}"[:500]
            )
            raise
        finally:
            await parts.adapter.aclose()
        # a run that failed and was resumed to its end is complete
        if upcoming is None and store.run(run_id).status in (RunStatus.RUNNING, RunStatus.FAILED):
            store.finish_run(run_id, RunStatus.COMPLETE, clock.now())
        return upcoming


async def _preflight(parts: _Parts) -> None:
    problem = await parts.adapter.preflight()
    if problem is not None:
        raise TargetUnreachable(
            f"target {parts.target.name} ({parts.target.base_url}) does not answer as it must "
            f"before any probe is sent: {problem}"
        )


async def cleanup_run(
    store: RunStore,
    run_id: str,
    clock: Clock,
    *,
    wait: float = 0.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CleanupReport:
    """Withdraw every probe of the run still up and stop the run (see :mod:`audit.sweep`).

    Waits up to ``wait`` seconds for the run's lock, then raises :class:`RunBusy`.
    """
    lock = run_lock(store, run_id)
    if not lock.acquire(wait=wait):
        raise RunBusy(run_id, lock.holder())
    try:
        parts = _parts(store, run_id, clock, transport)
        sweeper = Sweeper(store, run_id, parts.adapter, clock, parts.target.concurrency)
        try:
            report = await sweeper.sweep()
        finally:
            await parts.adapter.aclose()
        if report.cancelled or report.cut_short:
            store.finish_run(run_id, RunStatus.CANCELLED, clock.now(), "stopped by cleanup")
        elif parts.run.status == RunStatus.RUNNING and store.next_due_time(run_id) is None:
            store.finish_run(run_id, RunStatus.COMPLETE, clock.now())
        return report
    finally:
        lock.release()
