"""The per-run lock: one holder at a time, across processes; a killed holder's lock is free."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from audit.locking import RunBusy, RunLock
from audit.sandbox.server import SandboxServer
from tests.durable_support import (
    PYTHON,
    ROOT,
    audit_command,
    plan,
    process_env,
)
from tests.store_backends import open_store, store_args

HOLDER = """
import sys, time
from pathlib import Path
from audit.locking import RunLock
lock = RunLock(Path(sys.argv[1]), sys.argv[2])
assert lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""


def _hold_in_child(directory: Path, run_id: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [PYTHON, "-c", HOLDER, str(directory), run_id],
        stdout=subprocess.PIPE,
        text=True,
        env=process_env(),
        cwd=ROOT,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    return child


def _end(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        child.kill()
    child.wait()
    if child.stdout is not None:
        child.stdout.close()


def test_second_holder_in_the_same_process_is_refused(tmp_path: Path) -> None:
    first, second = RunLock(tmp_path, "r1"), RunLock(tmp_path, "r1")
    assert first.acquire()
    assert not second.acquire()
    assert RunLock(tmp_path, "r2").acquire()  # other runs are independent
    first.release()
    assert second.acquire()
    second.release()


def test_holder_is_named_and_busy_error_says_who(tmp_path: Path) -> None:
    child = _hold_in_child(tmp_path, "run-x")
    try:
        lock = RunLock(tmp_path, "run-x")
        holder = lock.holder()
        assert holder is not None
        assert holder.pid == child.pid
        with pytest.raises(RunBusy, match=f"pid {child.pid}"), lock:
            pass
    finally:
        _end(child)


def test_lock_of_a_killed_holder_is_taken_over_at_once(tmp_path: Path) -> None:
    child = _hold_in_child(tmp_path, "run-y")
    lock = RunLock(tmp_path, "run-y")
    assert not lock.acquire()
    os.kill(child.pid, signal.SIGKILL)
    _end(child)
    started = time.monotonic()
    assert lock.acquire(wait=5)
    assert time.monotonic() - started < 1.0  # no expiry to wait for
    assert lock.holder() is None  # we hold it; nobody else does
    lock.release()


def test_waiting_acquire_gets_the_lock_when_the_holder_exits(tmp_path: Path) -> None:
    child = _hold_in_child(tmp_path, "run-z")
    lock = RunLock(tmp_path, "run-z")
    subprocess.Popen(["sh", "-c", f"sleep 0.5; kill {child.pid}"]).wait()
    assert lock.acquire(wait=10)
    _end(child)
    lock.release()


def _three_runs(workspace: Path, plan_file: Path, store: list[str]) -> None:
    from tests.test_kill_resume import _detach

    for _ in range(3):
        _detach(workspace, plan_file, *store)


def _nothing_twice(truth: dict[str, Any]) -> None:
    assert truth["posts"]
    assert all(p["submissions"] == 1 for p in truth["posts"])
    assert all(len(p["notices"]) <= 1 for p in truth["posts"])


@pytest.mark.slow
def test_two_pollers_never_work_on_the_same_run(tmp_path: Path) -> None:
    """Two ``poll`` processes started together on one workspace of three runs: each run is
    carried by exactly one of them and skipped by the other; nothing is done twice. (On
    PostgreSQL, the test of pollers with workers below has two pollers race too.)"""
    with SandboxServer(_sandbox_config()) as server:
        workspace = tmp_path / "ws"
        store = store_args(workspace / "audit.sqlite")
        _three_runs(workspace, _plan_file(tmp_path, server.base_url), store)
        command = audit_command(workspace, *store, "poll", "--for", "4s", "--json")
        pollers = [
            subprocess.Popen(command, env=process_env(), stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        reports = [json.loads(p.communicate(timeout=60)[0]) for p in pollers]
        assert [p.returncode for p in pollers] == [0, 0]
        truth = server.platform.truth()
    results: dict[str, list[str]] = {}
    for report in reports:
        for item in report["runs"]:
            results.setdefault(item["run_id"], []).append(item["result"])
    assert len(results) == 3
    for outcomes in results.values():
        assert len(outcomes) == 2
        assert outcomes.count("busy") == 1  # one poller carried it, the other skipped it
    _nothing_twice(truth)


@pytest.mark.slow
@pytest.mark.both_stores
def test_pollers_and_workers_started_together_never_do_anything_twice(tmp_path: Path) -> None:
    """Two ``poll`` processes and two ``worker`` processes started together on one store of
    three runs: a poller holds a run alone, workers share theirs by leases, so a run is carried
    by one poller or by the workers, never both; the workers carry every run to its end (the
    pollers' among them, once they stop), nothing is posted or filed twice, and every run
    verifies."""
    scale = 14_400.0  # a 24 h deadline lasts 6 s; the pollers stop after 2 s
    with SandboxServer(_sandbox_config(scale)) as server:
        workspace = tmp_path / "ws"
        store = store_args(workspace / "audit.sqlite")
        _three_runs(workspace, _plan_file(tmp_path, server.base_url, scale), store)
        poll = audit_command(workspace, *store, "poll", "--for", "2s", "--json")
        work = audit_command(workspace, *store, "worker", "--lease", "2s", "--until-idle")
        processes = [
            subprocess.Popen(command, env=process_env(), stdout=subprocess.PIPE, text=True)
            for command in (poll, poll, work, work)
        ]
        outputs = [p.communicate(timeout=300)[0] for p in processes]
        assert [p.returncode for p in processes] == [0] * 4, outputs
        truth = server.platform.truth()
    _nothing_twice(truth)
    opened = open_store(workspace / "audit.sqlite")
    runs = opened.runs()
    assert len(runs) == 3 and {r.status for r in runs} == {"complete"}
    from tests.test_workers import _verified

    for run in runs:
        _verified(workspace, run.run_id, *store)


def _sandbox_config(scale: float = 2400.0) -> object:
    from audit.sandbox.moderation import default_config_path, load_sandbox_config

    return load_sandbox_config(default_config_path(), time_scale=scale)


def _plan_file(tmp_path: Path, base_url: str, scale: float = 2400.0) -> Path:
    from tests.durable_support import write_plan

    the_plan = plan(3, 1, base_url=base_url, window="PT1H", time_scale=scale)
    return write_plan(tmp_path / "plan.yaml", the_plan)
