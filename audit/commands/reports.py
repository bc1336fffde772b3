"""``diff``, ``compare``, ``trend`` and ``schema``: scorecards side by side, and their contract.

Exit codes (each command's help repeats its own): 0 done and nothing to flag; 1 ``diff`` found a
change beyond noise (or, with ``--fail-on regression``, a change for the worse) or ``trend``
found the latest run worse than the one before; 2 usage or input error (unknown run, runs of
different packs, no runs for a plan).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from audit.cli_names import VIEW_FORMATS
from audit.commands.context import group_settings
from audit.errors import InputError
from audit.lifecycle import RunStatus

if TYPE_CHECKING:  # the commands import what they use in their bodies: --help stays light
    from audit.compare import RunDiff
    from audit.scorecard import Scorecard
    from audit.store import RunRow
    from audit.store_protocol import RunStore

__all__ = ["COMMANDS", "diff_text", "exit_code"]


def _view_formats(value: str) -> list[str]:
    chosen = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in VIEW_FORMATS]
    if unknown or not chosen:
        raise click.BadParameter(f"choose among {', '.join(VIEW_FORMATS)} (got {value!r})")
    return chosen


def _write(view: object, formats: list[str], folder: Path, stem: str) -> None:
    from audit.compare import Comparison, Trend
    from audit.render import render_view

    assert isinstance(view, Comparison | Trend)
    folder.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        path = folder / f"{stem}.{fmt}"
        path.write_text(render_view(view, fmt), encoding="utf-8", newline="")
        click.echo(f"wrote {path}")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:5.1f} %"


def diff_text(view: RunDiff) -> str:
    """The diff for a terminal: one line per criterion, then the count of changes."""
    lines = [
        f"diff {view.before.run_id} ({view.before.target}) → {view.after.run_id} "
        f"({view.after.target}), pack {view.after.pack_id}",
        *(f"note: {n}" for n in view.notes),
    ]
    for c in view.changes:
        before = f"{_pct(c.before.rate)} {c.before.verdict}" if c.before else "–"
        after = f"{_pct(c.after.rate)} {c.after.verdict}" if c.after else "–"
        mark = f"* {c.direction.upper()}:" if c.changed else "  "
        lines.append(f"{mark} {c.criterion_id:<10} {before:<23} → {after:<23} {c.note}")
    lines.append(
        f"{len(view.changed)} of {len(view.changes)} criteria changed beyond noise."
        if view.changed
        else "No criterion changed beyond noise."
    )
    return "\n".join(lines)


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "md", "json"]),
    default="text",
    show_default=True,
    help="Output on stdout.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["change", "regression", "never"]),
    default="change",
    show_default=True,
    help="What makes the exit code 1: any change beyond noise, only a change for the worse, "
    "or nothing.",
)
def diff(run_a: str, run_b: str, fmt: str, fail_on: str) -> None:
    """List criteria whose verdict or rate changed beyond noise from RUN_A to RUN_B.

    A criterion changed beyond noise only when the two removal-in-deadline rates differ by a
    two-sided exact test (Boschloo; Fisher for large samples) at the criterion's level,
    1 - confidence, with probes of unknown outcome counted in the run's favour; a verdict
    that flips without such a difference is shown but is not a change.

    Exit codes: 0 no criterion changed beyond noise; 1 some criterion changed (with
    --fail-on regression: got worse); 2 usage or input error.
    """
    from audit.compare import diff_runs
    from audit.render import render_view
    from audit.workspace import scorecard_for

    store = group_settings().workspace.open()
    view = diff_runs(scorecard_for(store, run_a), scorecard_for(store, run_b))
    click.echo(diff_text(view) if fmt == "text" else render_view(view, fmt).rstrip("\n"))
    sys.exit(exit_code(view, fail_on))


def exit_code(view: RunDiff, fail_on: str) -> int:
    """1 when a change beyond noise (``change``) or a change for the worse (``regression``)
    was found; 0 otherwise, and always with ``never``."""
    flagged = [c for c in view.changed if fail_on == "change" or c.direction == "worse"]
    return 1 if fail_on != "never" and flagged else 0


@click.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.option(
    "--format",
    "formats",
    default="html,md,json",
    show_default=True,
    help=f"Formats, comma-separated: {', '.join(VIEW_FORMATS)}.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the files (default: REPORTS/compare-<digest of the run ids>).",
)
def compare(run_ids: tuple[str, ...], formats: str, out: Path | None) -> None:
    """Compare several platforms audited with the same pack: one scorecard, run by run.

    Writes comparison.html, comparison.md and comparison.json. For each criterion, every pair
    of runs is tested for a difference in removal rate, with Holm's correction.

    Exit codes: 0 written; 2 usage or input error (unknown run, fewer than two runs, runs of
    different packs).
    """
    from audit.compare import compare_runs
    from audit.workspace import scorecard_for

    chosen = _view_formats(formats)
    settings = group_settings()
    store = settings.workspace.open()
    view = compare_runs([scorecard_for(store, r) for r in run_ids])
    digest = hashlib.sha256("\0".join(run_ids).encode()).hexdigest()[:10]
    _write(view, chosen, out or settings.reports / f"compare-{digest}", "comparison")


def _plan_runs(store: RunStore, plan: str, target: str | None, pack: str | None) -> list[RunRow]:
    runs = [r for r in store.runs() if r.plan_name == plan]
    if not runs:
        known = sorted({r.plan_name for r in store.runs()})
        raise InputError(
            f"no runs of plan {plan!r} in this workspace"
            + (f" (plans: {', '.join(known)})" if known else "")
        )
    runs = [
        r
        for r in runs
        if (target is None or r.target_name == target)
        and (pack is None or r.pack["pack"]["id"] == pack)
    ]
    series = sorted({(r.target_name, str(r.pack["pack"]["id"])) for r in runs})
    if len(series) != 1:
        choices = ", ".join(f"--target {t} --pack {p}" for t, p in series) or "none match"
        raise InputError(f"plan {plan!r}: choose one target and pack ({choices})")
    return [r for r in runs if r.status != RunStatus.RUNNING]


@click.command("trend")
@click.argument("plan_name")
@click.option("--target", default=None, help="Target name, when the plan has several.")
@click.option("--pack", default=None, help="Pack id, when the plan has several.")
@click.option(
    "--last", type=click.IntRange(min=1), default=None, help="Only the latest N finished runs."
)
@click.option(
    "--format",
    "formats",
    default="html,md,json",
    show_default=True,
    help=f"Formats, comma-separated: {', '.join(VIEW_FORMATS)}.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the files (default: REPORTS/trend-PLAN_NAME).",
)
def trend(
    plan_name: str,
    target: str | None,
    pack: str | None,
    last: int | None,
    formats: str,
    out: Path | None,
) -> None:
    """The trend of one plan's finished runs on one target, oldest first.

    Writes trend.html, trend.md and trend.json; each criterion's rate per run with its verdict
    bounds, and what changed beyond noise from one run to the next.

    Exit codes: 0 written, and the latest run is not worse than the one before beyond noise;
    1 written, and some criterion got worse beyond noise in the latest run; 2 usage or input
    error (no finished runs of the plan, several targets or packs and none chosen).
    """
    from audit.compare import trend_of
    from audit.workspace import scorecard_for

    chosen = _view_formats(formats)
    settings = group_settings()
    store = settings.workspace.open()
    runs = _plan_runs(store, plan_name, target, pack)
    if not runs:
        raise InputError(f"plan {plan_name!r} has no finished runs yet")
    cards: list[Scorecard] = [scorecard_for(store, r.run_id) for r in runs[-(last or 0) :]]
    view = trend_of(cards)
    _write(view, chosen, out or settings.reports / f"trend-{plan_name}", "trend")
    worse = view.latest_regressions
    if worse:
        click.echo("latest run worse beyond noise on " + ", ".join(c.criterion_id for c in worse))
    sys.exit(1 if worse else 0)


@click.command("schema")
@click.argument(
    "document",
    type=click.Choice(["scorecard", "plan", "profile"]),
    default="scorecard",
    required=False,
)
def schema(document: str) -> None:
    """Print a JSON Schema: of the JSON scorecard (`report --format json`, the default), of a
    plan file (`plan`, as in schemas/plan.schema.json) or of a target profile (`profile`).

    Exit code 0.
    """
    from audit.render import json_text

    if document == "plan":
        from audit.plan import plan_json_schema

        chosen = plan_json_schema()
    elif document == "profile":
        from audit.adapters.profile_load import profile_json_schema

        chosen = profile_json_schema()
    else:
        from audit.render import scorecard_schema

        chosen = scorecard_schema()
    click.echo(json_text(chosen).rstrip("\n"))


COMMANDS = [diff, compare, trend, schema]
