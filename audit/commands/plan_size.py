"""``plan-size``: how many probes a criterion needs for a verdict.

Registered in the main command group by the CLI module; this file only defines the command.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["plan_size"]

_MAX_FAILURES = 10_000


def _failure_counts(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[int]:
    """Allowed-failure counts from ``--failures``: each a number (``2``) or a range (``0-3``)."""
    del ctx, param
    counts: set[int] = set()
    for value in values:
        text = value.strip()
        low_text, sep, high_text = text.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if sep else low
        except ValueError:
            raise click.BadParameter(
                f"expected a whole number or a range such as 0-2 (got {text!r})"
            ) from None
        if low < 0 or high < low or high > _MAX_FAILURES:
            raise click.BadParameter(
                f"expected counts from 0 to {_MAX_FAILURES}, low end first (got {text!r})"
            )
        counts.update(range(low, high + 1))
    return sorted(counts) or [0]


def _unit_interval(ctx: click.Context, param: click.Parameter, value: float) -> float:
    del ctx
    if param.name == "confidence" and not 0.5 <= value < 1.0:
        raise click.BadParameter(f"must be at least 0.5 and below 1 (got {value})")
    if not 0.0 < value < 1.0:
        raise click.BadParameter(f"must be strictly between 0 and 1 (got {value})")
    return value


def _table(threshold: float, confidence: float, failures: list[int]) -> list[str]:
    from audit.stats.planning import probes_needed

    lines = [
        f"Probes needed for COMPLIANT at threshold {threshold:g}, confidence {confidence:g}",
        "(one-sided exact Clopper–Pearson lower bound at or above the threshold):",
        "",
        "| allowed failures | probes needed |",
        "| ---: | ---: |",
    ]
    lines += [f"| {f} | {probes_needed(threshold, confidence, f)} |" for f in failures]
    return lines


def _detectable(probes: int, threshold: float, confidence: float, power: float) -> list[str]:
    from audit.stats.planning import (
        can_reach_non_compliant,
        can_reach_verdict,
        detectable_rate,
        detectable_shortfall,
        probes_needed,
    )

    lines = ["", f"A plan of {probes} probes, with probability at least {power:g}:"]
    if can_reach_verdict(probes, threshold, confidence):
        rate = detectable_rate(probes, threshold, confidence, power)
        lines.append(
            f"- says COMPLIANT when the true rate is {rate:.4f} or more "
            f"({rate - threshold:.4f} above the threshold)"
        )
    else:
        needed = probes_needed(threshold, confidence)
        lines.append(
            f"- can never say COMPLIANT: even {probes}/{probes} falls short ({needed} needed)"
        )
    if can_reach_non_compliant(probes, threshold, confidence):
        rate = detectable_shortfall(probes, threshold, confidence, power)
        lines.append(
            f"- says NON_COMPLIANT when the true rate is {rate:.4f} or less "
            f"({threshold - rate:.4f} below the threshold)"
        )
    else:
        lines.append(f"- can never say NON_COMPLIANT: even 0/{probes} is not below the threshold")
    return lines


@click.command("plan-size")
@click.option(
    "--threshold",
    type=float,
    default=0.95,
    show_default=True,
    callback=_unit_interval,
    help="Share of violating probes that must be removed in time.",
)
@click.option(
    "--confidence",
    type=float,
    default=0.95,
    show_default=True,
    callback=_unit_interval,
    help="Confidence at which a verdict is given.",
)
@click.option(
    "--failures",
    "failures",
    metavar="N|A-B",
    multiple=True,
    callback=_failure_counts,
    help="Allowed failures: repeat the option or give a range such as 0-2. [default: 0]",
)
@click.option(
    "--probes",
    type=click.IntRange(min=1),
    default=None,
    help="An existing plan size: print the true rates it detects with the given power.",
)
@click.option(
    "--power",
    type=float,
    default=0.8,
    show_default=True,
    callback=_unit_interval,
    help="Probability of reaching the verdict, for --probes.",
)
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Check a plan instead: each criterion's sample, how many unknown outcomes it can "
    "absorb, and a warning where it can never reach COMPLIANT.",
)
def plan_size(
    threshold: float,
    confidence: float,
    failures: list[int],
    probes: int | None,
    power: float,
    plan_path: Path | None,
) -> None:
    """Print how many probes a criterion needs for a COMPLIANT verdict.

    The table gives, for each number of allowed failures, the smallest number of violating
    probes for which that many failures still leave the exact lower bound at the threshold.
    Under the verdict rule a probe whose outcome is unknown counts as a failure for COMPLIANT,
    so the allowed failures are failures and unknowns together. With --plan, the plan's own
    criteria are checked instead.
    """
    if plan_path is not None:
        from audit.plan import load_plan
        from audit.plan_checks import criterion_lines, plan_packs, sample_warnings

        plan = load_plan(plan_path)
        packs = plan_packs(plan, plan_path)
        click.echo("\n".join(criterion_lines(plan, packs)))
        for line in sample_warnings(plan, packs):
            click.echo(f"warning: {line}", err=True)
        return
    lines = _table(threshold, confidence, failures)
    if probes is not None:
        lines += _detectable(probes, threshold, confidence, power)
    click.echo("\n".join(lines))


COMMANDS = [plan_size]
