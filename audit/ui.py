"""Terminal output: progress while a run goes, the summary table when it ends."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from audit.clock import utc_iso
from audit.durations import format_duration
from audit.engine import ProgressEvent
from audit.i18n import N_, Language, language
from audit.scorecard import Scorecard

__all__ = ["Progress", "print_summary"]

_ENGLISH = language("en")
_STYLE = {
    "COMPLIANT": "bold green",
    "NON_COMPLIANT": "bold red",
    "INCONCLUSIVE": "bold yellow",
    "NOT_MEASURED": "bold white",
}


class Progress:
    """What a run is doing, on stderr, while it goes.

    On a terminal: a bar counting probes that reached a final state. Elsewhere (cron, CI, a
    pipe): one line at the start and then at least every ``every`` seconds of wall time, from a
    background thread, so a run that only waits still says it is alive. Either way, once every
    probe is posted and the run only watches, one line says when the last deadline falls
    (``last_deadline`` reads it from the store).
    """

    def __init__(
        self,
        total: int,
        label: str,
        *,
        last_deadline: Callable[[], float | None] | None = None,
        now: Callable[[], float] = time.time,
        every: float = 30.0,
        stream: TextIO | None = None,
        terminal: bool | None = None,
    ) -> None:
        self._stream = stream or sys.stderr
        self._terminal = self._stream.isatty() if terminal is None else terminal
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(file=self._stream),
            disable=not self._terminal,
        )
        self._task = self._bar.add_task(label, total=total, detail="")
        self._label, self._total = label, total
        self._states: dict[str, str] = {}
        self._counts: Counter[str] = Counter()  # probes per state, kept as events arrive
        self._lock = threading.Lock()
        self._last_deadline, self._now, self._every = last_deadline, now, every
        self._told_deadline = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        # the last deadline is read (from the store) only on the caller's thread, at most
        # once per interval; the background line shows the latest reading
        self._deadline: float | None = None
        self._read_at: float | None = None

    def update(self, event: ProgressEvent) -> None:
        with self._lock:
            before = self._states.get(event.probe_id)
            if before is not None:
                self._counts[before] -= 1
            self._states[event.probe_id] = event.state
            self._counts[event.state] += 1
            counts = self._counts.copy()
        done, watching = counts["finished"], counts["watching"]
        self._bar.update(self._task, completed=done, detail=f"watching {watching}")
        if self._told_deadline or self._last_deadline is None:
            self._read_deadline()
            return
        posting = self._total - sum(counts[s] for s in ("watching", "withdrawing", "finished"))
        if posting == 0 and watching:
            self._told_deadline = True
            self._read_deadline(force=True)
            self._say(f"{self._label}: every probe is posted; {self._deadline_text()}")
        else:
            self._read_deadline()

    def _read_deadline(self, force: bool = False) -> None:
        if self._last_deadline is None:
            return
        now = self._now()
        if force or self._read_at is None or now - self._read_at >= self._every:
            self._read_at = now
            self._deadline = self._last_deadline()

    def line(self) -> str:
        """The progress line printed when output is not a terminal."""
        with self._lock:
            counts = +self._counts  # without the states no probe is in
        finished = counts.pop("finished", 0)
        parts = [f"{finished}/{self._total} finished"]
        parts += [f"{n} {state}" for state, n in sorted(counts.items())]
        line = f"{self._label}: {', '.join(parts)}"
        # the deadline only where it is read (a caller without a store gives no reader)
        return line if self._last_deadline is None else f"{line}; {self._deadline_text()}"

    def _deadline_text(self) -> str:
        last = self._deadline
        if last is None:
            return "no deadline pending"
        ahead = last - self._now()
        when = f"in {format_duration(ahead)}" if ahead > 0 else "passed"
        return f"the last deadline falls at {utc_iso(last)} ({when})"

    def _say(self, text: str) -> None:
        if self._terminal:
            self._bar.console.print(escape(text))
        else:
            print(text, file=self._stream, flush=True)

    def _tick(self) -> None:
        while True:
            self._say(self.line())
            if self._stop.wait(self._every):
                return

    def __enter__(self) -> Progress:
        self._read_deadline(force=True)
        self._bar.start()
        if not self._terminal:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self._bar.stop()


def _platform_time(seconds: float | None, time_scale: float, lang: Language = _ENGLISH) -> str:
    """A time in platform terms: a compressed run's seconds scaled back, as the scorecard does."""
    if seconds is None:
        return lang.gettext(N_("not reached"))
    return lang.duration(seconds * time_scale)


def _share(value: float, digits: int, lang: Language) -> str:
    return lang.pct(value, digits)


def _bounds(lower: float | None, upper: float | None, lang: Language = _ENGLISH) -> str:
    """The one-sided exact bounds the verdict is decided on."""
    if lower is None or upper is None:
        return "–"
    return f"{_share(lower, 1, lang)} – {_share(upper, 1, lang)}"


# Wide terminals get the full column names; narrow ones (80 columns) short names and a legend
_WIDE = 120
_COLUMNS = (  # (full name, short name)
    (N_("criterion"), N_("criterion")),
    (N_("trigger"), N_("trig.")),
    (N_("deadline"), N_("deadline")),
    (N_("removed in time"), N_("in time")),
    (N_("verdict bounds"), N_("bounds")),
    (N_("threshold"), N_("thr.")),
    (N_("median time"), N_("median")),
    (N_("over-removal"), N_("controls\nremoved")),
    (N_("verdict"), N_("verdict")),
)
_TRIGGER_SHORT = {"order": N_("ord."), "notice": N_("not."), "proactive": N_("pro.")}
_LEGEND = N_(
    "trig.: ord. order, not. notice, pro. proactive · in time: violating probes removed within "
    "the deadline · bounds: the one-sided exact bounds the verdict rests on · thr.: threshold · "
    "median: median time to removal · controls removed: benign controls removed / controls"
)
_UNIT_WORDS = ("d", "h", "min", "ngày", "giờ", "phút")  # a duration's units, after a number


def _summary_table(card: Scorecard, narrow: bool, tongue: Language) -> Table:
    from audit.report.words import WORDS
    from audit.scorecard_text import code

    title = tongue.format(
        N_("%(pack)s on %(platform)s — run %(run)s"),
        pack=card.pack["id"],
        platform=card.target["name"],
        run=card.run_id,
    )
    if narrow:
        table = Table(title=title, box=box.SIMPLE_HEAD, padding=0, pad_edge=False, show_edge=False)
    else:
        table = Table(title=title)
    for full, short in _COLUMNS:
        table.add_column(tongue.gettext(short if narrow else full))
    table.columns[0].no_wrap = True
    verdict = table.columns[-1]  # never cut, at any width
    verdict.no_wrap = True
    verdict.min_width = max(len(code(tongue, v)) for v in _STYLE)
    fit, sep = (_two_lines, "\n") if narrow else (str, " ")
    for c in card.criteria:
        rate = c.removal_in_deadline
        share = "" if rate.rate is None else _share(rate.rate, 1, tongue)
        trigger = _TRIGGER_SHORT.get(c.trigger) if narrow else WORDS.get(c.trigger)
        table.add_row(
            c.id,
            tongue.gettext(trigger) if trigger else c.trigger,
            fit(tongue.clock(c.deadline_seconds * card.time_scale)),  # as the HTML: 24 h
            f"{rate.successes}/{rate.n}"
            + (f"\n{share}" if narrow else f" ({share})" if share else ""),
            fit(_bounds(c.one_sided_lower, c.one_sided_upper, tongue)),
            _share(c.threshold, 0, tongue),
            fit(_platform_time(c.median_time.seconds, card.time_scale, tongue)),
            f"{c.over_removed}/{c.controls}"
            + (
                f"{sep}[red]{tongue.gettext(N_('excessive'))}[/]"
                if c.over_removal_verdict == "EXCESSIVE"
                else ""
            ),
            f"[{_STYLE[c.verdict]}]{code(tongue, str(c.verdict))}[/]",
        )
    return table


def _two_lines(text: str, width: int = 8) -> str:
    """A value longer than ``width`` on two lines, broken between words: after a duration's
    first unit (``2 h`` over ``12 min``), else at the space nearest the middle."""
    words = text.split(" ")
    if len(text) <= width or len(words) < 2:
        return text
    units = [i for i, word in enumerate(words[:-1]) if word in _UNIT_WORDS and i > 0]
    cut = (
        units[0] + 1
        if units
        else min(range(1, len(words)), key=lambda i: abs(len(" ".join(words[:i])) - len(text) / 2))
    )
    return f"{' '.join(words[:cut])}\n{' '.join(words[cut:])}"


def _not_measured(card: Scorecard) -> list[str]:
    """Why criteria were not measured, each reason once with the criteria it concerns; none
    for a failed run, whose note already says why."""
    if card.standing == "FAILED":
        return []
    reasons: dict[str, list[str]] = {}
    for c in card.criteria:
        if c.verdict == "NOT_MEASURED":
            reasons.setdefault(c.verdict_reason, []).append(c.id)
    return [f"{', '.join(ids)}: {reason}" for reason, ids in reasons.items()]


def print_summary(card: Scorecard, console: Console | None = None, lang: str = "en") -> None:
    """The verdict table and the notes a reader must not miss, in language ``lang``."""
    from audit.scorecard_text import code, standing_text

    tongue = language(lang)
    console = console or Console(width=None if sys.stdout.isatty() else 132)
    narrow = console.width < _WIDE
    console.print(_summary_table(card, narrow, tongue))
    if narrow:
        console.print(f"[dim]{tongue.gettext(_LEGEND)}[/]")
    for line in _not_measured(card):
        console.print(f"[bold]{escape(line)}[/]")  # the reason may quote a platform's words
    if card.time_scale != 1:
        console.print(
            "[yellow]"
            + tongue.format(
                N_(
                    "Deadlines compressed %(scale)sx for a demonstration (times are shown in "
                    "platform time): these figures show the method, not a real platform's "
                    "compliance."
                ),
                scale=f"{card.time_scale:g}",
            )
            + "[/]"
        )
    if card.standing != "FINAL":
        deadline = (
            " "
            + tongue.format(N_("The last deadline falls at %(when)s."), when=card.last_deadline_utc)
            if card.pending
            else ""
        )
        # the note may quote a failure's message: never read it as markup
        console.print(f"[bold red]{escape(standing_text(tongue, card))}[/]{escape(deadline)}")
    standing = f" ({code(tongue, str(card.standing))})" if card.standing != "FINAL" else ""
    console.print(
        tongue.format(
            N_("Overall: %(verdict)s%(standing)s (exit code %(code)s)"),
            verdict=f"[{_STYLE[card.overall_verdict]}]{code(tongue, str(card.overall_verdict))}[/]",
            standing=standing,
            code=card.exit_code,
        )
    )
