"""``evasion``: the simplest variant under which a criterion's probes survive.

Registered in the main command group by the CLI module; this file only defines the command.
The search itself is :mod:`audit.evasion`; each round is an ordinary run in the workspace.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from audit.options import allow_production_option, formats_option

if TYPE_CHECKING:  # the command imports what it uses in its body: --help stays light
    from audit.evasion import SearchRound, SearchStatus

__all__ = ["COMMANDS", "evasion"]


def _exit_codes() -> dict[SearchStatus, int]:
    """The exit code of each way a search ends."""
    from audit.evasion import SearchStatus

    return {
        SearchStatus.NOT_FOUND: 0,
        SearchStatus.FOUND: 1,
        SearchStatus.CLEAN_NOT_REMOVED: 3,
        SearchStatus.BUDGET_SPENT: 3,
    }


def _echo_round(found: SearchRound) -> None:
    from audit.arms import arm_spec

    arms = ", ".join(
        f"{arm_spec(a.modality, a.variants) or 'clean'} {a.removed}/{a.measured} removed"
        for a in found.arms
    )
    click.echo(f"round {found.number} ({found.purpose}), run {found.run_id}: {arms}")


@click.command("evasion")
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Plan file (YAML): its packs, target and seed are used; the search sets the sample.",
)
@click.option("--criterion", required=True, help="Id of the criterion to search (e.g. VN-SUP-01).")
@click.option("--target", default=None, help="Name of the plan's target to use (default: first).")
@click.option(
    "--modality", "modalities", multiple=True, type=click.Choice(["text", "image", "speech"]),
    help="Search only this modality's variants: text variants, image styles or speech styles "
    "(repeatable; default: every modality the criterion declares).",
)  # fmt: skip
@click.option(
    "--budget", type=click.IntRange(1, 100_000), default=120, show_default=True,
    help="Most probes the whole search may post.",
)  # fmt: skip
@click.option(
    "--clean", type=click.IntRange(1, 10_000), default=12, show_default=True,
    help="Clean probes in the baseline and in the confirmation run.",
)  # fmt: skip
@click.option(
    "--screen", type=click.IntRange(1, 10_000), default=4, show_default=True,
    help="Probes per candidate variant when screening.",
)  # fmt: skip
@click.option(
    "--confirm", type=click.IntRange(0, 10_000), default=12, show_default=True,
    help="Fresh probes to confirm the candidate (0: report the screening evidence).",
)  # fmt: skip
@allow_production_option
@formats_option("Formats of the confirmation run's scorecard")
@click.pass_context
def evasion(
    ctx: click.Context,
    plan_path: Path,
    criterion: str,
    target: str | None,
    modalities: tuple[str, ...],
    budget: int,
    clean: int,
    screen: int,
    confirm: int,
    allow_production: bool,
    formats: list[str],
) -> None:
    """Search for the simplest variant under which a criterion's probes survive.

    Candidates are the criterion's text variants and the image and speech styles of its media
    modalities, each judged against the clean probes of its modality (clean text, plain banners,
    plain speech). Single variants first, simplest first; if none survives, the text variants
    composed, shrunk one variant at a time. Each round is an ordinary run: posted, observed,
    recorded in the evidence ledger and withdrawn. A candidate is confirmed with fresh probes
    beside fresh clean ones, and that run's scorecard is written. Rounds last as long as the
    criterion's deadline.

    Exit codes: 0 no variant survives, 1 an evasion was found, 2 usage or input error,
    3 not settled (clean probes are not removed, or the budget ran out first),
    4 could not measure.
    """
    import asyncio

    from audit.clock import SystemClock
    from audit.evasion import EvasionSearch, PlanRounds, SearchSettings, search_modalities
    from audit.plan import load_plan
    from audit.workspace import write_reports

    obj: Any = ctx.obj
    plan = load_plan(plan_path)
    store = obj.workspace.open()
    settings = SearchSettings(clean=clean, screen=screen, confirm=confirm, budget=budget)
    rounds = PlanRounds(
        store,
        plan,
        criterion,
        SystemClock(),
        plan_source=plan_path,
        target=target,
        allow_production=allow_production,
    )
    chosen, note = search_modalities(rounds.criterion, modalities)
    if note:
        click.echo(f"note: {note}")
    search = EvasionSearch(
        rounds.criterion, rounds, settings, on_round=_echo_round, modalities=chosen
    )
    result = asyncio.run(search.run())
    click.echo(result.describe())
    if result.rounds:
        _, paths = write_reports(store, result.rounds[-1].run_id, obj.reports, formats)
        for path in paths:
            click.echo(f"wrote {path}")
    sys.exit(_exit_codes()[result.status])


COMMANDS = [evasion]
