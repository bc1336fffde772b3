"""Run locks of the PostgreSQL store: session advisory locks (see :mod:`audit.locking` for
what a run lock is for).

A lock is ``pg_try_advisory_lock`` on a 64-bit key made from the run id, taken on a connection
of its own that the holder keeps open; the server releases it when that session ends, however
the holding process ends (exit, crash, ``kill -9``, a lost network). The ``run_locks`` table
says who holds it (pid, host, since when, command), for ``status`` and for the message a
second process prints when it finds the run busy.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit.errors import RuntimeFailure
from audit.locking import HeldLock, LockHolder

if TYPE_CHECKING:
    import psycopg

__all__ = ["AdvisoryRunLock"]


def _advisory_key(run_id: str) -> int:
    """The run's advisory lock key: 64 bits of the SHA-256 of its id, signed as PostgreSQL's
    ``bigint``."""
    return int.from_bytes(hashlib.sha256(f"run:{run_id}".encode()).digest()[:8], "big", signed=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


class AdvisoryRunLock(HeldLock):
    """A run's lock in a PostgreSQL store: a session advisory lock held on a connection of its
    own (the server releases it when that session ends: exit, crash, ``kill -9``, a lost
    network), and a ``run_locks`` row saying who holds it. Not re-entrant."""

    def __init__(
        self, url: str, location: str, run_id: str, connect_timeout: float, *, shared: bool = False
    ) -> None:
        """``shared``: the workers' lock (``pg_try_advisory_lock_shared``): any number of them
        hold it at once, and no process holds it alone meanwhile."""
        self.run_id = run_id
        self.shared = shared
        self._url = url
        self._location = location
        self._timeout = max(1, round(connect_timeout))
        self._key = _advisory_key(run_id)
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        try:
            return psycopg.connect(self._url, autocommit=True, connect_timeout=self._timeout)
        except psycopg.Error as exc:
            raise RuntimeFailure(
                f"cannot reach the PostgreSQL store {self._location}: {_first_line(exc)}"
            ) from None

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock; try for up to ``wait`` seconds. True when taken."""
        import psycopg

        if self._conn is not None:
            raise RuntimeError(f"lock of run {self.run_id} already held by this object")
        conn = self._connect()
        give_up = time.monotonic() + wait
        try:
            take = "pg_try_advisory_lock_shared" if self.shared else "pg_try_advisory_lock"
            while not _fetch_bool(conn, f"SELECT {take}(%s)", self._key):
                if time.monotonic() >= give_up:
                    conn.close()
                    return False
                time.sleep(0.1)
            conn.execute(
                "INSERT INTO run_locks VALUES (%s,%s,%s,%s,%s) ON CONFLICT (run_id) DO UPDATE"
                " SET pid = excluded.pid, host = excluded.host, since = excluded.since,"
                " command = excluded.command",
                (self.run_id, os.getpid(), socket.gethostname(), time.time(), _command()),
            )
        except psycopg.Error as exc:
            conn.close()
            raise RuntimeFailure(
                f"the PostgreSQL store {self._location} failed: {_first_line(exc)}"
            ) from None
        self._conn = conn
        return True

    def release(self) -> None:
        import psycopg

        conn, self._conn = self._conn, None
        if conn is None:
            return
        # unlocked explicitly first: the server ends a closed session's backend (and with it
        # its locks) a moment after the client closes, and a process taking the lock again at
        # once (a run resumed in the same process) must not find it still held
        give_back = "pg_advisory_unlock_shared" if self.shared else "pg_advisory_unlock"
        try:
            conn.execute(f"SELECT {give_back}(%s)", (self._key,))
        except psycopg.Error:
            pass  # the session is gone already, and its locks with it
        finally:
            conn.close()

    def holder(self) -> LockHolder | None:
        """Who holds the lock now, or None when it is free (or held by this object)."""
        import psycopg

        if self._conn is not None:
            return None
        with self._connect() as conn:
            try:
                if _fetch_bool(conn, "SELECT pg_try_advisory_lock(%s)", self._key):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
                    return None
                row = conn.execute(
                    "SELECT pid, host, since, command FROM run_locks WHERE run_id = %s",
                    (self.run_id,),
                ).fetchone()
            except psycopg.Error:
                return LockHolder(0, "?", 0.0, "unknown")
        if row is None:
            return LockHolder(0, "?", 0.0, "unknown")
        return LockHolder(int(row[0]), str(row[1]), float(row[2]), str(row[3]))


def _fetch_bool(conn: psycopg.Connection[Any], sql: str, key: int) -> bool:
    row = conn.execute(sql, (key,)).fetchone()
    return bool(row and row[0])


def _command() -> str:
    return " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:200]
