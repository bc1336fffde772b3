"""A throwaway PostgreSQL server for the tests, from Debian's packages.

``initdb`` makes a cluster in a temporary folder, ``postgres`` serves it on a free loopback
port with its unix socket in that folder, and :meth:`PgServer.stop` ends it by its PID
(``pg_ctl stop -m fast``, then SIGKILL). PostgreSQL refuses to run as root, so under root
(as in CI) the server runs as the unprivileged ``postgres`` user the Debian package creates,
and owns the folder. Without the binaries a test is skipped with the install command, except
under CI (the CI environment variable set), where it fails: CI installs them (``.ci/run``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import pytest

INSTALL = "apt-get install postgresql"
_BIN_DIRS = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
_READY_WITHIN = 60.0


def _binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None when they are not installed."""
    for folder in [*_BIN_DIRS, *(Path(p) for p in os.environ.get("PATH", "").split(os.pathsep))]:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def require_postgresql() -> Path:
    """The binaries' folder; skip without them locally, fail without them under CI."""
    folder = _binaries()
    if folder is None:
        message = f"PostgreSQL server binaries are not installed (Debian: {INSTALL})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix that runs a server program unprivileged, and the ids to own the
    folder: nothing when not root."""
    if os.geteuid() != 0:
        return [], None, None
    user = pwd.getpwnam("postgres")
    runuser = shutil.which("runuser")
    prefix = [runuser, "-u", "postgres", "--"] if runuser else ["setpriv", "--reuid=postgres",
              "--regid=postgres", "--init-groups", "--"]  # fmt: skip
    return prefix, user.pw_uid, user.pw_gid


@dataclass
class PgServer:
    bin_dir: Path
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    _names: count[int] = field(default_factory=lambda: count(1))

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        name = f"audit_{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self, keep: bool = False) -> None:
        """End the server; its folder is removed unless ``keep``."""
        prefix, _, _ = _as_user()
        data = self.root / "data"
        if self.process.poll() is None:
            subprocess.run(
                [*prefix, str(self.bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast",
                 "-w", "-t", "30"],
                capture_output=True,
                check=False,
            )  # fmt: skip
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PgServer:
    """Make a cluster in a new temporary folder and serve it; waits until it takes
    connections."""
    bin_dir = require_postgresql()
    prefix, uid, gid = _as_user()
    root = Path(tempfile.mkdtemp(prefix="platform-audit-pg-"))
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
    data, log = root / "data", root / "server.log"
    made = subprocess.run(
        [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
         "-E", "UTF8", "--no-locale", "--no-sync"],
        capture_output=True,
        check=False,
    )  # fmt: skip
    if made.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {made.stderr.decode(errors='replace')[-2000:]}")
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*prefix, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
             "-h", "127.0.0.1", "-k", str(root), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = PgServer(bin_dir, root, port, process)
    _wait_ready(server, log)
    return server


def _wait_ready(server: PgServer, log: Path) -> None:
    import psycopg

    give_up = time.monotonic() + _READY_WITHIN
    while True:
        if server.process.poll() is not None:
            text = log.read_text(errors="replace")[-2000:]
            server.stop()
            raise RuntimeError(f"the PostgreSQL server exited at start:\n{text}")
        try:
            psycopg.connect(server.admin_url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() >= give_up:
                server.stop()
                raise RuntimeError(
                    f"the PostgreSQL server took no connection within {_READY_WITHIN:g} s"
                ) from None
            time.sleep(0.05)
