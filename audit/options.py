"""Command-line options shared by several commands, so each is spelt and checked once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from audit.cli_names import FORMATS, LANGUAGES

__all__ = [
    "DEFAULT_FORMATS",
    "allow_production_option",
    "formats_option",
    "give_up_option",
    "lang_option",
    "parse_formats",
    "seconds_callback",
]

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
    formats = parse_formats(value)
    if "pdf" in formats:  # refused now, not after a run of hours
        from audit.report.chromium import PdfUnavailable, chromium_path

        if chromium_path() is None:
            raise click.BadParameter(PdfUnavailable().message)
    return formats


lang_option = click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default=None,
    help="Language of the scorecards (HTML, Markdown, PDF, JUnit messages) and the summary. "
    "Default: the plan's report_language, else en.",
)


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


_SHORTHAND = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?$")
_UNIT = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def seconds_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A duration option: seconds (``90``), a unit (``50s``, ``5m``, ``2h``, ``1d``) or ISO 8601."""
    del ctx
    if value is None:
        return None
    match = _SHORTHAND.match(value.strip())
    if match:
        return float(match.group(1)) * _UNIT[match.group(2)]
    from audit.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError:
        raise click.BadParameter(
            f"'{param.name}' must be a duration such as 50s, 5m, 2h or PT5M (got {value!r})"
        ) from None


give_up_option = click.option(
    "--give-up-after",
    "give_up",
    default=None,
    metavar="DURATION",
    callback=seconds_callback,
    help="End the run (failed, with the reason; `resume` continues it) once the target has "
    "given no working answer for this long, e.g. 90s or 10m. Default: the plan's "
    "give_up_after, else 5% of the shortest deadline as run, at least 30 s.",
)
