"""The scorecard's probes: one compact record per probe, and the table that shows them as
evidence rows.

A run's scorecard keeps, for each probe, one :class:`ProbeRecord`: its judgement (outcome, look
window, looks, views, filing) and the stored values its evidence row shows (ids, content, raw
times), with the few values many probes share (criterion, template, language, outcome...) held
once. :class:`ProbeTable` is the scorecard's ``probes``: a read-only sequence of
:class:`~audit.scorecard_model.ProbeEvidence` that makes each row when it is read, so a run of
100,000 probes never holds 100,000 evidence rows and their time strings at once. Formats that
write every probe read :meth:`ProbeTable.data` (each row's JSON data, made without a model).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from audit.clock import utc_iso
from audit.durations import format_duration
from audit.outcomes import Outcome
from audit.scorecard_model import ProbeEvidence, TimeFigure

__all__ = [
    "Filing",
    "ProbeRecord",
    "ProbeTable",
    "evidence",
    "evidence_data",
    "probe_data",
    "probe_rows",
    "shared",
    "time_text",
]


def time_text(seconds: float | None, low: float | None = None, high: float | None = None) -> str:
    """A time figure's text: the duration, with its interval where one is given."""
    if seconds is None or math.isinf(seconds):
        return "not reached"
    text = format_duration(seconds)
    if low is not None and high is not None:
        hi = "∞" if math.isinf(high) else format_duration(high)
        text += f" ({format_duration(low)} – {hi})"
    return text


@dataclass(frozen=True, slots=True)
class Filing:
    accepted: int  # answers that said filed
    intents: int  # attempts recorded before sending
    cut_short: bool  # the last record is an intent with no answer after it


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    """A judged probe: what the scorecard's figures and its evidence row read of it."""

    probe_id: str
    seq: int
    criterion_id: str
    expectation: str
    trigger: str
    state: str
    template_id: str
    language: str
    modality: str
    variants: tuple[str, ...]
    # the probe's text as UTF-8: a third of the str it decodes to where the text holds a
    # character beyond the Basic Multilingual Plane (an emoji), which makes a str 4 bytes a
    # character
    text_utf8: bytes
    post_id: str | None
    scheduled_at: float
    deadline_s: float
    submitted_at: float | None
    clock_start: float | None
    deadline_at: float | None
    withdrawn_at: float | None
    outcome: Outcome | None
    last_visible: float | None
    first_down: float | None
    reason: str
    looks: int
    noticed_at: float | None  # when a notice or order about it was accepted
    view: str | None  # the view that decided its looks (None: no measured look)
    view_disagreements: int  # its looks on which the author's and observer's views disagreed
    measured_looks: int  # its status looks that saw it visible, removed or gone
    filing: Filing | None  # how its notice or order went (None: no such filing made)

    @property
    def text(self) -> str:
        return self.text_utf8.decode("utf-8", "surrogatepass")


def shared(value: str) -> str:
    """One copy of a value many probes hold (criterion, template, language, state...)."""
    return sys.intern(value)


def _removal(record: ProbeRecord) -> dict[str, Any] | None:
    """The evidence row's ``removal_after``: from the clock start to the first look down, the
    low end from the last look up."""
    start, down = record.clock_start, record.first_down
    if start is None or down is None:
        return None
    seconds = down - start
    low = max(0.0, (record.last_visible or start) - start)
    return {
        "seconds": seconds,
        "low": low,
        "high": None if math.isinf(seconds) else seconds,
        "text": time_text(seconds, low, seconds),
    }


def evidence_data(record: ProbeRecord) -> dict[str, Any]:
    """The probe's evidence row as data: ``ProbeEvidence.model_dump(mode="json")`` of
    :func:`evidence`, key for key, made without the model."""
    outcome = record.outcome
    return {
        "probe_id": record.probe_id,
        "criterion_id": record.criterion_id,
        "expectation": record.expectation,
        "template_id": record.template_id,
        "language": record.language,
        "modality": record.modality,
        "variants": list(record.variants),
        "text": record.text,
        "post_id": record.post_id,
        "trigger": record.trigger,
        "submitted_utc": utc_iso(record.submitted_at),
        "clock_start_utc": utc_iso(record.clock_start),
        "deadline_utc": utc_iso(record.deadline_at),
        "last_visible_utc": utc_iso(record.last_visible),
        "first_down_utc": utc_iso(record.first_down),
        "removal_after": _removal(record),
        "looks": record.looks,
        "outcome": outcome.value if outcome else "pending",
        "reason": record.reason,
        "withdrawn_utc": utc_iso(record.withdrawn_at),
        "view": record.view,
        "view_disagreements": record.view_disagreements,
    }


_EVIDENCE_FIELDS = set(ProbeEvidence.model_fields)
_TIME_FIELDS = set(TimeFigure.model_fields)


def evidence(record: ProbeRecord) -> ProbeEvidence:
    """The probe's evidence row, built from typed values without validating them again."""
    data = evidence_data(record)
    removal = data["removal_after"]
    if removal is not None:
        data["removal_after"] = TimeFigure.model_construct(_TIME_FIELDS, **removal)
    return ProbeEvidence.model_construct(_EVIDENCE_FIELDS, **data)


class ProbeTable(Sequence[ProbeEvidence]):
    """The probes of a scorecard as evidence rows, each made when it is read."""

    __slots__ = ("_records",)

    def __init__(self, records: Sequence[ProbeRecord]) -> None:
        self._records = records

    @property
    def records(self) -> Sequence[ProbeRecord]:
        return self._records

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> ProbeEvidence: ...

    @overload
    def __getitem__(self, index: slice) -> list[ProbeEvidence]: ...

    def __getitem__(self, index: int | slice) -> ProbeEvidence | list[ProbeEvidence]:
        if isinstance(index, slice):
            return [evidence(r) for r in self._records[index]]
        return evidence(self._records[index])

    def __iter__(self) -> Iterator[ProbeEvidence]:
        return map(evidence, self._records)

    def __repr__(self) -> str:
        return f"ProbeTable({len(self._records)} probes)"

    def data(self, start: int, stop: int) -> list[dict[str, Any]]:
        """The evidence rows ``start`` to ``stop`` as data (:func:`evidence_data`)."""
        return [evidence_data(r) for r in self._records[start:stop]]

    def where(self, keep: Callable[[ProbeRecord], bool]) -> ProbeTable:
        """The probes whose record ``keep`` accepts, in this table's order."""
        return ProbeTable([r for r in self._records if keep(r)])


def probe_rows(probes: Sequence[ProbeEvidence]) -> Sequence[ProbeRecord | ProbeEvidence]:
    """The probes as rows to read their ids, criterion, expectation, modality and view
    disagreements from (the same in a record as in an evidence row): a table's records, with
    no evidence row made."""
    return probes.records if isinstance(probes, ProbeTable) else probes


def probe_data(probes: Sequence[ProbeEvidence], start: int, stop: int) -> list[dict[str, Any]]:
    """The evidence rows ``start`` to ``stop`` of any scorecard's probes as data."""
    if isinstance(probes, ProbeTable):
        return probes.data(start, stop)
    return [p.model_dump(mode="json") for p in probes[start:stop]]
