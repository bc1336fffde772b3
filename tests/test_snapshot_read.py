"""A snapshot read (what ``verify``, ``export`` and the scorecard read a run in) sees one state
of the store and holds no write lock: a run still writing goes on while a long ``verify`` of
it reads, and the reader does not see what the run wrote meanwhile."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from audit.clock import VirtualClock
from audit.runner import create_runs
from tests.evidence_support import tiny_plan
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores


def test_a_snapshot_read_sees_one_state_and_lets_a_writer_go_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    reader, writer = open_store(path), open_store(path)
    create_runs(writer, tiny_plan(2, 1), None, VirtualClock())
    wrote = threading.Event()

    def write_a_second_run() -> None:
        create_runs(writer, tiny_plan(2, 1), None, VirtualClock(1_800_000_000.0))
        wrote.set()

    with reader.snapshot_read():
        before = [run.run_id for run in reader.runs()]
        thread = threading.Thread(target=write_a_second_run)
        thread.start()
        # the writer's transaction commits while the snapshot is open (SQLite's write lock was
        # once taken by a snapshot, and a verify of a running run stopped the run's writes)
        assert wrote.wait(timeout=20), "the writer waited for the snapshot read to end"
        assert [run.run_id for run in reader.runs()] == before
    thread.join()
    assert len(reader.runs()) == len(before) + 1
