"""The PostgreSQL store beside the SQLite one: the same run gives the same evidence bundle,
byte for byte; many writers of one run keep one verifiable chain; runs are locked with
advisory locks; the schema is versioned; a server that is not there is one clear failure.

The engine, evidence and bundle suites run on both stores too (modules marked
``both_stores``); these tests are about what only the PostgreSQL store does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psycopg
import pytest

from audit.clock import VirtualClock
from audit.errors import InputError, RuntimeFailure
from audit.evidence.bundle import export_bundle, verify_store
from audit.evidence.keys import KEY_DIR
from audit.evidence.ledger import EvidenceLedger, Redactor, check_chain
from audit.locking import RunBusy
from audit.runner import create_runs, execute_run
from audit.sandbox.app import create_app
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.store import Store
from audit.store_pg import SCHEMA_VERSION, PostgresStore, redacted_url
from audit.store_protocol import RunStore
from tests.evidence_support import tiny_plan
from tests.pg_server import PgServer, free_port

ROOT = Path(__file__).resolve().parents[1]


def _audit(store: RunStore) -> tuple[str, VirtualClock]:
    clock = VirtualClock()
    app = create_app(load_sandbox_config(default_config_path()), clock)
    (prepared,) = create_runs(store, tiny_plan(3, 1), None, clock)
    transport = httpx.ASGITransport(app)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport))
    return prepared.run_id, clock


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_same_run_gives_byte_identical_bundles_on_both_stores(
    pg_server: PgServer, tmp_path: Path
) -> None:
    lite = Store(tmp_path / "a" / "audit.sqlite")
    pg = PostgresStore(pg_server.fresh_database(), tmp_path / "b")
    try:
        (lite_run, lite_clock), (pg_run, pg_clock) = _audit(lite), _audit(pg)
        assert lite_run == pg_run
        assert lite_clock.now() == pg_clock.now()
        (tmp_path / "b").mkdir(exist_ok=True)
        export_bundle(lite, tmp_path / "a", lite_run, tmp_path / "a.tar.gz", lite_clock)
        shutil.copytree(tmp_path / "a" / KEY_DIR, tmp_path / "b" / KEY_DIR)  # one signer
        export_bundle(pg, tmp_path / "b", pg_run, tmp_path / "b.tar.gz", pg_clock)
        export_bundle(lite, tmp_path / "a", lite_run, tmp_path / "fa", lite_clock)
        export_bundle(pg, tmp_path / "b", pg_run, tmp_path / "fb", pg_clock)
        assert pg.exchange_count(pg_run) > 20
        assert _files(tmp_path / "fa") == _files(tmp_path / "fb")
        assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
        assert verify_store(pg, pg_run).ok
    finally:
        lite.close()
        pg.close()


def test_many_writers_of_one_run_keep_one_chain(pg_server: PgServer, tmp_path: Path) -> None:
    """Writers that each keep their own idea of the ledger's head append at once: every
    record is kept, in one chain that verifies."""
    url = pg_server.fresh_database()
    first = PostgresStore(url, tmp_path)
    run_id, _ = _audit(first)
    before = first.exchange_count(run_id)
    writers, each = 4, 40
    stores = [PostgresStore(url, tmp_path) for _ in range(writers)]
    ledgers = [EvidenceLedger(s, run_id, Redactor([])) for s in stores]  # all at one head
    start = threading.Barrier(writers)

    def write(number: int) -> None:
        start.wait()
        for i in range(each):
            if i % 5 == 0:  # some records wait for a transition, as the engine's do
                with stores[number].exchanges_with_transitions():
                    ledgers[number].append(None, {"writer": number, "i": i, "held": True})
                    ledgers[number].append(None, {"writer": number, "i": i, "held": False})
            else:
                ledgers[number].append(None, {"writer": number, "i": i})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    records = list(first.exchanges(run_id))
    assert len(records) == before + writers * (each + each // 5)
    assert check_chain(records).ok, check_chain(records).problem
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert verify_store(first, run_id).ok
    for s in [first, *stores]:
        s.close()


_HOLDER = """
import sys
from pathlib import Path
from audit.store_pg import PostgresStore
store = PostgresStore(sys.argv[1], Path(sys.argv[2]))
lock = store.run_lock("run-x")
assert lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_a_run_lock_is_an_advisory_lock_freed_when_its_holder_dies(
    pg_server: PgServer, tmp_path: Path
) -> None:
    url = pg_server.fresh_database()
    store = PostgresStore(url, tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"held"
        lock = store.run_lock("run-x")
        holder = lock.holder()
        assert holder is not None and holder.pid == child.pid
        with pytest.raises(RunBusy, match=f"pid {child.pid}"), lock:
            pass
        other = store.run_lock("run-y")
        assert other.acquire()  # other runs are independent
        other.release()
        child.kill()
        child.wait()
        assert lock.acquire(wait=60.0)  # the server ended the dead holder's session
        assert lock.holder() is None  # held by this object
        lock.release()
    finally:
        child.kill()
        child.wait()
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()
        store.close()


def test_the_schema_is_versioned_and_a_newer_one_refused(
    pg_server: PgServer, tmp_path: Path
) -> None:
    url = pg_server.fresh_database()
    PostgresStore(url, tmp_path).close()
    PostgresStore(url, tmp_path).close()  # opening again changes nothing
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert row == (str(SCHEMA_VERSION),)
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(InputError, match="schema version 99, newer than this"):
        PostgresStore(url, tmp_path)


def test_a_database_of_something_else_is_refused(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    with pytest.raises(RuntimeFailure, match=r"not a platform-audit store .*invoices"):
        PostgresStore(url, tmp_path)


def test_a_server_that_is_not_there_is_one_clear_failure(tmp_path: Path) -> None:
    url = f"postgresql://audit:secret@127.0.0.1:{free_port()}/audit"
    with pytest.raises(RuntimeFailure) as caught:
        PostgresStore(url, tmp_path, connect_timeout=5.0)
    message = str(caught.value)
    assert message.startswith("cannot reach the PostgreSQL store postgresql://audit:***@127")
    assert "secret" not in message
    assert redacted_url("postgresql://u@h/db") == "postgresql://u@h/db"


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from audit.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "--store must be a postgresql://USER@HOST:PORT/DATABASE URL"),
        ("postgresql://u@h:port/db", "--store has a bad port"),
        ("postgresql://u@127.0.0.1/db?nosuch=1", "--store is not a valid PostgreSQL URL"),
        ("sqlite://", "--store must be"),
    ],
)
def test_a_bad_store_url_is_one_line_and_exit_2(
    url: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(["--workspace", str(tmp_path), "--store", url, "runs"], capsys)
    assert code == 2
    assert err.startswith(f"error: {message}"), err
    assert len(err.strip().splitlines()) == 1


def test_an_unreachable_store_is_exit_4_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATFORM_AUDIT_STORE", f"postgresql://a:pw@127.0.0.1:{free_port()}/a")
    code, _, err = _cli(["--workspace", str(tmp_path), "runs"], capsys)
    assert code == 4
    assert err.startswith("error: cannot reach the PostgreSQL store postgresql://a:***@"), err
    assert "Traceback" not in err and "pw" not in err


def test_the_command_line_runs_and_verifies_on_postgresql(
    pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run made through the command line lands in the database the URL names; the key and
    reports stay in the workspace folder, and no SQLite file is made there."""
    url = pg_server.fresh_database()
    base = ["--workspace", str(tmp_path / "ws"), "--store", url]
    store = PostgresStore(url, tmp_path / "ws")
    try:
        run_id, _ = _audit(store)
    finally:
        store.close()
    code, out, _ = _cli([*base, "runs"], capsys)
    assert code == 0 and run_id in out
    code, out, err = _cli([*base, "verify", run_id], capsys)
    assert code == 0, out + err
    assert f"in {url}" in out
    code, out, err = _cli([*base, "export", run_id, "--out", str(tmp_path / "b.tar.gz")], capsys)
    assert code == 0, err
    assert (tmp_path / "ws" / KEY_DIR).is_dir()
    assert not (tmp_path / "ws" / "audit.sqlite").exists()
    code, out, _ = _cli(["verify", str(tmp_path / "b.tar.gz")], capsys)
    assert code == 0 and out.startswith("OK "), out
