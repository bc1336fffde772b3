"""Which store a test's runs live in: SQLite (the default) or PostgreSQL.

A command the test runs (in process or in a child process) reaches the PostgreSQL store the
test opened last: ``PLATFORM_AUDIT_STORE`` is set to its URL while the test runs.

A test module marked ``pytest.mark.both_stores`` runs each of its tests twice, once per store
(tests/conftest.py parametrises them). Test code opens stores with :func:`open_store`, given
the path the SQLite store would have (``<workspace>/audit.sqlite``): under PostgreSQL each
distinct path is a database of its own on the session's throwaway server (tests/pg_server.py),
made empty on first use, with the path's folder as the workspace. :func:`copy_store` makes a
twin of a store (every run in it) in either store.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from audit.store import Store
from audit.store_protocol import RunStore

STORE_KINDS = ("sqlite", "postgresql")
STORE_ENV = "PLATFORM_AUDIT_STORE"


@dataclass
class _Backend:
    kind: str = "sqlite"
    server: object | None = None  # a tests.pg_server.PgServer under PostgreSQL
    urls: dict[Path, str] = field(default_factory=dict)
    opened: list[RunStore] = field(default_factory=list)
    url_of: dict[int, str] = field(default_factory=dict)
    pinned: str | None = None  # the URL commands reach, whatever the test opens after


_current = _Backend()


def current_kind() -> str:
    return _current.kind


def use(kind: str, server: object | None = None) -> None:
    """Open the stores of the test about to run in ``kind`` (on ``server`` for PostgreSQL)."""
    global _current
    _current = _Backend(kind, server)


def reset() -> None:
    """Close every store the test opened and go back to SQLite."""
    global _current
    for store in _current.opened:
        store.close()
    _current = _Backend()
    os.environ.pop(STORE_ENV, None)


def opened_count() -> int:
    return len(_current.opened)


def close_since(mark: int) -> None:
    """Close the stores opened after :func:`opened_count` gave ``mark``."""
    for store in _current.opened[mark:]:
        store.close()
    del _current.opened[mark:]
    _current.pinned = None
    if _current.opened:  # commands reach the store still open (a module's shared audit)
        os.environ[STORE_ENV] = _current.url_of[id(_current.opened[-1])]
    else:
        os.environ.pop(STORE_ENV, None)


def store_url(path: Path) -> str:
    """The PostgreSQL URL of the store at ``path`` (a new empty database on first use)."""
    from tests.pg_server import PgServer

    assert isinstance(_current.server, PgServer), "not a PostgreSQL test"
    key = path.resolve()
    if key not in _current.urls:
        _current.urls[key] = _current.server.fresh_database()
    return _current.urls[key]


def open_store(path: Path) -> RunStore:
    """The test's store for the workspace store path ``path``."""
    if _current.kind == "sqlite":
        return Store(path)
    from audit.store_pg import PostgresStore

    path.parent.mkdir(parents=True, exist_ok=True)
    url = store_url(path)
    store = PostgresStore(url, path.parent)
    _current.opened.append(store)
    _current.url_of[id(store)] = url
    os.environ[STORE_ENV] = _current.pinned or url  # a command run now reaches this store
    return store


def pin_commands_to(path: Path) -> None:
    """Commands the test runs reach the store at ``path`` (under PostgreSQL), whatever
    store it opens after."""
    if _current.kind == "postgresql":
        _current.pinned = store_url(path)
        os.environ[STORE_ENV] = _current.pinned


def store_args(path: Path) -> list[str]:
    """The options that point a command at the store at ``path``: none for SQLite (the
    workspace's own file), ``--store URL`` for PostgreSQL."""
    return [] if _current.kind == "sqlite" else ["--store", store_url(path)]


def db_errors() -> tuple[type[Exception], ...]:
    """The errors of reading a store that is busy or not made yet."""
    if _current.kind == "sqlite":
        return (sqlite3.OperationalError,)
    import psycopg

    return (psycopg.Error,)


def raw_sql(path: Path, sql: str, *args: object) -> tuple[list[tuple[object, ...]], int]:
    """Run ``sql`` (``?`` placeholders) on the database of the store at ``path`` behind the
    tool's back, committed: the rows it returns and the number of rows it changed (a SQLite
    file that is not there is an error, never made)."""
    if _current.kind == "sqlite":
        with sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=5) as db:
            cursor = db.execute(sql, args)
            return [tuple(r) for r in cursor.fetchall()], cursor.rowcount
    import psycopg

    with psycopg.connect(store_url(path), autocommit=True) as conn:
        cursor = conn.execute(sql.replace("?", "%s"), args)  # type: ignore[arg-type]
        rows = [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        return rows, cursor.rowcount


def raw_rows(store: RunStore, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Run ``sql`` (``?`` placeholders) on the store's database behind its back, committed;
    the rows it returns (none for a change)."""
    if isinstance(store, Store):
        with sqlite3.connect(store.path) as db:
            cursor = db.execute(sql, args)
            return [tuple(r) for r in cursor.fetchall()]
    import psycopg

    with psycopg.connect(_current.url_of[id(store)], autocommit=True) as conn:
        cursor = conn.execute(sql.replace("?", "%s"), args)  # type: ignore[arg-type]
        return [tuple(r) for r in cursor.fetchall()] if cursor.description else []


def copy_store(source: Path, destination: Path) -> None:
    """A consistent copy of a store: the twin of every run in it (no store of ``source``
    may be open under PostgreSQL, whose copy is ``CREATE DATABASE ... TEMPLATE``)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if _current.kind == "sqlite":
        with sqlite3.connect(source) as src, sqlite3.connect(destination) as dst:
            src.backup(dst)
        return
    import psycopg

    from tests.pg_server import PgServer

    assert isinstance(_current.server, PgServer)
    template = store_url(source).rsplit("/", 1)[1]
    name = f"{template}_copy_{len(_current.urls)}"
    give_up = time.monotonic() + 30.0
    with psycopg.connect(_current.server.admin_url, autocommit=True) as conn:
        while True:  # the source's sessions may still be ending after its store closed
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except psycopg.errors.ObjectInUse:
                if time.monotonic() >= give_up:
                    raise
                time.sleep(0.05)
    _current.urls[destination.resolve()] = _current.server.url(name)
