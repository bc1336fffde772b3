"""Command-line options shared by several commands, so each is spelt and checked once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from audit.render import FORMATS

__all__ = ["DEFAULT_FORMATS", "allow_production_option", "formats_option", "parse_formats"]

DEFAULT_FORMATS = "html,md,json"
F = TypeVar("F", bound=Callable[..., Any])


def parse_formats(value: str) -> list[str]:
    """``html,md`` as a list, every name a known scorecard format."""
    formats = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise click.BadParameter(f"choose among {', '.join(FORMATS)} (got {value!r})")
    return formats


def _formats_callback(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    del ctx, param
    return parse_formats(value)


def formats_option(what: str = "Scorecard formats") -> Callable[[F], F]:
    """``--format``: comma-separated scorecard formats, parsed into a list."""
    return click.option(
        "--format",
        "formats",
        default=DEFAULT_FORMATS,
        show_default=True,
        callback=_formats_callback,
        help=f"{what}, comma-separated: {', '.join(FORMATS)}.",
    )


allow_production_option = click.option(
    "--allow-production",
    is_flag=True,
    help="Allow probes on targets whose environment is 'production'.",
)
