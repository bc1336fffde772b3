"""SQLite store: one file per workspace holding runs, probes, observations and exchanges.

Every state change of a probe is committed before the engine acts on it, so a run killed at any
moment resumes from what is on disk. WAL mode lets ``status`` read while a run writes.

Schema versions: 1 runs, probes, observations, exchanges; 2 adds ``scheduled_runs`` (which cron
slot of a recurring plan made which run); 3 adds ``runs.profile_json`` (the resolved target
profile a run reads its answers with; NULL for sandbox targets and for runs made before); 4 adds
``observations.view`` and ``observations.author_result`` (which view decided a status look, and
what the author's view said in a look made in both; older looks were all the author's); 5 adds
``run_keys`` (a number for each run id) and makes the ledger lean: ``exchanges`` refers to its
run by that number (``run_key`` instead of ``run_id``), keeps each entry's canonical text
compressed (``entry`` BLOB, :mod:`audit.ledger_codec`, instead of ``entry_json`` text) and its
hash as 32 bytes (``hash`` BLOB instead of ``sha256:`` and hex text), and no longer repeats the
previous entry's hash in each row (``prev_hash`` is gone: it is the row before's ``hash``);
it also adds ``leases``, ``target_pace`` and ``target_places``, the workers' shared state
(:mod:`audit.store_leases`).
Upgrades to versions 2 to 4 only add tables and columns; the upgrade to 5 rewrites the ledger
table in the same order and content (every entry's text as it was, every hash as it was), so a
store of version 1 to 4 opens, is upgraded, and reads as before. A store written by a newer
version is refused rather than misread. Observations take a plain rowid (stores made
before keep their AUTOINCREMENT, which SQLite reads alike): nothing is ever deleted from the
table, so the rowid already grows with each insert, and AUTOINCREMENT only added a write of
``sqlite_sequence`` to each.

A damaged store is refused, never read: opening an existing file runs SQLite's ``quick_check``
and compares its tables with this schema, :meth:`Store.check_integrity` runs the full
``integrity_check`` (before any scorecard, and in ``verify``), and every SQLite error or
undecodable row met while reading becomes one :class:`RuntimeFailure` naming the file.
"""

from __future__ import annotations

import functools
import json
import operator
import re
import sqlite3
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from audit.chain import GENESIS, text_hash
from audit.errors import InputError, RuntimeFailure
from audit.ledger_codec import encode_entry
from audit.locking import RunLock, lock_dir
from audit.store_protocol import NO_CHANGE, ProbeUpdate
from audit.store_rows import (
    GENESIS_HASH,
    OBSERVATION_COLUMNS,
    PLANNED_COLUMNS,
    DamagedRow,
    ExchangeRecord,
    ObservationRow,
    ProbeRow,
    RunRow,
    ScheduledRun,
    SlotTaken,
    exchange_from_sql,
    hash_from_sql,
    insert_sql,
    loads_column,
    observation_from_sql,
    planned_probe_to_sql,
    probe_from_sql,
    run_from_sql,
    run_to_sql,
    scheduled_from_sql,
    sent_media,
    side_by_side,
    stored_entry,
    stored_hash,
    stored_text,
)

if TYPE_CHECKING:
    from audit.packs import Pack

__all__ = [
    "ExchangeRecord",
    "ObservationRow",
    "ProbeRow",
    "ProbeUpdate",
    "RunRow",
    "ScheduledRun",
    "SlotTaken",
    "Store",
]

SCHEMA_VERSION = 5

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
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    view TEXT NOT NULL DEFAULT 'author',
    author_result TEXT
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
-- an index over the ledger: which probe media a request the platform answered delivered (with
-- the ledger records it comes from, so the two never disagree)
CREATE TABLE IF NOT EXISTS media_sent (
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (run_id, probe_id, seq)
);
-- a short number for each run id, so the ledger's rows refer to their run by it
CREATE TABLE IF NOT EXISTS run_keys (
    run_key INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE
);
-- the ledger: each entry's canonical text, compressed (audit.ledger_codec), and its hash as
-- 32 bytes (the hash of the entry before is the row before's)
CREATE TABLE IF NOT EXISTS exchanges (
    run_key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    probe_id TEXT,
    entry BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (run_key, seq)
);
-- the workers' shared state (audit.store_leases): which worker holds which probe until when,
-- when each target (and action) may next be sent a request, and its concurrent places
CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (run_id, probe_id)
);
CREATE INDEX IF NOT EXISTS leases_owner ON leases (owner);
CREATE TABLE IF NOT EXISTS target_pace (key TEXT PRIMARY KEY, next_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS target_places (
    key TEXT NOT NULL,
    place INTEGER NOT NULL,
    owner TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (key, place)
);
"""

# the ledger table of schema versions 1 to 4: the run id, the entry's JSON text and both hashes
# as text in every row
_EXCHANGES_V4 = """
CREATE TABLE exchanges (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    probe_id TEXT,
    entry_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""

_PROBE_ID = operator.attrgetter("probe_id")
_ADVICE = (
    "restore the file from a backup; a run exported earlier keeps its scorecard in its evidence "
    "bundle (`platform-audit report --from-evidence BUNDLE`)"
)


_INSERT_OBSERVATION = (
    "INSERT INTO observations (run_id, probe_id, action, result, started_at,"
    " ended_at, detail, view, author_result) VALUES (?,?,?,?,?,?,?,?,?)"
)


def _observation_values(run_id: str, probe_id: str, observation: ObservationRow) -> tuple[Any, ...]:
    return (
        run_id,
        probe_id,
        observation.action,
        observation.result,
        observation.started_at,
        observation.ended_at,
        stored_text(observation.detail),
        observation.view,
        observation.author_result,
    )


def _compact(value: Any) -> str:
    """A ledger entry as stored: canonical JSON (keys sorted, no spaces)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def damaged_store(path: Path, what: str) -> RuntimeFailure:
    """The one-line failure for a store that cannot be trusted: the file, what is wrong, what
    to do."""
    what = " ".join(what.split())[:200]
    return RuntimeFailure(
        f"the workspace store {path} is damaged ({what}); nothing was scored from it: {_ADVICE}"
    )


def _columns(db: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute(f"PRAGMA table_info({table})")]


def _our_tables(schema: str = _SCHEMA) -> dict[str, list[tuple[Any, ...]]]:
    """Each table of this schema and its columns as ``PRAGMA table_info`` gives them."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(schema)
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: _columns(db, name) for name in names if not name.startswith("sqlite_")}
    finally:
        db.close()


_TABLES = _our_tables()
_EXCHANGES_V4_COLUMNS = _our_tables(_EXCHANGES_V4)["exchanges"]
# the probes' columns, with the content left out (the engine reads it only for the steps that
# send it)
_COMPACT_PROBE = ", ".join(
    "'{}' AS probe_json" if column[1] == "probe_json" else column[1] for column in _TABLES["probes"]
)
_ADDED_IN = {  # tables a store of an older version may lack
    "scheduled_runs": 2,
    "run_keys": 5,
    "leases": 5,
    "target_pace": 5,
    "target_places": 5,
}
# columns added to a table after version 1, with the version that added them: a store of an
# older version has its tables without them (an upgrade adds them at the end)
_COLUMNS_ADDED_IN = {
    ("runs", "profile_json"): 3,
    ("observations", "view"): 4,
    ("observations", "author_result"): 4,
}


def _columns_of_version(table: str, version: int) -> list[tuple[Any, ...]]:
    """The table's columns as a store of ``version`` has them."""
    if table == "exchanges" and version <= 4:
        return _EXCHANGES_V4_COLUMNS
    return [c for c in _TABLES[table] if _COLUMNS_ADDED_IN.get((table, c[1]), 1) <= version]


def _stays_empty(path: Path, wait: float = 0.5) -> bool:
    """Whether the file is 0 bytes and stays so for ``wait`` seconds: a process creating a
    store writes its first page within milliseconds of creating the file."""
    deadline = time.monotonic() + wait
    while path.is_file() and path.stat().st_size == 0:
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)
    return False


_NOT_UTF8 = re.compile(r"Could not decode to UTF-8 column '([^']*)'")

P = ParamSpec("P")
R = TypeVar("R")


def _guarded(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    """The method, with SQLite errors and undecodable rows turned into one RuntimeFailure."""

    @functools.wraps(method)
    def guarded(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.ProgrammingError:
            raise  # a misuse of the connection (closed...): a bug, not a damaged file
        except sqlite3.DatabaseError as exc:
            raise self.unreadable(exc) from None
        except DamagedRow as exc:
            raise damaged_store(self.path, f"a stored row: {exc}") from None

    return guarded


class Store:
    """The workspace database. Each process opens its own; one thread writes, and a progress
    thread may read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            existed = path.exists()
            if existed and _stays_empty(path):
                raise RuntimeFailure(
                    f"the workspace store {path} is empty (0 bytes), not a platform-audit store, "
                    f"so it holds no runs to read: {_ADVICE}; or remove the empty file to start "
                    "a new workspace"
                )
            # The progress line of a run without a terminal reads the store from its own
            # thread (only reads; the run's thread does every write).
            self._db = sqlite3.connect(
                path, isolation_level=None, timeout=30.0, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise RuntimeFailure(f"cannot open the workspace store {path}: {exc}") from None
        self._db.row_factory = sqlite3.Row
        self._pending: list[tuple[str, ExchangeRecord]] = []
        self._deferring = 0
        self._checked: tuple[int, int] | None = None
        self._run_keys: dict[str, int] = {}
        try:
            if existed:
                self._quick_check()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise self.unreadable(exc) from None
        except BaseException:
            self._db.close()
            raise

    def unreadable(self, exc: sqlite3.DatabaseError) -> RuntimeFailure:
        """The failure to raise for a SQLite error met using this store."""
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return RuntimeFailure(
                f"the workspace store {self.path} is busy ({text}): another process holds it; "
                "try again when it is done"
            )
        if "not a database" in text:
            return RuntimeFailure(
                f"the workspace store {self.path} is not a SQLite database ({text}), so not a "
                f"platform-audit store: {_ADVICE}"
            )
        undecodable = _NOT_UTF8.search(text)
        if undecodable:  # SQLite quotes the text, which may be a probe's content: name the column
            text = f"column {undecodable[1]} holds text that is not UTF-8"
        return damaged_store(self.path, text)

    def _quick_check(self) -> None:
        """SQLite's cheap structural check of the whole file (pages, records, free list), but
        not that each index agrees with its table: that is :meth:`check_integrity`."""
        problems = [r[0] for r in self._db.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise damaged_store(self.path, f"quick_check: {'; '.join(problems)}")

    @_guarded
    def check_integrity(self) -> None:
        """SQLite's full ``integrity_check`` (every page and record, and that every index holds
        exactly its table's rows): RuntimeFailure naming the first problem unless ok. Not run
        again while neither this connection nor another one has written since it passed."""
        mark = (self._db.execute("PRAGMA data_version").fetchone()[0], self._db.total_changes)
        if self._checked == mark:
            return
        problems = [r[0] for r in self._db.execute("PRAGMA integrity_check(3)")]
        if problems != ["ok"]:
            raise damaged_store(self.path, f"integrity_check: {'; '.join(problems)}")
        self._checked = mark

    def _check_tables(self, version: int) -> None:
        """RuntimeFailure unless the store holds exactly this schema's tables (those of its
        version), each with this schema's columns."""
        found = self._table_names()
        expected = {t for t in _TABLES if _ADDED_IN.get(t, 1) <= version}
        missing, unknown = sorted(expected - found), sorted(found - set(_TABLES))
        if missing or unknown:
            odd = ", ".join([f"no table {t}" for t in missing] + [f"table {t}" for t in unknown])
            raise damaged_store(self.path, f"not this tool's schema version {version}: {odd}")
        for table in sorted(found):
            if _columns(self._db, table) != _columns_of_version(table, version):
                raise damaged_store(self.path, f"table {table} does not have this tool's columns")

    def _table_names(self) -> set[str]:
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {str(r[0]) for r in rows if not str(r[0]).startswith("sqlite_")}

    def _migrate(self) -> None:
        found = self._schema_version()
        if found is None and self._table_names():
            raise RuntimeFailure(
                f"{self.path} is a SQLite database but not a platform-audit workspace store (it "
                f"has tables {', '.join(sorted(self._table_names()))} and no schema version); "
                "point --workspace at the folder of a workspace"
            )
        if found is not None and found <= SCHEMA_VERSION:
            self._check_tables(found)
        if found is not None and found > SCHEMA_VERSION:
            raise InputError(
                f"the workspace store has schema version {found}, newer than this "
                f"platform-audit understands ({SCHEMA_VERSION}); upgrade platform-audit",
                source=self.path,
            )
        if found == SCHEMA_VERSION:
            return
        with self.transaction() as db:
            if found is not None and found <= 4:  # the ledger table is made anew below
                db.execute("ALTER TABLE exchanges RENAME TO exchanges_v4")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            if "profile_json" not in columns:  # a version 1 or 2 store
                db.execute("ALTER TABLE runs ADD COLUMN profile_json TEXT")
            looks = {row[1] for row in db.execute("PRAGMA table_info(observations)")}
            if "view" not in looks:  # a store of version 3 or before
                db.execute(
                    "ALTER TABLE observations ADD COLUMN view TEXT NOT NULL DEFAULT 'author'"
                )
                db.execute("ALTER TABLE observations ADD COLUMN author_result TEXT")
            if found is not None and found <= 4:
                self._upgrade_ledger(db)
            db.execute(
                "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key)"
                " DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def _upgrade_ledger(self, db: sqlite3.Connection) -> None:
        """Version 5's ledger from a store of version 4 or before: each run's key, and each
        entry's text compressed and its hash as 32 bytes, in the same order. The previous
        entry's hash each row held goes: it is the row before's (an entry whose stored
        previous hash differed was never believed: its own hash covers the true one)."""
        db.execute(
            "INSERT OR IGNORE INTO run_keys (run_id) SELECT run_id FROM runs"
            " UNION SELECT DISTINCT run_id FROM exchanges_v4 ORDER BY 1"
        )
        keys = {str(r[1]): int(r[0]) for r in db.execute("SELECT run_key, run_id FROM run_keys")}
        rows = db.execute(
            "SELECT run_id, seq, probe_id, entry_json, hash FROM exchanges_v4 ORDER BY run_id, seq"
        )
        while batch := rows.fetchmany(1000):
            try:
                upgraded = [
                    (keys[run_id], seq, probe_id, stored_entry(text), stored_hash(digest))
                    for run_id, seq, probe_id, text, digest in batch
                ]
            except DamagedRow as exc:
                raise damaged_store(self.path, f"a ledger record: {exc}") from None
            db.executemany("INSERT INTO exchanges VALUES (?,?,?,?,?)", upgraded)
        db.execute("DROP TABLE exchanges_v4")

    def _schema_version(self) -> int | None:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if has_meta is None:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise damaged_store(self.path, "its meta table holds no schema version")
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise damaged_store(self.path, f"schema version {row[0]!r:.20} is no number") from None

    @property
    def workspace(self) -> Path:
        """The folder of the store file: it keeps the key, reports, statements and locks."""
        return self.path.parent

    @property
    def location(self) -> str:
        return str(self.path)

    def run_lock(self, run_id: str, *, shared: bool = False) -> RunLock:
        """The run's lock: a ``flock`` on a file in the workspace's ``locks`` folder."""
        return RunLock(lock_dir(self.path), run_id, shared=shared)

    @contextmanager
    def snapshot_read(self) -> Iterator[object]:
        """One read transaction: its reads see one state of the file (WAL), while a run
        writing to the store goes on (a long ``verify`` or report holds no write lock). A
        block inside an open transaction reads that transaction's state."""
        if self._db.in_transaction:
            yield self._db
            return
        try:
            self._db.execute("BEGIN DEFERRED")
        except sqlite3.DatabaseError as exc:
            raise self.unreadable(exc) from None
        try:
            yield self._db
        finally:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")  # it wrote nothing

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; exchange records waiting to be written go in it too."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise self.unreadable(exc) from None
        pending, self._pending = self._pending, []
        try:
            self._write_exchanges(pending)
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._pending = pending + self._pending
            self._run_keys.clear()  # a key made in this transaction is gone with it
            try:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            except sqlite3.DatabaseError:
                pass  # the error that made us roll back is the one to report
            if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
                exc, sqlite3.ProgrammingError
            ):
                raise self.unreadable(exc) from None
            raise

    # runs -------------------------------------------------------------------------------
    @_guarded
    def create_run(
        self,
        run: RunRow,
        probes: Iterable[ProbeRow],
        slot: float | None = None,
        schedule: Callable[[list[str]], Iterable[tuple[float, str]]] | None = None,
    ) -> int:
        """Store a run and its planned probes (read one at a time, never held all at once);
        with ``slot``, also claim that cron slot of the plan for the run's pack and target,
        atomically (:class:`SlotTaken` if already claimed). ``schedule``, given the stored
        probe ids in order, yields each one's submission time (next step and scheduled time),
        set in the same transaction. Returns the number of probes."""
        ids: list[str] = []

        def planned() -> Iterator[dict[str, Any]]:
            for probe in probes:
                ids.append(probe.probe_id)
                yield planned_probe_to_sql(probe)

        with self.transaction() as db:
            if slot is not None:
                self._claim_slot(db, run, slot)
            values = run_to_sql(run)
            db.execute(insert_sql("runs", list(values)), values)
            db.executemany(insert_sql("probes", PLANNED_COLUMNS), planned())
            if schedule is not None:
                db.executemany(
                    "UPDATE probes SET next_at = ?1, scheduled_at = ?1"
                    " WHERE run_id = ?2 AND probe_id = ?3",
                    ((at, run.run_id, probe_id) for at, probe_id in schedule(ids)),
                )
        return len(ids)

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

    @_guarded
    def scheduled_runs(self, plan_name: str) -> list[ScheduledRun]:
        rows = self._db.execute(
            "SELECT * FROM scheduled_runs WHERE plan_name = ? ORDER BY slot, pack_id, target_name",
            (plan_name,),
        ).fetchall()
        return [scheduled_from_sql(r) for r in rows]

    @_guarded
    def run(self, run_id: str) -> RunRow:
        row = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            self.check_integrity()  # a damaged index loses rows: say so, not "no run"
            known = [r.run_id for r in self.runs()[-5:]]
            hint = (
                f" (recent runs: {', '.join(known)})" if known else " (the workspace has no runs)"
            )
            raise InputError(f"no run {run_id!r} in this workspace{hint}", source=self.path)
        return run_from_sql(row)

    def pack_of(self, run: RunRow) -> Pack:
        """The run's stored pack; one that is no longer a valid pack was changed on disk, so
        the store is damaged (one clear failure naming it, never an unexpected one)."""
        from pydantic import ValidationError

        from audit.packs import Pack

        try:
            return Pack.model_validate(run.pack)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            what = f"the run's stored pack is not a valid pack ({where}: {first['msg']})"
            raise damaged_store(self.path, what) from None

    @_guarded
    def runs(self) -> list[RunRow]:
        rows = self._db.execute("SELECT * FROM runs ORDER BY created_at, run_id").fetchall()
        return [run_from_sql(r) for r in rows]

    @_guarded
    def finish_run(self, run_id: str, status: str, at: float, failure: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, failure = ? WHERE run_id = ?",
                (status, at, failure, run_id),
            )

    # probes -----------------------------------------------------------------------------
    @_guarded
    def probes(self, run_id: str) -> list[ProbeRow]:
        rows = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? ORDER BY seq", (run_id,)
        ).fetchall()
        return [probe_from_sql(r) for r in rows]

    @_guarded
    def probe(self, run_id: str, probe_id: str) -> ProbeRow:
        row = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? AND probe_id = ?", (run_id, probe_id)
        ).fetchone()
        if row is None:
            raise KeyError(probe_id)
        return probe_from_sql(row)

    @_guarded
    def next_due_time(self, run_id: str) -> float | None:
        row = self._db.execute(
            "SELECT MIN(next_at) FROM probes WHERE run_id = ? AND next_at IS NOT NULL", (run_id,)
        ).fetchone()
        value = row[0] if row else None
        if value is not None and type(value) not in (int, float):
            raise DamagedRow(f"a probe's next_at holds {type(value).__name__}")
        return float(value) if value is not None else None

    @_guarded
    def shortest_deadline(self, run_id: str) -> float | None:
        """The shortest deadline (as run) among the run's probes, in one query."""
        row = self._db.execute(
            "SELECT MIN(deadline_s) FROM probes WHERE run_id = ?", (run_id,)
        ).fetchone()
        value = row[0] if row else None
        if value is not None and type(value) not in (int, float):
            raise DamagedRow(f"a probe's deadline_s holds {type(value).__name__}")
        return float(value) if value is not None else None

    @_guarded
    def lay_schedule(self, run_id: str, start: float) -> float:
        """Lay a run's submission schedule from ``start`` when the run starts: if no probe has
        been sent yet and the schedule's first slot has passed (a run of a multi-pack plan
        that waited for the one before it, a detached run resumed later), every planned
        probe moves by the same amount, so the window keeps its spread instead of going out
        in one burst. Returns the shift in seconds (0 when nothing moved)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT MIN(scheduled_at), COUNT(submitted_at) FROM probes WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            first, sent = row[0], int(row[1])
            if first is None or sent or float(first) >= start:
                return 0.0
            shift = start - float(first)
            db.execute(
                "UPDATE probes SET scheduled_at = scheduled_at + ?, next_at = next_at + ?"
                " WHERE run_id = ? AND state = 'planned'",
                (shift, shift, run_id),
            )
        return shift

    @_guarded
    def live_probes(self, run_id: str) -> list[ProbeRow]:
        """Probes with work left: not finished, or with a next step scheduled."""
        rows = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? AND (state != 'finished' OR next_at IS NOT NULL)"
            " ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [probe_from_sql(r) for r in rows]

    @_guarded
    def due_probes(
        self, run_id: str, after: tuple[float, int] | None, limit: int
    ) -> list[ProbeRow]:
        """Up to ``limit`` probes with a next step, in the order it falls due (time, then seq),
        after the position ``after`` (a next step time and seq; None: from the first), without
        their content (``probe`` is ``{}``: :meth:`probe_content` reads it)."""
        where, args = "", list[Any]([run_id])
        if after is not None:
            where = " AND (next_at > ? OR (next_at = ? AND seq > ?))"
            args += [after[0], after[0], after[1]]
        rows = self._db.execute(
            f"SELECT {_COMPACT_PROBE} FROM probes WHERE run_id = ?"  # noqa: S608
            f" AND next_at IS NOT NULL{where} ORDER BY next_at, seq LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [probe_from_sql(r) for r in rows]

    @_guarded
    def unscheduled_probes(self, run_id: str) -> list[ProbeRow]:
        """Probes with work left that :meth:`due_probes` may not reach in time, without their
        content: those interrupted mid-submission (reconciled at once) and any not finished
        with no next step."""
        rows = self._db.execute(
            f"SELECT {_COMPACT_PROBE} FROM probes WHERE run_id = ?"  # noqa: S608
            " AND (state = 'submitting' OR (state != 'finished' AND next_at IS NULL))"
            " ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [probe_from_sql(r) for r in rows]

    @_guarded
    def probe_content(self, run_id: str, probe_id: str) -> dict[str, Any]:
        """One probe's content (what :attr:`ProbeRow.probe` holds)."""
        row = self._db.execute(
            "SELECT probe_json FROM probes WHERE run_id = ? AND probe_id = ?", (run_id, probe_id)
        ).fetchone()
        if row is None:
            raise KeyError(probe_id)
        content = loads_column(row[0], "probe_json")
        if type(content) is not dict:
            raise DamagedRow("column probe_json holds no JSON object")
        return content

    @_guarded
    def looks_of(self, run_id: str, probe_ids: Sequence[str]) -> list[ObservationRow]:
        """Status looks and withdrawals of these probes, in the order made."""
        out: list[ObservationRow] = []
        for start in range(0, len(probe_ids), 500):  # SQLite's bound on parameters
            chunk = probe_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT {OBSERVATION_COLUMNS} FROM observations"  # noqa: S608
                " WHERE run_id = ? AND action IN ('status', 'withdraw')"
                f" AND probe_id IN ({marks}) ORDER BY id",
                (run_id, *chunk),
            ).fetchall()
            out += [observation_from_sql(r) for r in rows]
        return out  # each probe's rows in the order made (a probe is in one chunk)

    @_guarded
    def outcomes_pending(self, run_id: str) -> bool:
        """Whether some probe of the run has no outcome yet."""
        row = self._db.execute(
            "SELECT 1 FROM probes WHERE run_id = ? AND outcome IS NULL LIMIT 1", (run_id,)
        ).fetchone()
        return row is not None

    @_guarded
    def probes_up(self, run_id: str) -> list[ProbeRow]:
        """Probes the platform accepted and that were not (yet) withdrawn."""
        rows = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? AND post_id IS NOT NULL"
            " AND withdrawn_at IS NULL ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [probe_from_sql(r) for r in rows]

    @_guarded
    def live_looks(self, run_id: str) -> list[ObservationRow]:
        """Status looks and withdrawals of the probes with work left, in the order made."""
        rows = self._db.execute(
            "SELECT o.probe_id, o.action, o.result, o.started_at, o.ended_at, o.detail,"
            " o.view, o.author_result FROM observations o"
            " JOIN probes p ON p.run_id = o.run_id AND p.probe_id = o.probe_id"
            " WHERE o.run_id = ? AND o.action IN ('status', 'withdraw')"
            " AND (p.state != 'finished' OR p.next_at IS NOT NULL) ORDER BY o.id",
            (run_id,),
        ).fetchall()
        return [observation_from_sql(r) for r in rows]

    @_guarded
    def outcome_counts(self, run_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT outcome, COUNT(*) FROM probes WHERE run_id = ? AND outcome IS NOT NULL"
            " GROUP BY outcome",
            (run_id,),
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    @_guarded
    def action_counts(self, run_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT action, COUNT(*) FROM observations WHERE run_id = ? GROUP BY action",
            (run_id,),
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    @_guarded
    def state_counts(self, run_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT state, COUNT(*) FROM probes WHERE run_id = ? GROUP BY state", (run_id,)
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    @_guarded
    def update_probe(
        self,
        /,
        run_id: str,
        probe_id: str,
        observation: ObservationRow | None = None,
        change: ProbeUpdate = NO_CHANGE,
    ) -> None:
        """Change a probe's row and record what was seen, in one transaction."""
        with self.transaction() as db:
            self._write_update(db, run_id, probe_id, observation, change)

    @staticmethod
    def _write_update(
        db: sqlite3.Connection,
        run_id: str,
        probe_id: str,
        observation: ObservationRow | None,
        change: ProbeUpdate,
    ) -> None:
        Store._write_change(db, run_id, probe_id, change)
        if observation is not None:
            db.execute(_INSERT_OBSERVATION, _observation_values(run_id, probe_id, observation))

    @staticmethod
    def _write_change(
        db: sqlite3.Connection, run_id: str, probe_id: str, change: ProbeUpdate
    ) -> None:
        fields = change.changes()
        if fields.get("offsets") is not None:
            fields["offsets"] = json.dumps(fields["offsets"])
        if isinstance(fields.get("note"), str):
            fields["note"] = stored_text(fields["note"])
        if fields:
            sets = ", ".join(f"{name} = ?" for name in fields)
            db.execute(
                f"UPDATE probes SET {sets} WHERE run_id = ? AND probe_id = ?",  # noqa: S608
                (*fields.values(), run_id, probe_id),
            )

    @_guarded
    def update_probes(
        self,
        run_id: str,
        changes: Sequence[tuple[str, ObservationRow | None, ProbeUpdate]],
    ) -> None:
        """Several probes' changes (probe id, what was seen, the update of its row), in
        order, in one transaction: as :meth:`update_probe` each, committed together."""
        with self.transaction() as db:
            looks = []
            for probe_id, observation, change in changes:
                self._write_change(db, run_id, probe_id, change)
                if observation is not None:
                    looks.append(_observation_values(run_id, probe_id, observation))
            # the observations in the order given (their ids keep it), in one statement
            db.executemany(_INSERT_OBSERVATION, looks)

    @_guarded
    def observations(self, run_id: str) -> dict[str, list[ObservationRow]]:
        rows = self._db.execute(
            f"SELECT {OBSERVATION_COLUMNS} FROM observations"  # noqa: S608
            " WHERE run_id = ? ORDER BY id",
            (run_id,),
        ).fetchall()
        out: dict[str, list[ObservationRow]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(observation_from_sql(r))
        return out

    # evidence ---------------------------------------------------------------------------
    @_guarded
    def last_exchange(self, run_id: str) -> tuple[int, str]:
        row = self._db.execute(
            "SELECT e.seq, e.hash FROM exchanges e JOIN run_keys k ON k.run_key = e.run_key"
            " WHERE k.run_id = ? ORDER BY e.seq DESC LIMIT 1",
            (run_id,),
        ).fetchone()
        if row is None:
            return (0, "")
        if type(row[0]) is not int:
            raise DamagedRow("the last ledger record's seq has the wrong type")
        return (row[0], hash_from_sql(row[1]))

    @_guarded
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

    def _run_key(self, run_id: str) -> int:
        """The run's key in the ledger table, made on its first entry (inside the write
        transaction; forgotten if that transaction rolls back)."""
        key = self._run_keys.get(run_id)
        if key is None:
            self._db.execute("INSERT OR IGNORE INTO run_keys (run_id) VALUES (?)", (run_id,))
            row = self._db.execute(
                "SELECT run_key FROM run_keys WHERE run_id = ?", (run_id,)
            ).fetchone()
            key = self._run_keys[run_id] = int(row[0])
        return key

    def _linked(
        self, pending: list[tuple[str, ExchangeRecord]]
    ) -> list[tuple[str, ExchangeRecord]]:
        """The waiting ledger records, each linked to the run's last stored record, read in
        the writing transaction: where another process (a worker) appended since this one's
        ledger numbered a record, it gets its number and hashes again. SQLite lets one writer
        in at a time, so the appends of all a run's writers form one chain."""
        heads: dict[str, tuple[int, str]] = {}
        out: list[tuple[str, ExchangeRecord]] = []
        for run_id, record in pending:
            if run_id not in heads:
                row = self._db.execute(
                    "SELECT seq, hash FROM exchanges WHERE run_key = ? ORDER BY seq DESC LIMIT 1",
                    (self._run_key(run_id),),
                ).fetchone()
                heads[run_id] = (
                    (int(row[0]), hash_from_sql(row[1])) if row is not None else (0, GENESIS)
                )
            seq, head = heads[run_id]
            if (record.seq, record.prev_hash) != (seq + 1, head):  # another writer appended
                text = record.text if record.text is not None else _compact(record.entry)
                digest = text_hash(head, seq + 1, text, record.probe_id)
                record = ExchangeRecord(seq + 1, record.probe_id, record.entry, head, digest, text)
            heads[run_id] = (record.seq, record.hash)
            out.append((run_id, record))
        return out

    def _write_exchanges(self, pending: list[tuple[str, ExchangeRecord]]) -> None:
        if pending:
            pending = self._linked(pending)
            self._db.executemany(
                "INSERT INTO exchanges VALUES (?,?,?,?,?)",
                [
                    (
                        self._run_key(run_id),
                        r.seq,
                        r.probe_id,
                        encode_entry(r.text if r.text is not None else _compact(r.entry)),
                        stored_hash(r.hash),
                    )
                    for run_id, r in pending
                ],
            )
            media = [
                (run_id, r.probe_id, r.seq, digest)
                for run_id, r in pending
                if r.probe_id is not None and (digest := sent_media(r.entry)) is not None
            ]
            if media:
                self._db.executemany("INSERT INTO media_sent VALUES (?,?,?,?)", media)

    def exchanges(self, run_id: str) -> Iterator[ExchangeRecord]:
        """The run's ledger in order, each record with the hash of the one before."""
        try:
            cursor = self._db.execute(
                "SELECT e.seq, e.probe_id, e.entry, e.hash FROM exchanges e"
                " JOIN run_keys k ON k.run_key = e.run_key WHERE k.run_id = ? ORDER BY e.seq",
                (run_id,),
            )
        except sqlite3.DatabaseError as exc:
            raise self.unreadable(exc) from None
        prev = GENESIS_HASH
        with self._reading("a ledger record"):
            for row in cursor:
                record = exchange_from_sql(tuple(row), prev)
                prev = record.hash
                yield record

    def probe_exchanges(self, run_id: str) -> Generator[ExchangeRecord, None, None]:
        """As :meth:`audit.store_protocol.RunStore.probe_exchanges` (SQLite sorts the run's
        probe records on disk, its temporary store, not in memory)."""
        with self._reading("a ledger record"):
            cursor = self._db.execute(
                "SELECT e.seq, e.probe_id, e.entry, e.hash FROM exchanges e"
                " JOIN run_keys k ON k.run_key = e.run_key"
                " WHERE k.run_id = ? AND e.probe_id IS NOT NULL ORDER BY e.probe_id, e.seq",
                (run_id,),
            )
            for row in cursor:
                yield exchange_from_sql(tuple(row), "")

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """A generator's reads, their errors turned into one RuntimeFailure as
        :func:`_guarded` does for a method's (``what`` names an undecodable row)."""
        try:
            yield
        except sqlite3.ProgrammingError:
            raise  # a misuse of the connection (closed...): a bug, not a damaged file
        except sqlite3.DatabaseError as exc:
            raise self.unreadable(exc) from None
        except DamagedRow as exc:
            raise damaged_store(self.path, f"{what}: {exc}") from None

    @_guarded
    def media_sent(self, run_id: str) -> dict[str, frozenset[str]]:
        """For each probe of the run, the digests of the media the platform took (see
        :func:`audit.store_rows.sent_media`)."""
        found: dict[str, set[str]] = {}
        for probe_id, digest in self._db.execute(
            "SELECT probe_id, sha256 FROM media_sent WHERE run_id = ?", (run_id,)
        ):
            found.setdefault(str(probe_id), set()).add(str(digest))
        return {probe_id: frozenset(digests) for probe_id, digests in found.items()}

    @_guarded
    def exchange_count(self, run_id: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM exchanges e JOIN run_keys k ON k.run_key = e.run_key"
            " WHERE k.run_id = ?",
            (run_id,),
        ).fetchone()
        return int(row[0])

    @_guarded
    def observations_of(self, run_id: str, probe_id: str) -> list[ObservationRow]:
        rows = self._db.execute(
            f"SELECT {OBSERVATION_COLUMNS} FROM observations"  # noqa: S608
            " WHERE run_id = ? AND probe_id = ? ORDER BY id",
            (run_id, probe_id),
        ).fetchall()
        return [observation_from_sql(r) for r in rows]

    # the scorecard's single pass ------------------------------------------------------------
    def probes_with_observations(
        self, run_id: str
    ) -> Iterator[tuple[ProbeRow, list[ObservationRow]]]:
        """Each probe of the run with its observations in the order they were made, probe by
        probe in probe-id order: one pass over two cursors read side by side (probes by their
        key, observations by their probe index), so only one probe's observations are held at a
        time however large the run. Observations of a probe id the run does not hold (the
        schema never writes one) are not yielded."""
        with self._reading("a stored row"):
            probes = self._db.execute(
                "SELECT * FROM probes WHERE run_id = ? ORDER BY probe_id", (run_id,)
            )
            looks = self._db.cursor()
            looks.row_factory = None  # plain tuples: a run has millions, sqlite3.Row costs 20 %
            looks.execute(
                f"SELECT {OBSERVATION_COLUMNS} FROM observations"  # noqa: S608
                " WHERE run_id = ? ORDER BY probe_id, id",
                (run_id,),
            )
            yield from side_by_side(
                (probe_from_sql(raw) for raw in probes),
                (observation_from_sql(r) for r in looks),
                _PROBE_ID,
                _PROBE_ID,
            )
