"""``worker``: carry every running run of the store forward, with other workers.

``platform-audit [--store URL] worker``: the store is the main command's (the workspace's
SQLite file, or ``--store``: a PostgreSQL database for workers on several machines).

Start as many as the work needs, on one store: each claims due probes under a lease, acts only
on those and commits each step, fenced by its lease, before the next network action (see
:mod:`audit.worker` and docs/scaling.md, "Workers"). Runs made with ``run --detach`` (or by
``poll --plan``) are picked up by whichever worker is free; the one that commits a run's last
step marks it complete and writes its scorecards, as ``poll`` does.

Exit codes: 0 stopped (SIGTERM, SIGINT, or ``--until-idle`` with no work left) · 2 usage or
input error · 4 some run could not be carried forward (its target dead, marked failed; or a
store failure). Verdicts never change the worker's exit code: ``report RUN_ID`` exits with them.
"""

from __future__ import annotations

import sys

import click

from audit.commands.context import group_settings
from audit.options import formats_option, give_up_option, seconds_callback

__all__ = ["COMMANDS", "worker"]

EXIT_OK, EXIT_RUNTIME = 0, 4


@click.command("worker")
@click.option(
    "--lease",
    default="60s",
    show_default=True,
    callback=seconds_callback,
    help="How long a claimed probe stays this worker's without a renewal (e.g. 60s). A killed "
    "worker's probes are taken over once it lapses; renewed every third of it while working.",
)
@click.option(
    "--max-probes",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Probes held at once, over every run (those due soonest).",
)
@click.option(
    "--until-idle",
    is_flag=True,
    help=(
        "Exit once no running run has work left (a run another process holds alone is waited "
        "for), instead of waiting for more."
    ),
)
@formats_option("Scorecard formats written for each run this worker completes")
@give_up_option
def worker(
    lease: float, max_probes: int, until_idle: bool, formats: list[str], give_up: float | None
) -> None:
    """Carry every running run of the store forward, beside any number of other workers.

    Each worker claims due probes under a lease, acts only on those, and commits each step,
    fenced by its lease, before the next network action; a killed worker's probes are taken
    over by another once its lease lapses. Rate limits and concurrency of each target hold
    across all workers. Runs held alone by `run`, `resume`, `poll` or `cleanup` are skipped.

    Exit codes: 0 stopped (SIGTERM, SIGINT, or --until-idle with no work left), 2 usage or
    input error, 4 some run could not be carried forward.
    """
    import asyncio
    import signal

    from audit.clock import SystemClock
    from audit.errors import InputError
    from audit.worker import Worker, WorkerSettings
    from audit.workspace import write_reports

    if lease < 1.0:
        raise InputError(f"'--lease' must be at least 1 second (got {lease:g} s)")
    root = group_settings()
    store, reports = root.workspace.open(), root.reports

    def completed(run_id: str) -> None:
        card, paths = write_reports(store, run_id, reports, formats)
        verdicts = ", ".join(f"{c.id} {c.verdict.value}" for c in card.criteria)
        where = f"; scorecards in {paths[0].parent}" if paths else ""
        click.echo(f"run {run_id}: finished; {verdicts}{where}")

    settings = WorkerSettings(lease, max_probes, until_idle, give_up)
    carrier = Worker(store, SystemClock(), settings, completed=completed)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await carrier.run(stop)

    click.echo(f"worker {carrier.terms.owner}: started (lease {lease:g} s)", err=True)
    asyncio.run(main())
    report = carrier.report
    for run_id, why in sorted(report.failed.items()):
        click.echo(f"run {run_id}: could not be carried forward: {why}")
    click.echo(
        f"worker {report.owner}: stopped; {len(report.completed)} run(s) completed here, "
        f"{report.lost_leases} lease(s) lost",
        err=True,
    )
    sys.exit(EXIT_RUNTIME if report.failed else EXIT_OK)


COMMANDS = [worker]
