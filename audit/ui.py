"""Terminal output: progress while a run goes, the summary table when it ends."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from audit.durations import format_duration
from audit.engine import ProgressEvent
from audit.scorecard import Scorecard

__all__ = ["Progress", "print_summary"]

_STYLE = {
    "COMPLIANT": "bold green",
    "NON_COMPLIANT": "bold red",
    "INCONCLUSIVE": "bold yellow",
    "NOT_MEASURED": "bold white",
}


class Progress:
    """A progress bar counting probes that reached a final state (stderr, only on a terminal)."""

    def __init__(self, total: int, label: str) -> None:
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not sys.stderr.isatty(),
        )
        self._task = self._bar.add_task(label, total=total, detail="")
        self._states: dict[str, str] = {}

    def update(self, event: ProgressEvent) -> None:
        self._states[event.probe_id] = event.state
        done = sum(1 for s in self._states.values() if s == "finished")
        watching = sum(1 for s in self._states.values() if s == "watching")
        self._bar.update(self._task, completed=done, detail=f"watching {watching}")

    def __enter__(self) -> Progress:
        self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()


def _platform_time(seconds: float | None, time_scale: float) -> str:
    """A time in platform terms: a compressed run's seconds scaled back, as the scorecard does."""
    if seconds is None:
        return "not reached"
    return format_duration(seconds * time_scale)


def _bounds(lower: float | None, upper: float | None) -> str:
    """The one-sided exact bounds the verdict is decided on."""
    if lower is None or upper is None:
        return "–"
    return f"{lower:.1%} – {upper:.1%}"


def print_summary(card: Scorecard, console: Console | None = None) -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 132)
    table = Table(title=f"{card.pack['id']} on {card.target['name']} — run {card.run_id}")
    for column in (
        "criterion",
        "trigger",
        "deadline",
        "removed in time",
        "verdict bounds",
        "threshold",
        "median time",
        "over-removal",
        "verdict",
    ):
        table.add_column(column)
    for c in card.criteria:
        rate = c.removal_in_deadline
        table.add_row(
            c.id,
            c.trigger,
            format_duration(c.deadline_seconds * card.time_scale),
            f"{rate.successes}/{rate.n}" + (f" ({rate.rate:.1%})" if rate.rate is not None else ""),
            _bounds(c.one_sided_lower, c.one_sided_upper),
            f"{c.threshold:.0%}",
            _platform_time(c.median_time.seconds, card.time_scale),
            f"{c.over_removed}/{c.controls}"
            + (" [red]excessive[/]" if c.over_removal_verdict == "EXCESSIVE" else ""),
            f"[{_STYLE[c.verdict]}]{c.verdict}[/]",
        )
    console.print(table)
    if card.time_scale != 1:
        console.print(
            f"[yellow]Deadlines compressed {card.time_scale:g}x for a demonstration (times are "
            "shown in platform time): these figures show the method, not a real platform's "
            "compliance.[/]"
        )
    if card.standing != "FINAL":
        deadline = f" The last deadline falls at {card.last_deadline_utc}." if card.pending else ""
        # the note may quote a failure's message: never read it as markup
        console.print(f"[bold red]{escape(card.standing_note)}[/]{deadline}")
    console.print(
        f"Overall: [{_STYLE[card.overall_verdict]}]{card.overall_verdict}[/]"
        + (f" ({card.standing})" if card.standing != "FINAL" else "")
        + f" (exit code {card.exit_code})"
    )
