"""SQLite store: one file per workspace holding runs, probes, observations and exchanges.

Every state change of a probe is committed before the engine acts on it, so a run killed at any
moment resumes from what is on disk. WAL mode lets ``status`` read while a run writes.

Schema versions: 1 runs, probes, observations, exchanges; 2 adds ``scheduled_runs`` (which cron
slot of a recurring plan made which run); 3 adds ``runs.profile_json`` (the resolved target
profile a run reads its answers with; NULL for sandbox targets and for runs made before).
Upgrades only add tables and columns, so an older store opens as version 3; a store written by
a newer version is refused rather than misread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from audit.errors import InputError, RuntimeFailure
from audit.store_rows import (
    PLANNED_COLUMNS,
    ExchangeRecord,
    ObservationRow,
    ProbeRow,
    RunRow,
    ScheduledRun,
    SlotTaken,
    insert_sql,
    planned_probe_to_sql,
    probe_from_sql,
    run_from_sql,
    run_to_sql,
)

__all__ = [
    "ExchangeRecord",
    "ObservationRow",
    "ProbeRow",
    "RunRow",
    "ScheduledRun",
    "SlotTaken",
    "Store",
]

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    plan_name TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    target_name TEXT NOT NULL,
    target_json TEXT NOT NULL,
    pack_json TEXT NOT NULL,
    pack_digest TEXT NOT NULL,
    seed INTEGER NOT NULL,
    time_scale REAL NOT NULL,
    status TEXT NOT NULL,
    finished_at REAL,
    failure TEXT,
    profile_json TEXT
);
CREATE TABLE IF NOT EXISTS probes (
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    criterion_id TEXT NOT NULL,
    expectation TEXT NOT NULL,
    probe_json TEXT NOT NULL,
    trigger TEXT NOT NULL,
    deadline_s REAL NOT NULL,
    grace_s REAL NOT NULL,
    state TEXT NOT NULL,
    next_at REAL,
    scheduled_at REAL NOT NULL,
    post_id TEXT,
    submitted_at REAL,
    clock_start REAL,
    deadline_at REAL,
    offsets TEXT,
    poll_index INTEGER NOT NULL DEFAULT 0,
    withdrawn_at REAL,
    outcome TEXT,
    note TEXT,
    PRIMARY KEY (run_id, probe_id)
);
CREATE INDEX IF NOT EXISTS probes_due ON probes (run_id, next_at);
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS observations_probe ON observations (run_id, probe_id);
CREATE TABLE IF NOT EXISTS scheduled_runs (
    plan_name TEXT NOT NULL,
    slot REAL NOT NULL,
    pack_id TEXT NOT NULL,
    target_name TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (plan_name, slot, pack_id, target_name)
);
CREATE TABLE IF NOT EXISTS exchanges (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    probe_id TEXT,
    entry_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


class Store:
    """The workspace database. Not shared between threads; each process opens its own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        except (OSError, sqlite3.Error) as exc:
            raise RuntimeFailure(f"cannot open the workspace store {path}: {exc}") from None
        self._db.row_factory = sqlite3.Row
        self._pending: list[tuple[str, ExchangeRecord]] = []
        self._deferring = 0
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"not a platform-audit workspace store ({exc})", source=path) from None

    def _migrate(self) -> None:
        found = self._schema_version()
        if found is not None and found > SCHEMA_VERSION:
            raise InputError(
                f"the workspace store has schema version {found}, newer than this "
                f"platform-audit understands ({SCHEMA_VERSION}); upgrade platform-audit",
                source=self.path,
            )
        if found == SCHEMA_VERSION:
            return
        with self.transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            if "profile_json" not in columns:  # a version 1 or 2 store
                db.execute("ALTER TABLE runs ADD COLUMN profile_json TEXT")
            db.execute(
                "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key)"
                " DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def _schema_version(self) -> int | None:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if has_meta is None:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; exchange records waiting to be written go in it too."""
        self._db.execute("BEGIN IMMEDIATE")
        pending, self._pending = self._pending, []
        try:
            self._write_exchanges(pending)
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._pending = pending + self._pending
            raise

    # runs -------------------------------------------------------------------------------
    def create_run(
        self, run: RunRow, probes: Sequence[ProbeRow], slot: float | None = None
    ) -> None:
        """Store a run and its planned probes; with ``slot``, also claim that cron slot of the
        plan for the run's pack and target, atomically (:class:`SlotTaken` if already claimed)."""
        with self.transaction() as db:
            if slot is not None:
                self._claim_slot(db, run, slot)
            values = run_to_sql(run)
            db.execute(insert_sql("runs", list(values)), values)
            db.executemany(
                insert_sql("probes", PLANNED_COLUMNS), (planned_probe_to_sql(p) for p in probes)
            )

    @staticmethod
    def _claim_slot(db: sqlite3.Connection, run: RunRow, slot: float) -> None:
        try:
            db.execute(
                "INSERT INTO scheduled_runs VALUES (?,?,?,?,?,?)",
                (
                    run.plan_name,
                    slot,
                    run.pack["pack"]["id"],
                    run.target_name,
                    run.run_id,
                    run.created_at,
                ),
            )
        except sqlite3.IntegrityError:
            raise SlotTaken(f"{run.plan_name} @ {slot}") from None

    def scheduled_runs(self, plan_name: str) -> list[ScheduledRun]:
        rows = self._db.execute(
            "SELECT * FROM scheduled_runs WHERE plan_name = ? ORDER BY slot, pack_id, target_name",
            (plan_name,),
        ).fetchall()
        return [ScheduledRun(*r) for r in rows]

    def run(self, run_id: str) -> RunRow:
        row = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            known = [r.run_id for r in self.runs()[-5:]]
            hint = (
                f" (recent runs: {', '.join(known)})" if known else " (the workspace has no runs)"
            )
            raise InputError(f"no run {run_id!r} in this workspace{hint}", source=self.path)
        return run_from_sql(row)

    def runs(self) -> list[RunRow]:
        rows = self._db.execute("SELECT * FROM runs ORDER BY created_at, run_id").fetchall()
        return [run_from_sql(r) for r in rows]

    def finish_run(self, run_id: str, status: str, at: float, failure: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, failure = ? WHERE run_id = ?",
                (status, at, failure, run_id),
            )

    # probes -----------------------------------------------------------------------------
    def probes(self, run_id: str) -> list[ProbeRow]:
        rows = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? ORDER BY seq", (run_id,)
        ).fetchall()
        return [probe_from_sql(r) for r in rows]

    def probe(self, run_id: str, probe_id: str) -> ProbeRow:
        row = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? AND probe_id = ?", (run_id, probe_id)
        ).fetchone()
        if row is None:
            raise KeyError(probe_id)
        return probe_from_sql(row)

    def next_due_time(self, run_id: str) -> float | None:
        row = self._db.execute(
            "SELECT MIN(next_at) FROM probes WHERE run_id = ? AND next_at IS NOT NULL", (run_id,)
        ).fetchone()
        value = row[0] if row else None
        return float(value) if value is not None else None

    def live_probes(self, run_id: str) -> list[ProbeRow]:
        """Probes with work left: not finished, or with a next step scheduled."""
        rows = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? AND (state != 'finished' OR next_at IS NOT NULL)"
            " ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [probe_from_sql(r) for r in rows]

    def probes_up(self, run_id: str) -> list[ProbeRow]:
        """Probes the platform accepted and that were not (yet) withdrawn."""
        rows = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? AND post_id IS NOT NULL"
            " AND withdrawn_at IS NULL ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [probe_from_sql(r) for r in rows]

    def live_looks(self, run_id: str) -> list[ObservationRow]:
        """Status looks and withdrawals of the probes with work left, in the order made."""
        rows = self._db.execute(
            "SELECT o.probe_id, o.action, o.result, o.started_at, o.ended_at, o.detail"
            " FROM observations o JOIN probes p ON p.run_id = o.run_id AND p.probe_id = o.probe_id"
            " WHERE o.run_id = ? AND o.action IN ('status', 'withdraw')"
            " AND (p.state != 'finished' OR p.next_at IS NOT NULL) ORDER BY o.id",
            (run_id,),
        ).fetchall()
        return [ObservationRow(*r) for r in rows]

    def outcome_counts(self, run_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT outcome, COUNT(*) FROM probes WHERE run_id = ? AND outcome IS NOT NULL"
            " GROUP BY outcome",
            (run_id,),
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def action_counts(self, run_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT action, COUNT(*) FROM observations WHERE run_id = ? GROUP BY action",
            (run_id,),
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def state_counts(self, run_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT state, COUNT(*) FROM probes WHERE run_id = ? GROUP BY state", (run_id,)
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def update_probe(
        self,
        run_id: str,
        probe_id: str,
        observation: ObservationRow | None = None,
        **fields: Any,
    ) -> None:
        """Change a probe's row and record what was seen, in one transaction."""
        if "offsets" in fields and fields["offsets"] is not None:
            fields["offsets"] = json.dumps(fields["offsets"])
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            if fields:
                db.execute(
                    f"UPDATE probes SET {sets} WHERE run_id = ? AND probe_id = ?",  # noqa: S608
                    (*fields.values(), run_id, probe_id),
                )
            if observation is not None:
                db.execute(
                    "INSERT INTO observations (run_id, probe_id, action, result, started_at,"
                    " ended_at, detail) VALUES (?,?,?,?,?,?,?)",
                    (
                        run_id,
                        probe_id,
                        observation.action,
                        observation.result,
                        observation.started_at,
                        observation.ended_at,
                        observation.detail,
                    ),
                )

    def observations(self, run_id: str) -> dict[str, list[ObservationRow]]:
        rows = self._db.execute(
            "SELECT probe_id, action, result, started_at, ended_at, detail FROM observations"
            " WHERE run_id = ? ORDER BY id",
            (run_id,),
        ).fetchall()
        out: dict[str, list[ObservationRow]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(ObservationRow(*r))
        return out

    # evidence ---------------------------------------------------------------------------
    def last_exchange(self, run_id: str) -> tuple[int, str]:
        row = self._db.execute(
            "SELECT seq, hash FROM exchanges WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
            (run_id,),
        ).fetchone()
        return (row[0], row[1]) if row else (0, "")

    def append_exchange(self, run_id: str, record: ExchangeRecord) -> None:
        self._pending.append((run_id, record))
        if not self._deferring:
            with self.transaction():
                pass

    @contextmanager
    def exchanges_with_transitions(self) -> Iterator[None]:
        """While open, exchange records wait and are written in the transaction of the next
        probe transition, so a step (its exchanges and the transition they led to) costs one
        commit. A crash can lose only exchanges whose transition was lost with them; whatever
        waits is written when the block closes."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if not self._deferring and self._pending:
                with self.transaction():
                    pass

    def _write_exchanges(self, pending: list[tuple[str, ExchangeRecord]]) -> None:
        if pending:
            self._db.executemany(
                "INSERT INTO exchanges VALUES (?,?,?,?,?,?)",
                (
                    (
                        run_id,
                        r.seq,
                        r.probe_id,
                        json.dumps(r.entry, sort_keys=True, ensure_ascii=False),
                        r.prev_hash,
                        r.hash,
                    )
                    for run_id, r in pending
                ),
            )

    def exchanges(self, run_id: str) -> Iterator[ExchangeRecord]:
        cursor = self._db.execute(
            "SELECT seq, probe_id, entry_json, prev_hash, hash FROM exchanges"
            " WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        for row in cursor:
            yield ExchangeRecord(row[0], row[1], json.loads(row[2]), row[3], row[4])

    def exchange_count(self, run_id: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM exchanges WHERE run_id = ?", (run_id,)
        ).fetchone()
        return int(row[0])

    def observations_of(self, run_id: str, probe_id: str) -> list[ObservationRow]:
        rows = self._db.execute(
            "SELECT probe_id, action, result, started_at, ended_at, detail FROM observations"
            " WHERE run_id = ? AND probe_id = ? ORDER BY id",
            (run_id, probe_id),
        ).fetchall()
        return [ObservationRow(*r) for r in rows]

    def count_actions(self, run_id: str, probe_id: str, action: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM observations WHERE run_id = ? AND probe_id = ? AND action = ?",
            (run_id, probe_id, action),
        ).fetchone()
        return int(row[0])
