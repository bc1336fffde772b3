"""``statements check`` and ``statements validate``: DSA statements of reasons against a run.

Exit codes: 0 nothing to report; 1 a statement contradicts what the audit saw (``check``), or
breaks a submission rule or disagrees with the run's probes (``validate``); 2 usage or input
error (unknown run, unreadable file); 4 unexpected failure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from audit.commands.context import group_settings
from audit.options import formats_option, seconds_callback

if TYPE_CHECKING:  # the commands import what they use in their bodies: --help stays light
    from audit.statements.model import StatementsSection
    from audit.store import RunRow

__all__ = ["COMMANDS", "chosen_template", "section_text"]


_SOURCE = click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
_SOURCES = click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False)
)
_PUID = click.option(
    "--puid",
    "puid_template",
    default=None,
    metavar="TEMPLATE",
    help="How the target's post ids map to the puids of its statements, e.g. 'post-{post_id}'. "
    "Default: the target profile's statements_puid, '{post_id}' for the reference sandbox; "
    "else match by attributes.",
)
_BY_ATTRIBUTES = click.option(
    "--by-attributes",
    is_flag=True,
    help="Match by dates and attributes even where a puid is known.",
)
_PLATFORM = click.option(
    "--platform",
    default=None,
    help="Use only statements whose platform_name is this (a dump of several platforms).",
)
_WINDOW = click.option(
    "--automation-window",
    "window",
    default="PT5M",
    show_default=True,
    metavar="DURATION",
    callback=seconds_callback,
    help="A removal seen this soon after receipt (platform time), with no notice before it, "
    "contradicts a statement that says detection or decision was not automated.",
)


def chosen_template(run: RunRow, template: str | None, by_attributes: bool) -> str | None:
    """The puid template: --puid, else the target profile's ``statements_puid``, else the
    reference sandbox's ``{post_id}``; None (match by attributes) when none is known."""
    if by_attributes:
        return None
    if template is not None:
        return template
    profiled = (run.profile or {}).get("statements_puid")
    if isinstance(profiled, str):
        return profiled
    return "{post_id}" if run.target.get("adapter") == "sandbox" else None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def section_text(section: StatementsSection) -> str:
    """The cross-check for a terminal: the matching, each kind's rate, then each finding."""
    files = ", ".join(f.name for f in section.sources)
    lines = [
        f"statements: {section.statements_used} about the run of {section.rows} rows in "
        f"{files} ({section.bad_rows} bad, {section.not_about_the_run} about other "
        f"posts or days); matched {section.matched} probes by "
        f"{section.matching}, {len(section.ambiguous)} ambiguous, "
        f"{section.unmatched_statements} statements matched no probe",
    ]
    for rate in section.overall:
        if rate.checked:
            lines.append(
                f"  {rate.kind.value:<19} {rate.found:>4} of {rate.checked:<4} {_pct(rate.rate):>8}"
                f"  [{_pct(rate.low)} – {_pct(rate.high)}]  {rate.title}"
            )
    for a in section.ambiguous:
        lines.append(f"ambiguous: probe {a.probe_id}: {len(a.statements)} statements fit")
    for f in section.findings:
        lines.append(
            f"* {f.criterion_id} {f.probe_id} post {f.post_id}: {f.kind.value}: {f.message}"
        )
    lines.append(
        f"{section.inconsistent_probes} probes with a finding."
        if section.findings
        else "No statement contradicts what the audit saw."
    )
    return "\n".join(lines)


@click.group("statements")
def statements() -> None:
    """DSA statements of reasons (Transparency Database) against what a run measured."""


@statements.command("check")
@click.argument("run_id")
@_SOURCES
@_PUID
@_BY_ATTRIBUTES
@_PLATFORM
@_WINDOW
@formats_option()
def check(
    run_id: str,
    files: tuple[Path, ...],
    puid_template: str | None,
    by_attributes: bool,
    platform: str | None,
    window: float,
    formats: list[str],
) -> None:
    """Load the statements in FILES for RUN_ID, match them to its probes, report contradictions.

    Each FILE is a daily dump of the Transparency Database (full or light .zip, or one CSV part),
    JSON as its API returns (.json, .jsonl) or a platform's export in those shapes. Each bad row
    is reported in one line and left out. The statements are kept in the workspace, and every
    scorecard of the run from now on has a statements section; the scorecards are written now.

    Exit codes: 0 no contradiction; 1 some statement contradicts what the audit saw (or a
    removal it saw has none); 2 usage or input error.
    """
    from audit.statements.crosscheck import read_files, run_filter, save_stored
    from audit.workspace import write_reports

    settings = group_settings()
    store = settings.workspace.open()
    run = store.run(run_id)
    template = chosen_template(run, puid_template, by_attributes)
    keep = run_filter(store.probes(run_id), store.observations(run_id), template, platform)
    stored = read_files(files, template, platform, window, keep)
    for line in stored.bad_rows:
        click.echo(f"bad row: {line}", err=True)
    save_stored(settings.workspace.root, run_id, stored)
    card, paths = write_reports(store, run_id, settings.reports, formats)
    assert card.statements is not None
    click.echo(section_text(card.statements))
    for path in paths:
        click.echo(f"wrote {path}")
    sys.exit(1 if card.statements.findings else 0)


def _rule_lines(file: Path) -> list[str]:
    from audit.statements.load import read_rows
    from audit.statements.rules import check_statement

    lines = []
    for row in read_rows(file):
        if row.record is None:
            lines.append(f"{row.label}: {row.error}")
            continue
        lines.extend(f"{row.label}: {p.message} [{p.rule}]" for p in check_statement(row.record))
    return lines


@statements.command("validate")
@_SOURCE
@click.option("--run", "run_id", default=None, help="Also check FILE against this run's probes.")
@_PUID
@_BY_ATTRIBUTES
@_WINDOW
def validate(
    file: Path,
    run_id: str | None,
    puid_template: str | None,
    by_attributes: bool,
    window: float,
) -> None:
    """Check FILE's statements against the Transparency Database's submission rules.

    Rules: required fields, enumerations, text lengths, date formats (YYYY-MM-DD) and ranges,
    conditional fields, the puid's characters, the language code (see docs/statements.md).
    With --run, also match them to the run's probes and report every contradiction with what
    the audit saw, as `statements check` does (nothing is kept in the workspace).

    Exit codes: 0 every statement is valid (and consistent with the run); 1 some rule is broken
    or some statement contradicts the run; 2 usage or input error.
    """
    from audit.statements.crosscheck import cross_check, read_file

    stored = read_file(file, puid_template, None, window)
    lines = _rule_lines(file)
    for line in lines:
        click.echo(line)
    findings = 0
    if run_id is not None:
        store = group_settings().workspace.open()
        run = store.run(run_id)
        stored = read_file(file, chosen_template(run, puid_template, by_attributes), None, window)
        section = cross_check(run, store.probes(run_id), store.observations(run_id), stored)
        click.echo(section_text(section))
        findings = len(section.findings)
    click.echo(
        f"{stored.rows} statements: {len(lines)} rule violations"
        + (f", {findings} contradictions with run {run_id}" if run_id else "")
    )
    sys.exit(1 if lines or findings else 0)


COMMANDS = [statements]
