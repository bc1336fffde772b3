"""The run store as a typed protocol, and the typed change of one probe's row.

Two stores implement :class:`RunStore`: :class:`audit.store.Store` (SQLite, one file in the
workspace folder: the default) and :class:`audit.store_pg.PostgresStore` (PostgreSQL through a
psycopg connection pool). The engine, the runner, the evidence and the reports use only what
this protocol declares, so either store carries a run and both give the same evidence for the
same run content. Either way the store knows its workspace folder, which keeps what is not rows
in a database: the signing key, the reports, the platform's stored statements, and (SQLite
only) the run locks.

A probe's row changes through a :class:`ProbeUpdate`: each field left at :data:`KEEP` is not
written, so ``ProbeUpdate(next_at=None)`` clears the next step and changes nothing else.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from audit.locking import HeldLock
from audit.store_rows import (
    ExchangeRecord,
    ObservationRow,
    ProbeRow,
    RunRow,
    ScheduledRun,
    row_of,
)

if TYPE_CHECKING:
    from audit.packs import Pack

__all__ = ["KEEP", "NO_CHANGE", "LeaseStore", "ProbeUpdate", "RunStore"]


class _Keep(enum.Enum):
    KEEP = "keep"

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Literal[_Keep.KEEP] = _Keep.KEEP
"""A :class:`ProbeUpdate` field left as it is in the stored row."""

_Kept = Literal[_Keep.KEEP]


@dataclass(frozen=True)
class ProbeUpdate:
    """The columns of one probe's row a transition changes; fields at :data:`KEEP` stay."""

    state: str | _Kept = KEEP
    next_at: float | _Kept | None = KEEP
    scheduled_at: float | _Kept = KEEP
    post_id: str | _Kept | None = KEEP
    submitted_at: float | _Kept | None = KEEP
    clock_start: float | _Kept | None = KEEP
    deadline_at: float | _Kept | None = KEEP
    offsets: list[float] | _Kept | None = KEEP
    poll_index: int | _Kept = KEEP
    withdrawn_at: float | _Kept | None = KEEP
    outcome: str | _Kept | None = KEEP
    note: str | _Kept | None = KEEP

    def changes(self) -> dict[str, Any]:
        """The changed columns and their new values, in the order of the row's columns."""
        return {
            name: value for name in _UPDATE_COLUMNS if (value := getattr(self, name)) is not KEEP
        }

    def sets(self, name: str) -> bool:
        """Whether the update changes the column ``name``."""
        return getattr(self, name) is not KEEP

    def applied_to(self, row: ProbeRow) -> ProbeRow:
        """The row as it is once the update is written."""
        changes = self.changes()
        if not changes:
            return row
        # what dataclasses.replace(row, **changes) gives, without __init__ on every transition
        return row_of(ProbeRow, row.__dict__, changes)


_UPDATE_COLUMNS = tuple(f.name for f in dataclasses.fields(ProbeUpdate))

NO_CHANGE = ProbeUpdate()
"""The update that changes no column (a transition that only records an observation)."""


class RunStore(Protocol):
    """Runs, their probes, observations and evidence ledger, durable before the engine acts.

    Every write is one transaction, committed when the method returns; a store opened again
    (in this process or another) reads what was committed. Ledger records given to
    :meth:`append_exchange` inside :meth:`exchanges_with_transitions` wait for the next probe
    transition and are written in its transaction.
    """

    @property
    def workspace(self) -> Path:
        """The folder that keeps the key, reports and stored statements of the store's runs."""
        ...

    @property
    def location(self) -> str:
        """Where the store is, for messages (a file path, or a URL without its password)."""
        ...

    def close(self) -> None: ...

    def check_integrity(self) -> None:
        """RuntimeFailure when the store is known to be damaged (see each implementation)."""
        ...

    def snapshot_read(self) -> AbstractContextManager[object]:
        """A block whose reads all see one state of the store (for a consistent bundle)."""
        ...

    def run_lock(self, run_id: str, *, shared: bool = False) -> HeldLock:
        """The lock a process must hold to carry the run forward or clean it up; ``shared``:
        the one the workers hold together (see :mod:`audit.worker`)."""
        ...

    # runs
    def create_run(
        self,
        run: RunRow,
        probes: Iterable[ProbeRow],
        slot: float | None = None,
        schedule: Callable[[list[str]], Iterable[tuple[float, str]]] | None = None,
    ) -> int: ...

    def scheduled_runs(self, plan_name: str) -> list[ScheduledRun]: ...

    def run(self, run_id: str) -> RunRow: ...

    def pack_of(self, run: RunRow) -> Pack: ...

    def runs(self) -> list[RunRow]: ...

    def finish_run(
        self, run_id: str, status: str, at: float, failure: str | None = None
    ) -> None: ...

    # probes
    def probes(self, run_id: str) -> list[ProbeRow]: ...

    def probe(self, run_id: str, probe_id: str) -> ProbeRow: ...

    def next_due_time(self, run_id: str) -> float | None: ...

    def shortest_deadline(self, run_id: str) -> float | None: ...

    def lay_schedule(self, run_id: str, start: float) -> float: ...

    def live_probes(self, run_id: str) -> list[ProbeRow]: ...

    def due_probes(
        self, run_id: str, after: tuple[float, int] | None, limit: int
    ) -> list[ProbeRow]: ...

    def unscheduled_probes(self, run_id: str) -> list[ProbeRow]: ...

    def probe_content(self, run_id: str, probe_id: str) -> dict[str, Any]: ...

    def looks_of(self, run_id: str, probe_ids: Sequence[str]) -> list[ObservationRow]: ...

    def outcomes_pending(self, run_id: str) -> bool: ...

    def probes_up(self, run_id: str) -> list[ProbeRow]: ...

    def live_looks(self, run_id: str) -> list[ObservationRow]: ...

    def outcome_counts(self, run_id: str) -> dict[str, int]: ...

    def action_counts(self, run_id: str) -> dict[str, int]: ...

    def state_counts(self, run_id: str) -> dict[str, int]: ...

    def update_probe(
        self,
        run_id: str,
        probe_id: str,
        observation: ObservationRow | None = None,
        change: ProbeUpdate = NO_CHANGE,
    ) -> None: ...

    def update_probes(
        self,
        run_id: str,
        changes: Sequence[tuple[str, ObservationRow | None, ProbeUpdate]],
    ) -> None: ...

    def observations(self, run_id: str) -> dict[str, list[ObservationRow]]: ...

    def observations_of(self, run_id: str, probe_id: str) -> list[ObservationRow]: ...

    def probes_with_observations(
        self, run_id: str
    ) -> Iterator[tuple[ProbeRow, list[ObservationRow]]]:
        """Each probe of the run with its observations in the order made, in probe-id order
        (code point order), holding one probe's observations at a time."""
        ...

    # evidence
    def last_exchange(self, run_id: str) -> tuple[int, str]: ...

    def append_exchange(self, run_id: str, record: ExchangeRecord) -> None: ...

    def exchanges_with_transitions(self) -> AbstractContextManager[None]: ...

    def exchanges(self, run_id: str) -> Iterator[ExchangeRecord]: ...

    def probe_exchanges(self, run_id: str) -> Generator[ExchangeRecord, None, None]:
        """The run's ledger records made for a probe, probe by probe in probe-id order (code
        point order, as :meth:`probes_with_observations`), each probe's in ledger order, read
        as a stream. Their ``prev_hash`` is not read (it is empty): the chain is walked in
        ledger order by :meth:`exchanges`. Read it in :meth:`snapshot_read` beside that walk
        so both see the same records."""
        ...

    def media_sent(self, run_id: str) -> dict[str, frozenset[str]]: ...

    def exchange_count(self, run_id: str) -> int: ...


class LeaseStore(Protocol):
    """The workers' shared state in a store (:mod:`audit.worker`): probe leases, each target's
    pace and concurrent places. Each method is one transaction. SQLite:
    :class:`audit.store_leases.Leases`; PostgreSQL: :class:`audit.store_pg_leases.PgLeases`."""

    def claim(
        self, run_id: str, owner: str, now: float, horizon: float, until: float, limit: int
    ) -> list[ProbeRow]:
        """Lease to ``owner`` until ``until`` up to ``limit`` of the run's probes with work due
        by ``horizon`` (or interrupted mid-submission) whose lease is free or lapsed at
        ``now``, in the order they fall due; without their content."""
        ...

    def next_claimable(self, run_id: str, now: float) -> float | None: ...

    def write_fenced(
        self,
        run_id: str,
        changes: Sequence[tuple[str, ObservationRow | None, ProbeUpdate]],
        owner: str,
        now: float,
        until: float,
        release: Iterable[str] = (),
    ) -> set[str]:
        """The changes of the probes whose lease ``owner`` still holds (renewed to
        ``until``), and the end of its leases in ``release``; returns the probes lost."""
        ...

    def renew(self, owner: str, now: float, until: float) -> set[tuple[str, str]]: ...

    def holds(self, run_id: str, probe_id: str, owner: str, now: float, until: float) -> bool: ...

    def release(self, owner: str, run_id: str | None = None) -> int: ...

    def held(self, run_id: str | None = None) -> dict[str, tuple[str, float]]: ...

    def complete_run(self, run_id: str, at: float) -> bool: ...

    def take_pace(self, key: str, interval: float, now: float) -> float: ...

    def take_place(
        self, key: str, size: int, owner: str, now: float, until: float
    ) -> int | None: ...

    def leave_place(self, key: str, place: int, owner: str) -> None: ...
