"""Per-run locks: two processes never carry the same run forward at the same time.

A run is worked on only by the process that holds its lock, an exclusive ``flock`` on
``<workspace>/locks/<run_id>.lock``. The kernel releases the lock when its holder ends in any
way (exit, crash, ``kill -9``, an out-of-memory kill, a reboot), so a dead holder's lock is taken
over at once, with no heartbeat or expiry to tune and no stale lock to clear by hand. The file
also says who holds it (pid, host, since when, command), for ``status`` and for the message a
second process prints when it finds the run busy.

Workers (:mod:`audit.worker`) hold a run's lock *shared*: any number of them carry the run at
once, each acting only on the probes it holds a lease on in the store, and while one does,
`run`, `resume`, `poll` and `cleanup` find the run busy (and workers skip a run one of those
holds alone).

Scope: processes on one machine or sharing a local volume. Network file systems give ``flock``
weak guarantees, and the SQLite store must not live on one either (see docs/scheduling.md).
These are the SQLite store's locks; the PostgreSQL store's are the server's advisory locks
(:mod:`audit.locking_pg`), which hold across machines.
Lock files are never deleted: unlinking a lock file while another process waits on it would
let two processes lock two different files of the same name.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from audit.errors import RuntimeFailure

__all__ = ["HeldLock", "LockHolder", "RunBusy", "RunLock", "lock_dir"]

_RETRY_SECONDS = 0.1


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    since: float  # seconds since the epoch
    command: str

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since))
        return f"pid {self.pid} on {self.host} since {started} ({self.command})"


class RunBusy(RuntimeFailure):
    """Another process holds the run's lock."""

    def __init__(self, run_id: str, holder: LockHolder | None) -> None:
        self.run_id = run_id
        self.holder = holder
        who = holder.describe() if holder else "another process"
        super().__init__(f"run {run_id} is being worked on by {who}; try again when it exits")


def lock_dir(workspace_store: Path) -> Path:
    """Where the lock files of the runs of a workspace store live."""
    return workspace_store.parent / "locks"


class HeldLock(ABC):
    """A run's lock as a ``with`` block: taken on entry (:class:`RunBusy` naming the holder
    when another process has it), given back on exit. :class:`RunLock` here, and
    :class:`audit.locking_pg.AdvisoryRunLock` in a PostgreSQL store."""

    run_id: str

    @property
    @abstractmethod
    def held(self) -> bool:
        """Whether this instance holds the lock."""

    @abstractmethod
    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock, waiting up to ``wait`` seconds for its holder: whether it was taken."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock back (nothing when it is not held)."""

    @abstractmethod
    def holder(self) -> LockHolder | None:
        """Who holds the lock, when someone does."""

    def __enter__(self) -> Self:
        if not self.acquire():
            raise RunBusy(self.run_id, self.holder())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class RunLock(HeldLock):
    """The lock of one run. Not re-entrant; one instance per holder."""

    def __init__(self, directory: Path, run_id: str, *, shared: bool = False) -> None:
        """``shared``: the lock the workers of a store take together (:mod:`audit.worker`):
        any number of them hold it at once, and while any does, no process takes it alone
        (nor do they while one holds it alone)."""
        self.run_id = run_id
        self.shared = shared
        self.path = directory / f"{run_id}.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock; try for up to ``wait`` seconds. True when taken."""
        if self._fd is not None:
            raise RuntimeError(f"lock of run {self.run_id} already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        give_up = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= give_up:
                    os.close(fd)
                    return False
                time.sleep(_RETRY_SECONDS)
        self._fd = fd
        self._write_holder(fd)
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    def holder(self) -> LockHolder | None:
        """Who holds the lock now, or None when it is free (or held by this object)."""
        if self._fd is not None or not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_holder(fd) or LockHolder(0, "?", 0.0, "unknown")
            return None  # we could lock it: nobody holds it
        finally:
            os.close(fd)

    @staticmethod
    def _write_holder(fd: int) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.time(),
            "command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[
                :200
            ],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)


def _read_holder(fd: int) -> LockHolder | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
        return LockHolder(
            int(data["pid"]), str(data["host"]), float(data["since"]), data["command"]
        )
    except (ValueError, TypeError, KeyError):
        return None  # being written right now, or not ours
