"""The command line. Library errors become messages and exit codes here, and only here.

Exit codes: 0 every measured criterion compliant · 1 some criterion non-compliant · 2 usage or
input error · 3 inconclusive · 4 could not measure (target or runtime failure).
"""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from audit import __version__
from audit.cli_names import TEXT_FORMATS
from audit.commands import all_commands
from audit.errors import AuditError, InputError, RuntimeFailure, TargetUnreachable
from audit.options import allow_production_option, formats_option, give_up_option, lang_option

if TYPE_CHECKING:  # the commands import what they use in their bodies: --help stays light
    from audit.clock import SystemClock
    from audit.store_protocol import RunStore
    from audit.workspace import Workspace

__all__ = ["cli", "main"]

EXIT_INPUT, EXIT_RUNTIME, EXIT_INTERRUPTED = 2, 4, 130


class Context:
    def __init__(self, workspace: Path, reports: Path, store: str | None = None) -> None:
        self._workspace_root = workspace
        self._store_url = store
        self.reports = reports

    @cached_property
    def workspace(self) -> Workspace:
        """Made on first use, so a command that needs no store does not import it."""
        from audit.workspace import Workspace

        return Workspace(self._workspace_root, self._store_url)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="platform-audit")
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".platform-audit"),
    envvar="PLATFORM_AUDIT_WORKSPACE",
    show_default=True,
    help="Folder of the runs: their SQLite store (unless --store), signing key and statements.",
)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    default=None,
    envvar="PLATFORM_AUDIT_STORE",
    help="Keep the runs in this store: postgresql://USER@HOST:PORT/DATABASE (the PostgreSQL "
    "store; needs the 'postgresql' extra) or sqlite:///PATH. [default: WORKSPACE/audit.sqlite]",
)
@click.option(
    "--reports",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    envvar="PLATFORM_AUDIT_REPORTS",
    show_default=True,
    help="Folder where scorecards are written, one sub-folder per run.",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="PLATFORM_AUDIT_DEBUG",
    help="On an unexpected failure, print the traceback too.",
)
@click.pass_context
def cli(
    ctx: click.Context, workspace: Path, reports: Path, store_url: str | None, debug: bool
) -> None:
    """Audit whether a platform removes prohibited content within the legal deadline.

    Exit codes: 0 every criterion compliant and the run complete, 1 some criterion
    non-compliant (or over-removing), 2 usage or input error, 3 inconclusive or not final,
    4 could not measure (any unexpected failure too).
    """
    del debug  # read by main() before the command runs
    if store_url is not None:
        from audit.store_open import check_store_url

        check_store_url(store_url)
    ctx.obj = Context(workspace, reports, store_url)


def _report_and_exit(
    c: Context, run_id: str, formats: list[str], quiet: bool = False, lang: str | None = None
) -> int:
    from audit.ui import print_summary
    from audit.workspace import report_language, write_reports

    store = c.workspace.open()
    tongue = report_language(store, run_id, lang)
    card, paths = write_reports(store, run_id, c.reports, formats, lang=tongue)
    if not quiet:
        print_summary(card, lang=tongue)
        for path in paths:
            click.echo(f"wrote {path}")
    return card.exit_code


@cli.command()
@click.option(
    "--seed", type=int, default=2024, show_default=True, help="Seed for probes and schedule."
)
@click.option(
    "--probes",
    "violating",
    type=click.IntRange(1, 10_000),
    default=60,
    show_default=True,
    help="Violating probes per criterion.",
)
@click.option(
    "--controls",
    type=click.IntRange(0, 10_000),
    default=10,
    show_default=True,
    help="Control probes per criterion.",
)
@lang_option
@pass_ctx
def demo(c: Context, seed: int, violating: int, controls: int, lang: str | None) -> None:
    """Audit the bundled vn-superstition pack against the embedded reference sandbox.

    The sandbox is a simulated platform served over real HTTP on a free loopback port. Deadlines
    and platform latencies are compressed 3600x (a 24 h deadline lasts 24 s) and the scorecard
    says so. Exits 0 when the scorecard was written, whatever the verdicts.
    """
    from audit.demo import DEMO_TIME_SCALE, run_demo

    click.echo(
        f"Demo: pack vn-superstition against the reference sandbox (a simulator); time compressed "
        f"{DEMO_TIME_SCALE:g}x, so each 24 h deadline lasts {86400 / DEMO_TIME_SCALE:g} s."
    )
    done = run_demo(c.workspace.open(), seed, violating, controls, click.echo)
    code = _report_and_exit(c, done.audit.run_id, list(TEXT_FORMATS), lang=lang)
    click.echo(
        "Statements of reasons: the sandbox's daily dump (it misreports a few on purpose) is "
        "cross-checked in the scorecard's section; see docs/statements.md."
    )
    click.echo(f"(`platform-audit run` would exit with {code} for this result)")


@cli.command()
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Plan file (YAML); see examples/plan-sandbox.yaml.",
)
@allow_production_option
@formats_option()
@click.option(
    "--detach",
    is_flag=True,
    help="Plan the runs and do only the work due now; continue later with `poll`.",
)
@give_up_option
@lang_option
@pass_ctx
def run(
    c: Context,
    plan_path: Path,
    allow_production: bool,
    formats: list[str],
    detach: bool,
    give_up: float | None,
    lang: str | None,
) -> None:
    """Run a plan: one run per (pack, target), each to its end, then write scorecards.

    Safe to stop at any moment (Ctrl-C, kill, reboot): `resume RUN_ID` continues. Before the
    first post one request checks the target answers and takes the token; a target that then
    gives no working answer for --give-up-after ends the run (exit 4, FAILED scorecard).
    """
    from collections import Counter

    from audit.clock import SystemClock
    from audit.commands.outlook import run_outlook, time_scale_warnings
    from audit.plan import load_plan
    from audit.plan_checks import sample_warnings
    from audit.runner import create_runs

    plan = load_plan(plan_path)
    for line in time_scale_warnings(plan):
        click.echo(f"warning: {line}", err=True)
    store = c.workspace.open()
    clock = SystemClock()
    prepared = create_runs(store, plan, plan_path, clock, allow_production=allow_production)
    packs = {item.pack.pack.id: item.pack for item in prepared}
    planned = {  # counted from the probes just stored, not synthesised again
        item.pack.pack.id: dict(
            Counter(
                r.criterion_id for r in store.probes(item.run_id) if r.expectation == "violating"
            )
        )
        for item in prepared
    }
    for line in sample_warnings(plan, list(packs.values()), planned):
        click.echo(f"warning: {line}", err=True)
    codes = []
    for item in prepared:
        click.echo(
            f"run {item.run_id}: {item.probes} probes, pack {item.pack.pack.id}, "
            f"target {item.target.name}; {run_outlook(store, item.run_id, plan.time_scale)}"
        )
        if detach:
            continue
        _carry(store, item.run_id, clock, give_up)
        codes.append(_report_and_exit(c, item.run_id, formats, lang=lang))
    sys.exit(_combine(codes))


def _carry(store: RunStore, run_id: str, clock: SystemClock, give_up: float | None) -> None:
    """Carry one run forward to its end, with progress on stderr.

    A dead target ends the run (failed, nothing scored): the reason is printed and the caller
    writes the FAILED scorecard. Ctrl-C says what is still up and how to continue."""
    import asyncio

    from audit.commands.lifecycle import last_deadline
    from audit.runner import execute_run
    from audit.ui import Progress

    with Progress(
        len(store.probes(run_id)),
        f"run {run_id}",
        last_deadline=lambda: last_deadline(store, run_id),
        now=clock.now,
    ) as progress:
        try:
            asyncio.run(
                execute_run(store, run_id, clock, progress=progress.update, give_up=give_up)
            )
        except TargetUnreachable as exc:
            click.echo(f"error: run {run_id} ended: {exc}", err=True)
            click.echo(_still_up(store, run_id), err=True)
        except KeyboardInterrupt:
            click.echo(f"interrupted; {_still_up(store, run_id)}", err=True)
            sys.exit(EXIT_INTERRUPTED)


def _still_up(store: RunStore, run_id: str) -> str:
    """What of the run is still on the platform, and the commands that continue or undo it."""
    up = len(store.probes_up(run_id))
    target = store.run(run_id).target.get("name", "the target")
    posts = f"{up} post{'s' if up != 1 else ''} of run {run_id} {'are' if up != 1 else 'is'}"
    return (
        f"{posts} still up on {target}; continue the run with `platform-audit resume {run_id}`"
        + (f" or withdraw them with `platform-audit cleanup {run_id}`" if up else "")
    )


def _combine(codes: list[int]) -> int:
    for code in (1, 4, 3):
        if code in codes:
            return code
    return 0


@cli.command()
@click.argument("run_id")
@formats_option()
@give_up_option
@lang_option
@pass_ctx
def resume(
    c: Context, run_id: str, formats: list[str], give_up: float | None, lang: str | None
) -> None:
    """Continue an interrupted (or failed) run to its end, then write its scorecards."""
    from audit.clock import SystemClock

    store = c.workspace.open()
    store.check_integrity()  # never carry a run on in a damaged store
    run_row = store.run(run_id)
    if run_row.plan.get("name") == "demo" and store.next_due_time(run_id) is not None:
        raise RuntimeFailure(
            f"run {run_id} is a demo run: its embedded reference sandbox lived only as long as "
            "the `demo` command and is gone, so the run cannot continue; start a new one with "
            "`platform-audit demo`"
        )
    _carry(store, run_id, SystemClock(), give_up)
    sys.exit(_report_and_exit(c, run_id, formats, lang=lang))


@cli.command()
@click.argument("run_id", required=False)
@formats_option()
@click.option(
    "--from-evidence",
    "bundle",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Rebuild the scorecard from an exported evidence bundle alone, not the workspace.",
)
@click.option("--quiet", is_flag=True, help="Write the files without printing the summary.")
@click.option(
    "--force",
    is_flag=True,
    help="With --from-evidence: overwrite scorecards already in REPORTS/<run-id>/.",
)
@lang_option
@pass_ctx
def report(
    c: Context,
    run_id: str | None,
    formats: list[str],
    bundle: Path | None,
    quiet: bool,
    force: bool,
    lang: str | None,
) -> None:
    """Write the scorecards of a run (finished or not) and exit with its verdict's code.

    With --from-evidence BUNDLE the scorecard is rebuilt from the signed records and ledger in
    an exported bundle alone and written to reports/<run-id>/ (RUN_ID is then not needed). The
    bundle's run id must have the form this tool gives run ids; nothing is written outside
    --reports, and scorecards already there are kept unless --force is given. A bundle's
    scorecards are written in English unless --lang says otherwise.
    """
    if bundle is None:
        if run_id is None:
            raise click.UsageError("give a RUN_ID, or --from-evidence BUNDLE")
        sys.exit(_report_and_exit(c, run_id, formats, quiet, lang))
    from audit.evidence.bundle import scorecard_folder, scorecard_from_evidence
    from audit.render import RENDERERS, render_formats
    from audit.ui import print_summary

    card = scorecard_from_evidence(bundle)
    names = [RENDERERS[f][0] for f in formats if f in RENDERERS]
    folder = scorecard_folder(c.reports, card.run_id, force, names)
    paths = render_formats(card, formats, folder, lang=lang or "en")
    if not quiet:
        print_summary(card, lang=lang or "en")
        for path in paths:
            click.echo(f"wrote {path}")
    sys.exit(card.exit_code)


@cli.command()
@pass_ctx
def runs(c: Context) -> None:
    """List the runs in the workspace."""
    from audit.clock import utc_iso
    from audit.lifecycle import ProbeState

    store = c.workspace.open()
    rows = store.runs()
    if not rows:
        click.echo("no runs in this workspace")
        return
    for r in rows:
        counts = store.state_counts(r.run_id)
        done = counts.get(ProbeState.FINISHED, 0)
        total = sum(counts.values())
        click.echo(
            f"{r.run_id}  {r.status:<9} {done}/{total} probes  plan {r.plan_name}  "
            f"pack {r.pack['pack']['id']}  target {r.target_name}  created {utc_iso(r.created_at)}"
            + (
                "  (a round of the demo's evasion search, its step 1)"
                if r.plan_name == "demo-evasion"
                else ""
            )
        )


@cli.group()
def sandbox() -> None:
    """The reference sandbox: a simulated platform for demos and tests."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Moderation configuration (YAML); default: the bundled one.",
)
@click.option("--seed", type=int, default=None, help="Override the configuration's seed.")
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Divide every platform latency by this factor.",
)
@click.option(
    "--token-env", default=None, help="Require this environment variable's value as a bearer token."
)
@click.option(
    "--observer-token-env",
    "observer_envs",
    multiple=True,
    help="Accept this environment variable's value as a second account's bearer token, "
    "which may only look at posts (repeatable; needs --token-env).",
)
@click.option(
    "--anonymous-reads", is_flag=True, default=None, help="Let logged-out requests look at posts."
)
@click.option(
    "--removed-visible-to-author",
    is_flag=True,
    default=None,
    help="Keep showing a removed post to its author as visible; only other accounts and "
    "logged-out readers see it removed (needs --token-env).",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="State file (SQLite), reopened on restart; default: a new one in a temporary folder.",
)
def sandbox_serve(
    host: str,
    port: int,
    config_path: Path | None,
    seed: int | None,
    time_scale: float | None,
    token_env: str | None,
    observer_envs: tuple[str, ...],
    anonymous_reads: bool | None,
    removed_visible_to_author: bool | None,
    state_path: Path | None,
) -> None:
    """Serve the reference sandbox in the foreground until interrupted."""
    from audit.sandbox.moderation import default_config_path, load_sandbox_config
    from audit.sandbox.server import default_state_path, serve_forever

    token = _env_token("--token-env", token_env) if token_env else None
    observers = [_env_token("--observer-token-env", name) for name in observer_envs]
    config = load_sandbox_config(
        config_path or default_config_path(),
        seed=seed,
        time_scale=time_scale,
        token=token,
        observer_tokens=observers or None,
        anonymous_reads=anonymous_reads,
        removed_visible_to_author=removed_visible_to_author,
    )
    state_path = state_path or default_state_path()
    click.echo(f"reference sandbox (simulator) on http://{host}:{port}", err=True)
    click.echo(f"state: {state_path} (restart with --state {state_path} to keep it)", err=True)
    serve_forever(config, host, port, state_path)


def _env_token(option: str, name: str) -> str:
    import os

    value = os.environ.get(name, "").strip()
    if not value:
        raise InputError(f"{option}: environment variable {name} is not set")
    return value


for _command in all_commands():
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: turn library errors into one-line messages and exit codes."""
    try:
        return cli.main(args=argv, prog_name="platform-audit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_INPUT if exc.exit_code == 2 else exc.exit_code)
    except KeyboardInterrupt:
        click.echo(
            "interrupted; the run is saved: continue it with `platform-audit resume RUN_ID`",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    except RuntimeFailure as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_RUNTIME)
    except AuditError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_RUNTIME)
    except Exception as exc:  # any unexpected failure: NOT_MEASURED, never a score
        _unexpected(exc, argv)


def _unexpected(exc: Exception, argv: list[str] | None) -> None:
    """One line and exit 4 for a failure nobody foresaw; the traceback with --debug."""
    import os
    import traceback

    args = sys.argv[1:] if argv is None else argv
    if "--debug" in args or os.environ.get("PLATFORM_AUDIT_DEBUG"):
        traceback.print_exception(exc)
    message = " ".join(str(exc).split())[:300] or "no message"
    click.echo(
        f"error: unexpected failure ({type(exc).__name__}: {message}); nothing was scored. "
        "Run again with --debug for the traceback.",
        err=True,
    )
    sys.exit(EXIT_RUNTIME)
