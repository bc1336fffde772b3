"""Commands for audits that outlive a process: ``poll``, ``status``, ``cleanup``, ``schedule``.

``poll`` is what cron, a systemd timer or a Kubernetes CronJob runs: it starts the runs of
recurring plans whose cron slot has come, does the work due now for every unfinished run (or
for the RUN_IDs given), writes the scorecards of runs that finish, prints when it next needs to
run, and exits. Two pollers on one workspace never do the same work: each run is carried by the
process holding its lock, and a poller that finds a run busy skips it.

Exit codes of ``poll``: 0 the due work was done (a run skipped because another poller holds it
is normal, not an error) · 2 usage or input error · 4 some run could not be carried forward
(store or target failure; the other runs were). Verdicts never change ``poll``'s exit code:
``report RUN_ID`` exits with the verdict's code.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from audit.commands.context import group_settings
from audit.errors import AuditError, InputError
from audit.lifecycle import ProbeState, RunStatus
from audit.options import formats_option, give_up_option, seconds_callback

if TYPE_CHECKING:  # the commands import what they use in their bodies: --help stays light
    from audit.clock import SystemClock
    from audit.store_protocol import RunStore
    from audit.sweep import CleanupReport
    from audit.ui import Progress

__all__ = ["COMMANDS", "cleanup", "last_deadline", "poll", "schedule", "status"]

EXIT_OK, EXIT_RUNTIME = 0, 4


def _workspace() -> tuple[RunStore, Path]:
    """The store and the reports folder the main command group was given."""
    root = group_settings()
    return root.workspace.open(), root.reports


def _when(epoch: float | None, now: float) -> str:
    from audit.clock import utc_iso
    from audit.durations import format_duration

    if epoch is None:
        return "none"
    delta = epoch - now
    relative = f"in {format_duration(delta)}" if delta > 0 else "now"
    return f"{utc_iso(epoch)} ({relative})"


# poll -------------------------------------------------------------------------------------
@dataclass
class PolledRun:
    run_id: str
    result: str  # finished | pending | busy | failed
    next_at: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class _PollSettings:
    clock: SystemClock
    stop_at: float | None
    give_up: float | None


async def _poll_one(
    store: RunStore, run_id: str, settings: _PollSettings, progress: Progress
) -> PolledRun:
    from audit.locking import RunBusy
    from audit.runner import execute_run

    try:
        upcoming = await execute_run(
            store,
            run_id,
            settings.clock,
            until_idle=settings.stop_at is None,
            stop_at=settings.stop_at,
            progress=progress.update,
            give_up=settings.give_up,
        )
    except RunBusy as exc:
        return PolledRun(run_id, "busy", detail=str(exc))
    except AuditError as exc:
        return PolledRun(run_id, "failed", detail=str(exc))
    return PolledRun(run_id, "finished" if upcoming is None else "pending", upcoming)


async def _poll_runs(
    store: RunStore, run_ids: list[str], settings: _PollSettings
) -> list[PolledRun]:
    """Every run forward at once, each with its progress on stderr (a line every 30 s when
    stderr is not a terminal)."""
    import asyncio

    from audit.ui import Progress

    with ExitStack() as stack:
        progress = {
            r: stack.enter_context(
                Progress(
                    len(store.probes(r)),
                    f"run {r}",
                    last_deadline=partial(last_deadline, store, r),
                    now=settings.clock.now,
                )
            )
            for r in run_ids
        }
        return list(
            await asyncio.gather(*(_poll_one(store, r, settings, progress[r]) for r in run_ids))
        )


def _start_scheduled(
    store: RunStore, plan_path: Path, clock: SystemClock, max_lateness: float
) -> tuple[list[str], float, str]:
    """Start the plan's runs for its latest cron slot if due: (run ids, next slot, message)."""
    from audit.clock import utc_iso
    from audit.plan import load_plan
    from audit.runner import create_runs
    from audit.schedule import decide_slot, parse_cron

    plan = load_plan(plan_path)
    if plan.schedule.cron is None:
        raise InputError(
            "'schedule.cron' must be set for `poll --plan` (use `run --plan` for a one-off run)",
            source=plan_path,
        )
    cron = parse_cron(plan.schedule.cron, plan_path)
    started = {s.slot for s in store.scheduled_runs(plan.name)}
    decision = decide_slot(cron, clock.now(), started, max_lateness)
    if decision.due is None:
        why = "missed: more than the allowed lateness ago" if decision.missed else "started"
        return [], decision.next_slot, f"latest slot {utc_iso(decision.latest)} {why}"
    prepared = create_runs(store, plan, plan_path, clock, slot=decision.due)
    ids = [p.run_id for p in prepared]
    made = ", ".join(ids) if ids else "already started by another poller"
    return ids, decision.next_slot, f"slot {utc_iso(decision.due)}: {made}"


def _write_finished(
    store: RunStore, reports: Path, polled: list[PolledRun], formats: list[str]
) -> None:
    from audit.workspace import write_reports

    for item in polled:
        if item.result == "finished":
            card, paths = write_reports(store, item.run_id, reports, formats)
            verdicts = ", ".join(f"{c.id} {c.verdict.value}" for c in card.criteria)
            item.detail = f"{verdicts}; scorecards in {paths[0].parent}" if paths else verdicts


def _poll_line(item: PolledRun, now: float) -> str:
    if item.result == "pending":
        return f"run {item.run_id}: next step {_when(item.next_at, now)}"
    if item.result == "finished":
        return f"run {item.run_id}: finished; {item.detail}"
    if item.result == "busy":
        return f"run {item.run_id}: skipped; {item.detail}"
    return f"run {item.run_id}: could not be carried forward: {item.detail}"


@click.command("poll")
@click.argument("run_ids", nargs=-1)
@click.option(
    "--plan",
    "plans",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A recurring plan (with schedule.cron): start its run when a slot has come. Repeatable.",
)
@click.option(
    "--for",
    "work_for",
    default=None,
    callback=seconds_callback,
    help="Keep doing work as it falls due for this long (e.g. 50s), then exit. Default: only "
    "what is due now.",
)
@click.option(
    "--max-lateness",
    default=None,
    callback=seconds_callback,
    help="Start a cron slot at most this late (e.g. 1h; default 1h); older slots are skipped.",
)
@formats_option("Scorecard formats written for each run that finishes")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@give_up_option
def poll(
    run_ids: tuple[str, ...],
    plans: tuple[Path, ...],
    work_for: float | None,
    max_lateness: float | None,
    formats: list[str],
    as_json: bool,
    give_up: float | None,
) -> None:
    """Do the work due now for every unfinished run (or the RUN_IDs), then exit.

    Unfinished: running, or failed with work left (a run a dead target ended is taken up
    again once the target answers).

    Prints when it next needs to run. Exit codes: 0 done (runs held by another poller are
    skipped), 2 usage or input error, 4 some run could not be carried forward.
    """
    import asyncio

    from audit.clock import SystemClock
    from audit.schedule import DEFAULT_MAX_LATENESS

    (store, reports), clock = _workspace(), SystemClock()
    messages, slots, started = [], [], []
    for plan_path in plans:
        ids, next_slot, message = _start_scheduled(
            store, plan_path, clock, max_lateness or DEFAULT_MAX_LATENESS
        )
        messages.append(f"plan {plan_path}: {message}")
        slots.append(next_slot)
        started += ids
    chosen = list(run_ids) + started if run_ids else _unfinished(store)
    for run_id in chosen:
        store.run(run_id)  # an unknown id is an input error, before any work
    stop_at = clock.now() + work_for if work_for else None
    polled = asyncio.run(_poll_runs(store, chosen, _PollSettings(clock, stop_at, give_up)))
    _write_finished(store, reports, polled, formats)
    _print_poll(messages, polled, slots, clock.now(), as_json)
    sys.exit(EXIT_RUNTIME if any(p.result == "failed" for p in polled) else EXIT_OK)


def _unfinished(store: RunStore) -> list[str]:
    """Runs with work left: running, or failed part-way (a dead target, a crash)."""
    return [
        r.run_id
        for r in store.runs()
        if r.status == RunStatus.RUNNING
        or (r.status == RunStatus.FAILED and store.next_due_time(r.run_id) is not None)
    ]


def _print_poll(
    messages: list[str], polled: list[PolledRun], slots: list[float], now: float, as_json: bool
) -> None:
    from audit.clock import utc_iso

    times = [p.next_at for p in polled if p.next_at is not None] + slots
    upcoming = min(times) if times else None
    if as_json:
        data = {
            "plans": messages,
            "runs": [asdict(p) for p in polled],
            "next_at": upcoming,
            "next_utc": utc_iso(upcoming),
        }
        click.echo(json.dumps(data, indent=2))
        return
    for line in messages + [_poll_line(p, now) for p in polled]:
        click.echo(line)
    if not polled and not messages:
        click.echo("no unfinished runs in this workspace")
    click.echo(f"next: {_when(upcoming, now)}")


# status -----------------------------------------------------------------------------------
def _status_data(store: RunStore, run_id: str, now: float) -> dict[str, Any]:
    from audit.clock import utc_iso
    from audit.runner import run_lock

    run = store.run(run_id)
    states = store.state_counts(run_id)
    total = sum(states.values())
    looks = store.action_counts(run_id).get("status", 0)
    holder = run_lock(store, run_id).holder()
    upcoming = store.next_due_time(run_id)
    return {
        "run_id": run_id,
        "status": run.status,
        "plan": run.plan_name,
        "pack": run.pack["pack"]["id"],
        "target": run.target_name,
        "created_utc": utc_iso(run.created_at),
        "probes": total,
        "states": {s.value: states.get(s, 0) for s in ProbeState},
        "outcomes": store.outcome_counts(run_id),
        "up_on_platform": len(store.probes_up(run_id)),
        "status_looks": looks,
        "looks_per_probe": round(looks / total, 2) if total else 0.0,
        "next_at": upcoming,
        "next_utc": utc_iso(upcoming),
        "expected_end_utc": utc_iso(_expected_end(store, run_id, now)),
        "pending": total - sum(store.outcome_counts(run_id).values()),
        "last_deadline_utc": utc_iso(last_deadline(store, run_id)),
        "lock": asdict(holder) if holder else None,
    }


def last_deadline(store: RunStore, run_id: str) -> float | None:
    """When the last deadline of a probe still without an outcome falls."""
    ends = [
        row.deadline_at if row.deadline_at is not None else row.scheduled_at + row.deadline_s
        for row in store.live_probes(run_id)
        if row.outcome is None
    ]
    return max(ends) if ends else None


def _expected_end(store: RunStore, run_id: str, now: float) -> float | None:
    """When the last planned step of the run falls (the last look of its last probe)."""
    ends = []
    for row in store.live_probes(run_id):
        if row.offsets and row.clock_start is not None:
            ends.append(row.clock_start + row.offsets[-1])
        else:
            ends.append(max(row.next_at or now, now) + row.deadline_s + row.grace_s)
    return max(ends) if ends else None


def _status_lines(data: dict[str, Any], now: float) -> list[str]:
    states = " · ".join(f"{k} {v}" for k, v in data["states"].items())
    outcomes = " · ".join(f"{k} {v}" for k, v in sorted(data["outcomes"].items())) or "none yet"
    lock = data["lock"]
    held = "free" if lock is None else f"held by pid {lock['pid']} on {lock['host']}"
    return [
        f"run {data['run_id']} ({data['status']}): plan {data['plan']}, pack {data['pack']}, "
        f"target {data['target']}, created {data['created_utc']}",
        f"probes {data['probes']}: {states}",
        f"outcomes: {outcomes}",
        f"pending: {data['pending']} without an outcome yet (they count as unknown in a report "
        f"taken now); last deadline {data['last_deadline_utc'] or 'passed'}",
        f"up on the platform: {data['up_on_platform']} (posted and not withdrawn)",
        f"status looks: {data['status_looks']} ({data['looks_per_probe']} per probe)",
        f"next step: {_when(data['next_at'], now)}; last step expected "
        f"{data['expected_end_utc'] or 'none'}",
        f"lock: {held}",
    ]


@click.command("status")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def status(run_id: str, as_json: bool) -> None:
    """Show a run's progress: probes by state and outcome, what is still up, the next step."""
    from audit.clock import SystemClock

    store, _ = _workspace()
    now = SystemClock().now()
    data = _status_data(store, run_id, now)
    text = json.dumps(data, indent=2) if as_json else "\n".join(_status_lines(data, now))
    click.echo(text)


# cleanup ----------------------------------------------------------------------------------
@click.command("cleanup")
@click.argument("run_id")
@click.option(
    "--wait",
    default="0",
    callback=seconds_callback,
    help="Wait this long for a process working on the run to let it go (e.g. 30s).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def cleanup(run_id: str, wait: float, as_json: bool) -> None:
    """Withdraw every probe of the run still up on the platform, and stop the run.

    Probes not yet submitted are cancelled; probes still watched lose their verdict
    (inconclusive). Exit codes: 0 nothing of the run is left up, 4 some withdrawal failed
    (run cleanup again), 2 usage or input error.
    """
    import asyncio

    from audit.clock import SystemClock
    from audit.runner import cleanup_run

    store, _ = _workspace()
    report = asyncio.run(cleanup_run(store, run_id, SystemClock(), wait=wait))
    click.echo(json.dumps(asdict(report), indent=2) if as_json else _cleanup_text(report))
    sys.exit(EXIT_OK if report.clean else EXIT_RUNTIME)


def _cleanup_text(report: CleanupReport) -> str:
    lines = [
        f"run {report.run_id}: withdrew {len(report.withdrawn)} probes; "
        f"{report.already_down} were already down or never posted",
        f"cancelled {len(report.cancelled)} probes not yet submitted; "
        f"{len(report.cut_short)} lost their verdict (withdrawn while watched)",
    ]
    lines += [f"withdrawal failed for {p}: {why}" for p, why in sorted(report.failed.items())]
    lines.append("nothing of the run is left up" if report.clean else "run cleanup again")
    return "\n".join(lines)


# schedule ---------------------------------------------------------------------------------
@click.command("schedule")
@click.option("--plan", "plan_path", required=True, type=click.Path(path_type=Path))
@click.option("--count", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option(
    "--max-lateness", default=None, callback=seconds_callback, help="As for poll (default 1h)."
)
def schedule(plan_path: Path, count: int, max_lateness: float | None) -> None:
    """Show a recurring plan's cron schedule: next slots, whether one is due, runs started."""
    from audit.clock import SystemClock, utc_iso
    from audit.plan import load_plan
    from audit.schedule import decide_slot, parse_cron

    plan = load_plan(plan_path)
    if plan.schedule.cron is None:
        raise InputError("'schedule.cron' is not set: the plan is not recurring", source=plan_path)
    cron = parse_cron(plan.schedule.cron, plan_path)
    (store, _), now = _workspace(), SystemClock().now()
    history = store.scheduled_runs(plan.name)
    decision = decide_slot(cron, now, {s.slot for s in history}, max_lateness or 3600.0)
    click.echo(f"plan {plan.name}: cron {cron.text!r} (zone {cron.zone.key})")
    if decision.due is not None:
        click.echo(f"due now: slot {utc_iso(decision.due)} (`poll --plan` starts it)")
    elif decision.missed:
        click.echo(f"missed: slot {utc_iso(decision.latest)} is older than the allowed lateness")
    click.echo("next slots: " + ", ".join(utc_iso(t) or "" for t in cron.upcoming(now, count)))
    for item in history[-10:]:
        state = store.run(item.run_id).status
        click.echo(f"slot {utc_iso(item.slot)}: run {item.run_id} ({state})")


COMMANDS = [poll, status, cleanup, schedule]
