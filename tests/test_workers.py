"""Worker processes carrying a run together against a real sandbox server, on SQLite.

As in tests/test_kill_resume.py, one run is planned once (``run --detach``) and copied to a
second workspace aimed at a second sandbox with the same seed: the twin draws the same fate
for every probe. The reference is carried by one ``resume`` process; the other by 1 or 4
``worker`` processes, or by two of which one is killed with SIGKILL mid-run. What must hold:
no probe lost (each finished, with an outcome, once on the platform), none submitted twice,
no notice filed twice, every post withdrawn, the ledger one unbroken chain (``verify``), and
the outcomes of the reference probe by probe (with a killed worker, a probe whose deadline
fell while its lease was lapsing may be inconclusive, never a wrong definite outcome).
Time is compressed 1600x (a 24 h deadline lasts 54 s); leases last 2 s.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from audit.store import Store
from tests.durable_support import (
    audit_command,
    copy_store,
    plan,
    process_env,
    served_sandbox,
    stop,
    write_plan,
)
from tests.test_kill_resume import SCALE, SEED, _check_platform, _compare, _detach, _point_at

LEASE = 2.0


def _worker(workspace: Path, number: int) -> subprocess.Popen[bytes]:
    command = audit_command(
        workspace, "worker", "--lease", f"{LEASE:g}s", "--until-idle", "--format", "json"
    )
    log = (workspace / f"worker{number}.log").open("ab")
    try:
        return subprocess.Popen(command, env=process_env(), stdout=log, stderr=log, cwd=workspace)
    finally:
        log.close()


def _twins(tmp_path: Path, first: str, second: str) -> tuple[str, Path, Path]:
    the_plan = plan(6, 2, base_url=first, window="PT12H", time_scale=SCALE)
    plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
    reference, workers = tmp_path / "ref", tmp_path / "workers"
    run_id = _detach(reference, plan_file)
    copy_store(reference / "audit.sqlite", workers / "audit.sqlite")
    _point_at(workers / "audit.sqlite", second)
    return run_id, reference, workers


def _resume(workspace: Path, run_id: str) -> subprocess.Popen[bytes]:
    command = audit_command(workspace, "resume", run_id, "--format", "json")
    return subprocess.Popen(
        command, env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _no_duplicate_notice(truth: dict[str, Any]) -> None:
    for post in truth["posts"]:
        assert len(post["notices"]) <= 1, post["idempotency_key"]
        assert not post["notice_repeats"], post["idempotency_key"]


def _verified(workspace: Path, run_id: str) -> None:
    verified = subprocess.run(
        audit_command(workspace, "verify", run_id),
        env=process_env(),
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _logs(workspace: Path) -> str:
    return "\n".join(p.read_text()[-2000:] for p in sorted(workspace.glob("worker*.log")))


def _check_run(workspace: Path, run_id: str, truth: dict[str, Any]) -> Store:
    store = Store(workspace / "audit.sqlite")
    assert store.run(run_id).status == "complete", _logs(workspace)
    _check_platform(store, run_id, truth)
    _no_duplicate_notice(truth)
    with store.transaction() as db:  # every lease and place ended with its worker
        assert db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0
    _verified(workspace, run_id)
    return store


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 4])
def test_workers_end_as_one_process_does(tmp_path: Path, workers: int) -> None:
    with served_sandbox(SEED, SCALE) as first, served_sandbox(SEED, SCALE) as second:
        run_id, ref_ws, workers_ws = _twins(tmp_path, first.base_url, second.base_url)
        reference = _resume(ref_ws, run_id)
        processes = [_worker(workers_ws, n) for n in range(workers)]
        codes = [p.wait(timeout=300) for p in processes]
        assert reference.wait(timeout=300) in (0, 1, 3)
        stop(reference)
        ref_truth, workers_truth = first.truth(), second.truth()
    assert codes == [0] * workers, _logs(workers_ws)
    ref_store = Store(ref_ws / "audit.sqlite")
    _check_platform(ref_store, run_id, ref_truth)
    store = _check_run(workers_ws, run_id, workers_truth)
    assert _compare(ref_store, store, run_id) == []  # probe by probe, the same outcomes
    finished = _logs(workers_ws).count(f"run {run_id}: finished")
    assert finished == 1, "the run was completed (and its scorecard written) once"


def _leases(store_file: Path) -> dict[str, tuple[str, float]]:
    try:
        with sqlite3.connect(f"file:{store_file}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("SELECT probe_id, owner, until FROM leases").fetchall()
    except sqlite3.OperationalError:  # busy
        return {}
    return {str(r[0]): (str(r[1]), float(r[2])) for r in rows}


def _wait_for(condition: Any, processes: list[subprocess.Popen[bytes]], timeout: float) -> Any:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        for process in processes:
            assert process.poll() is None, "a worker ended before the moment it was waited for"
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s")


@pytest.mark.slow
def test_a_killed_workers_probes_are_taken_over_within_a_lease(tmp_path: Path) -> None:
    with served_sandbox(SEED, SCALE) as first, served_sandbox(SEED, SCALE) as second:
        run_id, ref_ws, workers_ws = _twins(tmp_path, first.base_url, second.base_url)
        reference = _resume(ref_ws, run_id)
        victim, survivor = _worker(workers_ws, 0), _worker(workers_ws, 1)
        store_file = workers_ws / "audit.sqlite"
        mark = f":{victim.pid}:"

        def victim_watching() -> dict[str, tuple[str, float]]:
            held = {p: v for p, v in _leases(store_file).items() if mark in v[0]}
            with sqlite3.connect(f"file:{store_file}?mode=ro", uri=True, timeout=5) as db:
                watching = db.execute("SELECT COUNT(*) FROM probes WHERE state = 'watching'")
                return held if held and watching.fetchone()[0] >= 6 else {}

        _wait_for(victim_watching, [victim, survivor], timeout=120)
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.time()
        victim.wait()
        held = {p: v for p, v in _leases(store_file).items() if mark in v[0]}  # as it died
        assert held, "the victim held no lease when it was killed"
        lapse = max(until for _, until in held.values())

        def taken_over() -> float | None:
            now = time.time()
            leases = _leases(store_file)
            mine = [p for p in held if p in leases and mark not in leases[p][0]]
            return now if mine else None

        took = _wait_for(taken_over, [survivor], timeout=60)
        assert survivor.wait(timeout=300) == 0, _logs(workers_ws)
        assert reference.wait(timeout=300) in (0, 1, 3)
        stop(reference)
        ref_truth, workers_truth = first.truth(), second.truth()
    delay = took - killed_at
    print(
        f"takeover {delay:.2f} s after SIGKILL (lease {LEASE:g} s; its lease ran to "
        f"{lapse - killed_at:.2f} s after)"
    )
    assert took >= lapse - 0.05, "a probe was taken before its lease lapsed"
    assert delay <= LEASE * 1.25 + 1.0, "not taken over within one lease (and a claim interval)"
    ref_store = Store(ref_ws / "audit.sqlite")
    _check_platform(ref_store, run_id, ref_truth)
    store = _check_run(workers_ws, run_id, workers_truth)
    excused = _compare(ref_store, store, run_id)
    # only a probe whose deadline fell in the takeover may differ (and then only inconclusive)
    assert len(excused) <= len(held)
