"""PostgreSQL store: the runs of a workspace in a PostgreSQL database, through psycopg 3.

The same rows as the SQLite store (:mod:`audit.store`), in tables of the same names and
columns: ``REAL`` is ``double precision`` (both are IEEE doubles, and psycopg reads them back
bit for bit), JSON columns are ``text`` holding the very bytes the SQLite store keeps, so a run
reads back the same from either store and exports the same bundle. The workspace folder keeps
the key, the reports and the stored statements; run locks are session advisory locks
(:class:`AdvisoryRunLock`), released by the server when the session holding one ends, however
the process ends.

Connections come from a pool (psycopg_pool), so the engine's writes and a progress thread's
reads never share one. A block of :meth:`PostgresStore.transaction` or
:meth:`PostgresStore.snapshot_read` binds one connection to the thread, and every call made
in it uses that connection (so a snapshot's reads see one state of the database).

Schema versions (this store's own, listed in :data:`MIGRATIONS`): 1 the tables of the SQLite
store's version 4, and ``run_locks`` (who holds a run's advisory lock). A database of a newer
version is refused; an older one is upgraded in one transaction, under an advisory lock so two
processes opening it at once never both upgrade it.

Many writers, one chain: ledger records are written in the transaction of the next probe
transition (as in SQLite), after a ``SELECT ... FOR UPDATE`` of the run's row. That lock
serialises the appends of every writer of the run; under it the transaction reads the run's
last record and links each new record to it (numbering and hashing it again when another
writer appended since this writer last looked), so the chain stays one line whatever the
number of writers. The argument is in docs/evidence.md.

Integrity: PostgreSQL enforces the column types and keys and recovers committed transactions
from its write-ahead log after a crash; page checksums (``initdb --data-checksums``) and
``amcheck`` are the administrator's tools for damaged storage. :meth:`PostgresStore.check_integrity`
checks that the database still has this store's schema; rows are still decoded and checked as
in SQLite, so a row changed by something else is refused, never scored.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

from audit.chain import GENESIS, canonical_json, text_hash
from audit.errors import InputError, RuntimeFailure
from audit.locking_pg import AdvisoryRunLock
from audit.store_pg_schema import MIGRATIONS, SCHEMA_VERSION, TABLES
from audit.store_protocol import NO_CHANGE, ProbeUpdate
from audit.store_rows import (
    OBSERVATION_COLUMNS,
    PLANNED_COLUMNS,
    DamagedRow,
    ExchangeRecord,
    ObservationRow,
    ProbeRow,
    RunRow,
    ScheduledRun,
    SlotTaken,
    loads_column,
    observation_from_sql,
    planned_probe_to_sql,
    probe_from_sql,
    run_from_sql,
    run_to_sql,
    scheduled_from_sql,
    sent_media,
    stored_text,
    text_exchange_from_sql,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

    from audit.packs import Pack

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "AdvisoryRunLock", "PostgresStore", "redacted_url"]

_MIGRATION_LOCK = 0x706C61_7564  # the advisory lock key taken while the schema is upgraded

_PROBE_COLUMNS = [
    "probe_json" if name == "probe" else name for name in ProbeRow.__dataclass_fields__
]
# the probes' columns, with the content left out (the engine reads it only to send it)
_COMPACT_PROBE = ", ".join(
    "'{}'::text AS probe_json" if c == "probe_json" else c for c in _PROBE_COLUMNS
)
_PAGE = 5000  # ledger records read per query

_ADVICE = (
    "restore the database from a backup; a run exported earlier keeps its scorecard in its "
    "evidence bundle (`platform-audit report --from-evidence BUNDLE`)"
)

P = ParamSpec("P")
R = TypeVar("R")


def redacted_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    try:
        if parts.password is None:
            return url
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is no number: show none of the address
        return f"{parts.scheme}://***"
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _guarded(
    method: Callable[Concatenate[PostgresStore, P], R],
) -> Callable[Concatenate[PostgresStore, P], R]:
    """The method, with database errors and undecodable rows turned into one RuntimeFailure."""

    @functools.wraps(method)
    def guarded(self: PostgresStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            return method(self, *args, **kwargs)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self.failure(exc) from None
        except DamagedRow as exc:
            raise self.damaged(f"a stored row: {exc}") from None

    return guarded


class PostgresStore:
    """Runs, probes, observations and ledgers in a PostgreSQL database; each process opens
    its own, with a pool of connections shared by its threads."""

    def __init__(
        self, url: str, workspace: Path, *, pool_size: int = 4, connect_timeout: float = 10.0
    ) -> None:
        self._url = url
        self._workspace = workspace
        self._location = redacted_url(url)
        self._local = threading.local()
        self._pending: list[tuple[str, ExchangeRecord]] = []
        self._deferring = 0
        self._connect_timeout = connect_timeout
        self._pool = self._open_pool(pool_size)
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    # connections ------------------------------------------------------------------------
    def _open_pool(self, size: int) -> ConnectionPool[psycopg.Connection[Any]]:
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout

        timeout = max(1, round(self._connect_timeout))
        try:  # one direct connection first: its error says why (refused, no such database...)
            psycopg.connect(self._url, connect_timeout=timeout).close()
        except psycopg.Error as exc:
            raise RuntimeFailure(
                f"cannot reach the PostgreSQL store {self._location}: {_first_line(exc)}"
            ) from None
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._url,
            min_size=1,
            max_size=size,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": timeout},
            timeout=self._connect_timeout * 3,
            name="platform-audit",
        )
        try:
            pool.open(wait=True, timeout=self._connect_timeout)
        except PoolTimeout:
            pool.close()
            raise RuntimeFailure(
                f"cannot reach the PostgreSQL store {self._location}: no connection within "
                f"{self._connect_timeout:g} s"
            ) from None
        return pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection bound to this thread by an open block, else one from the pool."""
        bound: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if bound is not None:
            yield bound
            return
        with self._pool.connection() as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    def failure(self, exc: BaseException) -> RuntimeFailure:
        """The failure to raise for a database error met using this store."""
        return RuntimeFailure(f"the PostgreSQL store {self._location} failed: {_first_line(exc)}")

    def damaged(self, what: str) -> RuntimeFailure:
        what = " ".join(what.split())[:200]
        return RuntimeFailure(
            f"the PostgreSQL store {self._location} is damaged ({what}); nothing was scored "
            f"from it: {_ADVICE}"
        )

    @property
    def workspace(self) -> Path:
        return self._workspace

    @property
    def location(self) -> str:
        return self._location

    def close(self) -> None:
        self._pool.close()

    # schema -----------------------------------------------------------------------------
    @_guarded
    def _migrate(self) -> None:
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            found = self._schema_version(conn)
            if found is not None and found > SCHEMA_VERSION:
                raise InputError(
                    f"the PostgreSQL store has schema version {found}, newer than this "
                    f"platform-audit understands ({SCHEMA_VERSION}); upgrade platform-audit",
                    source=self._location,
                )
            for version in sorted(v for v in MIGRATIONS if v > (found or 0)):
                conn.execute(MIGRATIONS[version])
                conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (key)"
                    " DO UPDATE SET value = excluded.value",
                    (str(version),),
                )
        self.check_integrity()

    def _table_names(self, conn: psycopg.Connection[Any]) -> set[str]:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        return {str(r[0]) for r in rows}

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int | None:
        tables = self._table_names(conn)
        if "meta" not in tables:
            if tables:
                raise RuntimeFailure(
                    f"the PostgreSQL database {self._location} is not a platform-audit store "
                    f"(it has tables {', '.join(sorted(tables)[:8])} and no schema version); "
                    "point --store at an empty database or a platform-audit one"
                )
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise self.damaged("its meta table holds no schema version")
        try:
            return int(row[0])
        except ValueError:
            raise self.damaged(f"schema version {row[0]!r:.20} is no number") from None

    @_guarded
    def check_integrity(self) -> None:
        """RuntimeFailure unless the database holds this store's tables (PostgreSQL itself
        enforces the columns' types and keys: see the module's docstring)."""
        with self._connection() as conn:
            missing = sorted(set(TABLES) - self._table_names(conn))
        if missing:
            raise self.damaged(f"no table {', no table '.join(missing)}")

    # transactions -----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One write transaction; ledger records waiting to be written go in it too."""
        import psycopg

        pending, self._pending = self._pending, []
        try:
            with self._connection() as conn, conn.transaction():
                self._write_exchanges(conn, pending)
                yield conn
        except BaseException as exc:
            self._pending = pending + self._pending
            if isinstance(exc, psycopg.Error):
                raise self.failure(exc) from None
            raise

    @contextmanager
    def snapshot_read(self) -> Iterator[object]:
        """A repeatable-read transaction: every read in the block sees one state."""
        import psycopg

        nested = getattr(self._local, "conn", None) is not None
        try:
            with self._connection() as conn, conn.transaction():
                if not nested:  # a block inside one already open reads its snapshot
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                yield conn
        except psycopg.Error as exc:
            raise self.failure(exc) from None

    def run_lock(self, run_id: str, *, shared: bool = False) -> AdvisoryRunLock:
        return AdvisoryRunLock(
            self._url, self._location, run_id, self._connect_timeout, shared=shared
        )

    # runs -------------------------------------------------------------------------------
    @_guarded
    def create_run(
        self,
        run: RunRow,
        probes: Iterable[ProbeRow],
        slot: float | None = None,
        schedule: Callable[[list[str]], Iterable[tuple[float, str]]] | None = None,
    ) -> int:
        """As :meth:`audit.store.Store.create_run`."""
        import psycopg

        ids: list[str] = []

        def planned() -> Iterator[dict[str, Any]]:
            for probe in probes:
                ids.append(probe.probe_id)
                yield planned_probe_to_sql(probe)

        with self.transaction() as conn:
            if slot is not None:
                try:
                    with conn.transaction():
                        conn.execute(
                            "INSERT INTO scheduled_runs VALUES (%s,%s,%s,%s,%s,%s)",
                            (
                                run.plan_name,
                                slot,
                                run.pack["pack"]["id"],
                                run.target_name,
                                run.run_id,
                                run.created_at,
                            ),
                        )
                except psycopg.errors.UniqueViolation:
                    raise SlotTaken(f"{run.plan_name} @ {slot}") from None
            values = run_to_sql(run)
            conn.execute(_insert("runs", list(values)), values)
            with conn.cursor() as cur:
                cur.executemany(_insert("probes", PLANNED_COLUMNS), planned())
                if schedule is not None:
                    cur.executemany(
                        "UPDATE probes SET next_at = %s, scheduled_at = %s"
                        " WHERE run_id = %s AND probe_id = %s",
                        ((at, at, run.run_id, probe_id) for at, probe_id in schedule(ids)),
                    )
        return len(ids)

    @_guarded
    def scheduled_runs(self, plan_name: str) -> list[ScheduledRun]:
        rows = self._all(
            "SELECT plan_name, slot, pack_id, target_name, run_id, created_at FROM scheduled_runs"
            " WHERE plan_name = %s ORDER BY slot, pack_id, target_name",
            (plan_name,),
        )
        return [scheduled_from_sql(r) for r in rows]

    @_guarded
    def run(self, run_id: str) -> RunRow:
        rows = self._dicts("SELECT * FROM runs WHERE run_id = %s", (run_id,))
        if not rows:
            known = [r.run_id for r in self.runs()[-5:]]
            hint = (
                f" (recent runs: {', '.join(known)})" if known else " (the workspace has no runs)"
            )
            raise InputError(f"no run {run_id!r} in this workspace{hint}", source=self._location)
        return run_from_sql(rows[0])  # type: ignore[arg-type]

    def pack_of(self, run: RunRow) -> Pack:
        """The run's stored pack (see :meth:`audit.store.Store.pack_of`)."""
        from pydantic import ValidationError

        from audit.packs import Pack

        try:
            return Pack.model_validate(run.pack)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise self.damaged(
                f"the run's stored pack is not a valid pack ({where}: {first['msg']})"
            ) from None

    @_guarded
    def runs(self) -> list[RunRow]:
        rows = self._dicts("SELECT * FROM runs ORDER BY created_at, run_id", ())
        return [run_from_sql(r) for r in rows]  # type: ignore[arg-type]

    @_guarded
    def finish_run(self, run_id: str, status: str, at: float, failure: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = %s, finished_at = %s, failure = %s WHERE run_id = %s",
                (status, at, failure, run_id),
            )

    # probes -----------------------------------------------------------------------------
    def _dicts(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, args).fetchall()

    def _all(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(sql, args).fetchall()

    def _probes(self, sql: str, args: Sequence[Any]) -> list[ProbeRow]:
        return [probe_from_sql(r) for r in self._dicts(sql, args)]  # type: ignore[arg-type]

    def _one_number(self, sql: str, args: Sequence[Any], column: str) -> float | None:
        rows = self._all(sql, args)
        value = rows[0][0] if rows else None
        if value is not None and type(value) not in (int, float):
            raise DamagedRow(f"a probe's {column} holds {type(value).__name__}")
        return float(value) if value is not None else None

    @_guarded
    def probes(self, run_id: str) -> list[ProbeRow]:
        return self._probes("SELECT * FROM probes WHERE run_id = %s ORDER BY seq", (run_id,))

    @_guarded
    def probe(self, run_id: str, probe_id: str) -> ProbeRow:
        rows = self._probes(
            "SELECT * FROM probes WHERE run_id = %s AND probe_id = %s", (run_id, probe_id)
        )
        if not rows:
            raise KeyError(probe_id)
        return rows[0]

    @_guarded
    def next_due_time(self, run_id: str) -> float | None:
        return self._one_number(
            "SELECT MIN(next_at) FROM probes WHERE run_id = %s AND next_at IS NOT NULL",
            (run_id,),
            "next_at",
        )

    @_guarded
    def shortest_deadline(self, run_id: str) -> float | None:
        return self._one_number(
            "SELECT MIN(deadline_s) FROM probes WHERE run_id = %s", (run_id,), "deadline_s"
        )

    @_guarded
    def lay_schedule(self, run_id: str, start: float) -> float:
        """As :meth:`audit.store.Store.lay_schedule`."""
        with self.transaction() as conn:
            conn.execute("SELECT 1 FROM runs WHERE run_id = %s FOR UPDATE", (run_id,))
            row = conn.execute(
                "SELECT MIN(scheduled_at), COUNT(submitted_at) FROM probes WHERE run_id = %s",
                (run_id,),
            ).fetchone()
            first, sent = (row[0], int(row[1])) if row else (None, 0)
            if first is None or sent or float(first) >= start:
                return 0.0
            shift = start - float(first)
            conn.execute(
                "UPDATE probes SET scheduled_at = scheduled_at + %s, next_at = next_at + %s"
                " WHERE run_id = %s AND state = 'planned'",
                (shift, shift, run_id),
            )
        return shift

    @_guarded
    def live_probes(self, run_id: str) -> list[ProbeRow]:
        return self._probes(
            "SELECT * FROM probes WHERE run_id = %s"
            " AND (state != 'finished' OR next_at IS NOT NULL) ORDER BY seq",
            (run_id,),
        )

    @_guarded
    def due_probes(
        self, run_id: str, after: tuple[float, int] | None, limit: int
    ) -> list[ProbeRow]:
        """As :meth:`audit.store.Store.due_probes` (content left out)."""
        where, args = "", list[Any]([run_id])
        if after is not None:
            where = " AND (next_at > %s OR (next_at = %s AND seq > %s))"
            args += [after[0], after[0], after[1]]
        return self._probes(
            f"SELECT {_COMPACT_PROBE} FROM probes WHERE run_id = %s"  # noqa: S608
            f" AND next_at IS NOT NULL{where} ORDER BY next_at, seq LIMIT %s",
            (*args, limit),
        )

    @_guarded
    def unscheduled_probes(self, run_id: str) -> list[ProbeRow]:
        return self._probes(
            f"SELECT {_COMPACT_PROBE} FROM probes WHERE run_id = %s"  # noqa: S608
            " AND (state = 'submitting' OR (state != 'finished' AND next_at IS NULL))"
            " ORDER BY seq",
            (run_id,),
        )

    @_guarded
    def probe_content(self, run_id: str, probe_id: str) -> dict[str, Any]:
        rows = self._all(
            "SELECT probe_json FROM probes WHERE run_id = %s AND probe_id = %s",
            (run_id, probe_id),
        )
        if not rows:
            raise KeyError(probe_id)
        content = loads_column(rows[0][0], "probe_json")
        if type(content) is not dict:
            raise DamagedRow("column probe_json holds no JSON object")
        return content

    @_guarded
    def looks_of(self, run_id: str, probe_ids: Sequence[str]) -> list[ObservationRow]:
        rows = self._all(
            f"SELECT {OBSERVATION_COLUMNS} FROM observations"  # noqa: S608
            " WHERE run_id = %s AND action IN ('status', 'withdraw')"
            " AND probe_id = ANY(%s) ORDER BY id",
            (run_id, list(probe_ids)),
        )
        return [observation_from_sql(r) for r in rows]

    @_guarded
    def outcomes_pending(self, run_id: str) -> bool:
        rows = self._all(
            "SELECT 1 FROM probes WHERE run_id = %s AND outcome IS NULL LIMIT 1", (run_id,)
        )
        return bool(rows)

    @_guarded
    def probes_up(self, run_id: str) -> list[ProbeRow]:
        return self._probes(
            "SELECT * FROM probes WHERE run_id = %s AND post_id IS NOT NULL"
            " AND withdrawn_at IS NULL ORDER BY seq",
            (run_id,),
        )

    @_guarded
    def live_looks(self, run_id: str) -> list[ObservationRow]:
        rows = self._all(
            "SELECT o.probe_id, o.action, o.result, o.started_at, o.ended_at, o.detail,"
            " o.view, o.author_result FROM observations o"
            " JOIN probes p ON p.run_id = o.run_id AND p.probe_id = o.probe_id"
            " WHERE o.run_id = %s AND o.action IN ('status', 'withdraw')"
            " AND (p.state != 'finished' OR p.next_at IS NOT NULL) ORDER BY o.id",
            (run_id,),
        )
        return [observation_from_sql(r) for r in rows]

    def _counts(self, sql: str, run_id: str) -> dict[str, int]:
        return {str(r[0]): int(r[1]) for r in self._all(sql, (run_id,))}

    @_guarded
    def outcome_counts(self, run_id: str) -> dict[str, int]:
        return self._counts(
            "SELECT outcome, COUNT(*) FROM probes WHERE run_id = %s AND outcome IS NOT NULL"
            " GROUP BY outcome",
            run_id,
        )

    @_guarded
    def action_counts(self, run_id: str) -> dict[str, int]:
        return self._counts(
            "SELECT action, COUNT(*) FROM observations WHERE run_id = %s GROUP BY action", run_id
        )

    @_guarded
    def state_counts(self, run_id: str) -> dict[str, int]:
        return self._counts(
            "SELECT state, COUNT(*) FROM probes WHERE run_id = %s GROUP BY state", run_id
        )

    @_guarded
    def update_probe(
        self,
        run_id: str,
        probe_id: str,
        observation: ObservationRow | None = None,
        change: ProbeUpdate = NO_CHANGE,
    ) -> None:
        """Change a probe's row and record what was seen, in one transaction."""
        self.update_probes(run_id, [(probe_id, observation, change)])

    @_guarded
    def update_probes(
        self,
        run_id: str,
        changes: Sequence[tuple[str, ObservationRow | None, ProbeUpdate]],
    ) -> None:
        """Several probes' changes, in order, in one transaction."""
        with self.transaction() as conn, conn.cursor() as cur:
            self.write_changes(cur, run_id, changes)

    @classmethod
    def write_changes(
        cls,
        cur: psycopg.Cursor[Any],
        run_id: str,
        changes: Sequence[tuple[str, ObservationRow | None, ProbeUpdate]],
    ) -> None:
        """Write the changes in the transaction of ``cur`` (see :meth:`update_probes`)."""
        looks = []
        for probe_id, observation, change in changes:
            fields = change.changes()
            if fields.get("offsets") is not None:
                fields["offsets"] = json.dumps(fields["offsets"])
            if isinstance(fields.get("note"), str):
                fields["note"] = stored_text(fields["note"])
            if fields:
                sets = ", ".join(f"{name} = %s" for name in fields)
                cur.execute(
                    f"UPDATE probes SET {sets} WHERE run_id = %s AND probe_id = %s",  # noqa: S608
                    (*fields.values(), run_id, probe_id),
                )
            if observation is not None:  # inserted in this order: ids keep it
                looks.append((run_id, probe_id, *_observation_values(observation)))
        cls._insert_looks(cur, looks)

    @staticmethod
    def _insert_looks(cur: psycopg.Cursor[Any], looks: list[tuple[Any, ...]]) -> None:
        if looks:
            cur.executemany(
                "INSERT INTO observations (run_id, probe_id, action, result, started_at,"
                " ended_at, detail, view, author_result) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                looks,
            )

    @_guarded
    def observations(self, run_id: str) -> dict[str, list[ObservationRow]]:
        rows = self._all(
            f"SELECT {OBSERVATION_COLUMNS} FROM observations"  # noqa: S608
            " WHERE run_id = %s ORDER BY id",
            (run_id,),
        )
        out: dict[str, list[ObservationRow]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(observation_from_sql(r))
        return out

    def probes_with_observations(
        self, run_id: str
    ) -> Iterator[tuple[ProbeRow, list[ObservationRow]]]:
        """Each probe of the run with its observations in the order made, probe by probe in
        probe-id order (code point order, as SQLite's, whatever the database's collation), a
        page of probes and their observations read at a time."""
        import psycopg

        after = ""
        while True:
            try:
                page = self._probes(
                    'SELECT * FROM probes WHERE run_id = %s AND probe_id COLLATE "C" > %s'
                    ' ORDER BY probe_id COLLATE "C" LIMIT %s',
                    (run_id, after, _PAGE),
                )
                if not page:
                    return
                looks: dict[str, list[ObservationRow]] = {}
                for r in self._all(  # by the observations' probe index, the page's ids only
                    f"SELECT {OBSERVATION_COLUMNS} FROM observations"  # noqa: S608
                    " WHERE run_id = %s AND probe_id = ANY(%s) ORDER BY id",
                    (run_id, [row.probe_id for row in page]),
                ):
                    looks.setdefault(r[0], []).append(observation_from_sql(r))
            except psycopg.Error as exc:
                raise self.failure(exc) from None
            except DamagedRow as exc:
                raise self.damaged(f"a stored row: {exc}") from None
            for row in page:
                yield row, looks.pop(row.probe_id, [])
            if len(page) < _PAGE:
                return
            after = page[-1].probe_id

    @_guarded
    def observations_of(self, run_id: str, probe_id: str) -> list[ObservationRow]:
        rows = self._all(
            f"SELECT {OBSERVATION_COLUMNS} FROM observations"  # noqa: S608
            " WHERE run_id = %s AND probe_id = %s ORDER BY id",
            (run_id, probe_id),
        )
        return [observation_from_sql(r) for r in rows]

    # evidence ---------------------------------------------------------------------------
    @_guarded
    def last_exchange(self, run_id: str) -> tuple[int, str]:
        with self._connection() as conn:
            return _last_exchange(conn, run_id)

    @_guarded
    def append_exchange(self, run_id: str, record: ExchangeRecord) -> None:
        self._pending.append((run_id, record))
        if not self._deferring:
            with self.transaction():
                pass

    @contextmanager
    def exchanges_with_transitions(self) -> Iterator[None]:
        """As :meth:`audit.store.Store.exchanges_with_transitions`."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if not self._deferring and self._pending:
                with self.transaction():
                    pass

    def _write_exchanges(
        self, conn: psycopg.Connection[Any], pending: list[tuple[str, ExchangeRecord]]
    ) -> None:
        """Write waiting ledger records, each linked to the run's last record: the run's row
        is locked first, so the appends of all writers of a run are one sequence."""
        if not pending:
            return
        heads: dict[str, tuple[int, str]] = {}
        for run_id in sorted({run_id for run_id, _ in pending}):  # one order: no deadlock
            conn.execute("SELECT 1 FROM runs WHERE run_id = %s FOR UPDATE", (run_id,))
            seq, head = _last_exchange(conn, run_id)
            heads[run_id] = (seq, head or GENESIS)
        rows, media = [], []
        for run_id, record in pending:
            seq, head = heads[run_id]
            text = record.text if record.text is not None else canonical_json(record.entry)
            if (record.seq, record.prev_hash) != (seq + 1, head):  # another writer appended
                digest = text_hash(head, seq + 1, text, record.probe_id)
                record = ExchangeRecord(seq + 1, record.probe_id, record.entry, head, digest, text)
            heads[run_id] = (record.seq, record.hash)
            rows.append((run_id, record.seq, record.probe_id, text, record.prev_hash, record.hash))
            digest_sent = sent_media(record.entry)
            if record.probe_id is not None and digest_sent is not None:
                media.append((run_id, record.probe_id, record.seq, digest_sent))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO exchanges VALUES (%s,%s,%s,%s,%s,%s)", rows)
            if media:
                cur.executemany("INSERT INTO media_sent VALUES (%s,%s,%s,%s)", media)

    def exchanges(self, run_id: str) -> Iterator[ExchangeRecord]:
        """The run's ledger records in order, read a page at a time."""
        import psycopg

        after = 0
        while True:
            try:
                rows = self._all(
                    "SELECT seq, probe_id, entry_json, prev_hash, hash FROM exchanges"
                    " WHERE run_id = %s AND seq > %s ORDER BY seq LIMIT %s",
                    (run_id, after, _PAGE),
                )
            except psycopg.Error as exc:
                raise self.failure(exc) from None
            for row in rows:
                try:
                    record = text_exchange_from_sql(row)
                except DamagedRow as exc:
                    raise self.damaged(f"a ledger record: {exc}") from None
                after = record.seq
                yield record
            if len(rows) < _PAGE:
                return

    def probe_exchanges(self, run_id: str) -> Generator[ExchangeRecord, None, None]:
        """As :meth:`audit.store_protocol.RunStore.probe_exchanges`: one query, sorted by the
        server (on disk past ``work_mem``) and fetched a page at a time through a server-side
        cursor, probe ids in code point order whatever the database's collation."""
        import psycopg

        try:
            with (
                self._connection() as conn,
                conn.transaction(),
                conn.cursor(name="probe_exchanges") as cursor,
            ):
                cursor.itersize = _PAGE
                cursor.execute(
                    "SELECT seq, probe_id, entry_json, '', hash FROM exchanges"
                    " WHERE run_id = %s AND probe_id IS NOT NULL"
                    ' ORDER BY probe_id COLLATE "C", seq',
                    (run_id,),
                )
                for row in cursor:
                    yield text_exchange_from_sql(row)
        except psycopg.Error as exc:
            raise self.failure(exc) from None
        except DamagedRow as exc:
            raise self.damaged(f"a ledger record: {exc}") from None

    @_guarded
    def media_sent(self, run_id: str) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        for probe_id, digest in self._all(
            "SELECT probe_id, sha256 FROM media_sent WHERE run_id = %s", (run_id,)
        ):
            found.setdefault(str(probe_id), set()).add(str(digest))
        return {probe_id: frozenset(digests) for probe_id, digests in found.items()}

    @_guarded
    def exchange_count(self, run_id: str) -> int:
        rows = self._all("SELECT COUNT(*) FROM exchanges WHERE run_id = %s", (run_id,))
        return int(rows[0][0])


def _last_exchange(conn: psycopg.Connection[Any], run_id: str) -> tuple[int, str]:
    row = conn.execute(
        "SELECT seq, hash FROM exchanges WHERE run_id = %s ORDER BY seq DESC LIMIT 1", (run_id,)
    ).fetchone()
    if row is None:
        return (0, "")
    if type(row[0]) is not int or type(row[1]) is not str:
        raise DamagedRow("the last ledger record's seq or hash has the wrong type")
    return (row[0], row[1])


def _observation_values(o: ObservationRow) -> tuple[Any, ...]:
    detail = stored_text(o.detail)
    return (o.action, o.result, o.started_at, o.ended_at, detail, o.view, o.author_result)


def _insert(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    marks = ", ".join(f"%({c})s" for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__
