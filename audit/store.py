"""SQLite store: one file per workspace holding runs, probes, observations and exchanges.

Every state change of a probe is committed before the engine acts on it, so a run killed at any
moment resumes from what is on disk. WAL mode lets ``status`` read while a run writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import InputError, RuntimeFailure

__all__ = ["ExchangeRecord", "ObservationRow", "ProbeRow", "RunRow", "Store"]

SCHEMA_VERSION = 1

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
    failure TEXT
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


@dataclass(frozen=True)
class RunRow:
    run_id: str
    created_at: float
    plan_name: str
    plan: dict[str, Any]
    target_name: str
    target: dict[str, Any]
    pack: dict[str, Any]
    pack_digest: str
    seed: int
    time_scale: float
    status: str
    finished_at: float | None
    failure: str | None


@dataclass(frozen=True)
class ProbeRow:
    run_id: str
    probe_id: str
    seq: int
    criterion_id: str
    expectation: str
    probe: dict[str, Any]
    trigger: str
    deadline_s: float
    grace_s: float
    state: str
    next_at: float | None
    scheduled_at: float
    post_id: str | None
    submitted_at: float | None
    clock_start: float | None
    deadline_at: float | None
    offsets: list[float] | None
    poll_index: int
    withdrawn_at: float | None
    outcome: str | None
    note: str | None


@dataclass(frozen=True)
class ObservationRow:
    probe_id: str
    action: str
    result: str
    started_at: float
    ended_at: float
    detail: str


@dataclass(frozen=True)
class ExchangeRecord:
    seq: int
    probe_id: str | None
    entry: dict[str, Any]
    prev_hash: str
    hash: str


def _run_row(row: sqlite3.Row) -> RunRow:
    return RunRow(
        run_id=row["run_id"],
        created_at=row["created_at"],
        plan_name=row["plan_name"],
        plan=json.loads(row["plan_json"]),
        target_name=row["target_name"],
        target=json.loads(row["target_json"]),
        pack=json.loads(row["pack_json"]),
        pack_digest=row["pack_digest"],
        seed=row["seed"],
        time_scale=row["time_scale"],
        status=row["status"],
        finished_at=row["finished_at"],
        failure=row["failure"],
    )


def _probe_row(row: sqlite3.Row) -> ProbeRow:
    return ProbeRow(
        run_id=row["run_id"],
        probe_id=row["probe_id"],
        seq=row["seq"],
        criterion_id=row["criterion_id"],
        expectation=row["expectation"],
        probe=json.loads(row["probe_json"]),
        trigger=row["trigger"],
        deadline_s=row["deadline_s"],
        grace_s=row["grace_s"],
        state=row["state"],
        next_at=row["next_at"],
        scheduled_at=row["scheduled_at"],
        post_id=row["post_id"],
        submitted_at=row["submitted_at"],
        clock_start=row["clock_start"],
        deadline_at=row["deadline_at"],
        offsets=json.loads(row["offsets"]) if row["offsets"] else None,
        poll_index=row["poll_index"],
        withdrawn_at=row["withdrawn_at"],
        outcome=row["outcome"],
        note=row["note"],
    )


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
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.DatabaseError as exc:
            raise InputError(f"not a platform-audit workspace store ({exc})", source=path) from None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # runs -------------------------------------------------------------------------------
    def create_run(self, run: RunRow, probes: Sequence[ProbeRow]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run.run_id,
                    run.created_at,
                    run.plan_name,
                    json.dumps(run.plan, sort_keys=True),
                    run.target_name,
                    json.dumps(run.target, sort_keys=True),
                    json.dumps(run.pack, sort_keys=True),
                    run.pack_digest,
                    run.seed,
                    run.time_scale,
                    run.status,
                    run.finished_at,
                    run.failure,
                ),
            )
            db.executemany(
                "INSERT INTO probes (run_id, probe_id, seq, criterion_id, expectation, probe_json,"
                " trigger, deadline_s, grace_s, state, next_at, scheduled_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    (
                        p.run_id,
                        p.probe_id,
                        p.seq,
                        p.criterion_id,
                        p.expectation,
                        json.dumps(p.probe, sort_keys=True, ensure_ascii=False),
                        p.trigger,
                        p.deadline_s,
                        p.grace_s,
                        p.state,
                        p.next_at,
                        p.scheduled_at,
                    )
                    for p in probes
                ),
            )

    def run(self, run_id: str) -> RunRow:
        row = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            known = [r.run_id for r in self.runs()[-5:]]
            hint = f" (recent runs: {', '.join(known)})" if known else " (the workspace has no runs)"
            raise InputError(f"no run {run_id!r} in this workspace{hint}", source=self.path)
        return _run_row(row)

    def runs(self) -> list[RunRow]:
        rows = self._db.execute("SELECT * FROM runs ORDER BY created_at, run_id").fetchall()
        return [_run_row(r) for r in rows]

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
        return [_probe_row(r) for r in rows]

    def probe(self, run_id: str, probe_id: str) -> ProbeRow:
        row = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? AND probe_id = ?", (run_id, probe_id)
        ).fetchone()
        if row is None:
            raise KeyError(probe_id)
        return _probe_row(row)

    def due_probes(
        self, run_id: str, now: float, limit: int, exclude: Iterable[str] = ()
    ) -> list[ProbeRow]:
        skip = list(exclude)
        marks = ",".join("?" * len(skip))
        rows = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? AND next_at IS NOT NULL AND next_at <= ?"
            + (f" AND probe_id NOT IN ({marks})" if skip else "")
            + " ORDER BY next_at, seq LIMIT ?",
            (run_id, now, *skip, limit),
        ).fetchall()
        return [_probe_row(r) for r in rows]

    def next_due_time(self, run_id: str, exclude: Iterable[str] = ()) -> float | None:
        skip = list(exclude)
        marks = ",".join("?" * len(skip))
        row = self._db.execute(
            "SELECT MIN(next_at) FROM probes WHERE run_id = ? AND next_at IS NOT NULL"
            + (f" AND probe_id NOT IN ({marks})" if skip else ""),
            (run_id, *skip),
        ).fetchone()
        value = row[0] if row else None
        return float(value) if value is not None else None

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
        with self.transaction() as db:
            db.execute(
                "INSERT INTO exchanges VALUES (?,?,?,?,?,?)",
                (
                    run_id,
                    record.seq,
                    record.probe_id,
                    json.dumps(record.entry, sort_keys=True, ensure_ascii=False),
                    record.prev_hash,
                    record.hash,
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
