"""Evidence commands: ``export`` a signed bundle, ``verify`` one, rebuild its scorecard
(``evidence-report``, an alias of ``report --from-evidence``), and show the workspace signing
``key``.

Registered in the main command group by the CLI module; this file only defines the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from audit.cli_names import DEFAULT_ARCHIVE
from audit.errors import InputError
from audit.options import formats_option

if TYPE_CHECKING:  # the commands import what they use in their bodies: --help stays light
    from audit.evidence.bundle import Verification
    from audit.store_protocol import RunStore
    from audit.workspace import Workspace

__all__ = ["COMMANDS"]

EXIT_OK, EXIT_TAMPERED = 0, 1


def _context() -> tuple[Workspace, Path]:
    """The workspace and reports folder chosen with the group's --workspace and --reports."""
    from audit.workspace import Workspace

    obj = click.get_current_context().find_root().obj
    workspace = getattr(obj, "workspace", None)
    reports = getattr(obj, "reports", None)
    if not isinstance(workspace, Workspace) or not isinstance(reports, Path):
        return Workspace(Path(".platform-audit")), Path("reports")
    return workspace, reports


def _existing_store(workspace: Workspace) -> RunStore:
    if not workspace.has_store():
        raise InputError(
            "no workspace store here (use --workspace or --store)", source=workspace.store_path
        )
    return workspace.open()


def _looks_like_a_path(target: str) -> bool:
    return "/" in target or "\\" in target or target.endswith((".tar.gz", ".tgz"))


def _print(result: Verification) -> None:
    if result.ok:
        click.echo(f"OK  {result.source}")
    else:
        click.echo(f"TAMPERED  {result.source}")
        click.echo(f"  first bad place: {result.problems[0]}")
        for problem in result.problems[1:]:
            click.echo(f"  also: {problem}")
    if result.run_id:
        click.echo(f"  run {result.run_id}: {result.entries} ledger entries, head {result.head}")
    if result.fingerprint:
        click.echo(
            f"  signed with key {result.fingerprint} (check it is the key the auditor published)"
        )
    for note in result.notes:
        click.echo(f"  note: {note}")


@click.command("verify")
@click.argument("target", metavar="BUNDLE_OR_RUN_ID")
@click.option(
    "--key",
    "expect_key",
    metavar="FINGERPRINT",
    default=None,
    help="Fail unless the bundle is signed by this key (SHA256:..., as printed by `key`).",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Also rebuild the scorecard from the evidence and compare it with the signed one.",
)
def verify(target: str, expect_key: str | None, rebuild: bool) -> None:
    """Check that a run's evidence is intact and name the first bad place.

    BUNDLE_OR_RUN_ID is an evidence bundle (a .tar.gz archive or a folder), a report folder
    holding evidence.tar.gz (its scorecards must equal the signed copies), or the id of a run in
    the workspace (its ledger chain is checked in the store). A bundle is checked with nothing
    but itself: the manifest's signature, every file's digest and the ledger's hash chain. For
    both, the records must follow from the ledger: every measurement rests on a recorded answer
    and says what the adapter's reader reads in it, every outcome is the one the observations
    give, clock_start and deadline_at are the accepted attempt's recorded send time (plus the
    deadline), and a text probe's text is the text its submissions sent.

    Exit codes: 0 intact, 1 tampered or damaged, 2 not a bundle or unknown run, 4 the workspace
    store itself is damaged (SQLite's integrity check fails), so the run cannot be checked.
    """
    from audit.evidence.bundle import verify_bundle, verify_store

    path = Path(target)
    if path.exists() or _looks_like_a_path(target):
        result = verify_bundle(path, expect_key, rebuild)
    else:
        workspace, _ = _context()
        if not workspace.has_store():
            raise InputError(
                "no such evidence bundle, and no workspace store holding runs", source=path
            )
        result = verify_store(workspace.open(), target)
    _print(result)
    sys.exit(EXIT_OK if result.ok else EXIT_TAMPERED)


@click.command("export")
@click.argument("run_id")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Archive (.tar.gz) or folder to write. [default: REPORTS/RUN_ID/{DEFAULT_ARCHIVE}]",
)
def export(run_id: str, out: Path | None) -> None:
    """Write a run's signed evidence bundle: manifest, ledger, records and scorecards.

    The bundle verifies on any machine with `platform-audit verify` and nothing else; the
    signing key is the workspace's (created on first use under WORKSPACE/keys/).
    """
    from audit.evidence.bundle import export_bundle

    workspace, reports = _context()
    store = _existing_store(workspace)
    store.check_integrity()
    result = export_bundle(store, workspace.root, run_id, out or reports / run_id / DEFAULT_ARCHIVE)
    click.echo(f"wrote {result.path}")
    click.echo(f"  run {result.run_id}: {result.entries} ledger entries, head {result.head}")
    click.echo(f"  signed with key {result.fingerprint}")


@click.command("evidence-report")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@formats_option()
@click.option("--quiet", is_flag=True, help="Write the files without printing the summary.")
@click.option("--force", is_flag=True, help="Overwrite scorecards already in REPORTS/<run-id>/.")
@click.pass_context
def evidence_report(
    ctx: click.Context, bundle: Path, formats: list[str], quiet: bool, force: bool
) -> None:
    """Alias of `report --from-evidence BUNDLE`: rebuild a run's scorecard from its evidence
    bundle alone, write it to REPORTS/<run-id>/ and exit with its verdict's code.
    """
    from audit.cli import report

    ctx.invoke(report, run_id=None, formats=formats, bundle=bundle, quiet=quiet, force=force)


@click.command("key")
def key() -> None:
    """Print the fingerprint of the workspace's signing key, creating the key on first use.

    Publish this fingerprint: it lets anyone check that an evidence bundle was signed by you.
    """
    from audit.evidence.keys import workspace_key

    workspace, _ = _context()
    signing = workspace_key(workspace.root)
    click.echo(signing.fingerprint)
    click.echo(f"  public key: {signing.path.with_suffix('.pub') if signing.path else '-'}")


COMMANDS = [export, verify, evidence_report, key]
