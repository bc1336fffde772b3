"""A dead target ends the run, loudly: real ``platform-audit`` processes against a real sandbox.

* a wrong port or a wrong token is caught by the preflight request before any probe is sent:
  exit 4 in seconds, the reason on stderr, a FAILED scorecard, nothing posted;
* a sandbox killed mid-run: the run ends once the target has given no working answer for
  ``--give-up-after``, exit 4 with the connection failure named, the run failed (never a
  COMPLIANT, never "complete"), the posts still up counted with the commands that continue or
  undo them; the sandbox restarted on its state file, ``resume`` carries the run to its end and
  every outcome agrees with the platform's ground truth;
* without a terminal, a progress line at least every interval, and the last deadline once
  everything is posted.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.engine import ProgressEvent
from audit.sandbox.server import free_port
from audit.store import Store
from audit.ui import Progress
from tests.durable_support import (
    audit_command,
    plan,
    posts_by_key,
    process_env,
    stop,
    write_plan,
)
from tests.test_kill_resume import _check_platform

SCALE = 2400.0  # a 24 h deadline lasts 36 s: long enough to kill the target mid-run
SEED = 31


@contextmanager
def sandbox_on(port: int, state: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """``sandbox serve`` on a fixed loopback port and state file, until stopped (by PID)."""
    command = audit_command(Path("unused"), "sandbox", "serve", "--port", str(port))
    command += ["--seed", str(SEED), "--time-scale", str(SCALE), "--state", str(state), *extra]
    process = subprocess.Popen(
        command, env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base_url = f"http://127.0.0.1:{port}"
    give_up = time.monotonic() + 30
    while True:
        assert process.poll() is None, "sandbox exited"
        try:
            if httpx.get(f"{base_url}/_sandbox/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < give_up, "sandbox not healthy"
        time.sleep(0.05)
    try:
        yield process
    finally:
        stop(process)


def _scorecard(reports: Path, run_id: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((reports / run_id / "scorecard.json").read_text())
    return data


def _run_id(stdout: str) -> str:
    line = next(x for x in stdout.splitlines() if x.startswith("run "))
    return line.split()[1].rstrip(":")


def _agrees_with_the_platform(store: Store, run_id: str, truth: dict[str, Any]) -> None:
    """No outcome contradicts the platform's ground truth: every removal counted is one the
    platform made, no post counted up was down before its deadline (or its last look)."""
    posts = posts_by_key(truth)
    for row in store.probes(run_id):
        post = posts.get(row.probe_id)
        if post is None:
            continue
        removed = post["removal_at"] is not None and (
            post["withdrawn_at"] is None or post["removal_at"] <= post["withdrawn_at"]
        )
        if row.outcome in ("removed_in_time", "removed_late", "over_removed"):
            assert removed, (row.probe_id, row.outcome, post)
        if row.outcome in ("survived", "kept"):
            assert not removed or (
                row.outcome == "survived" and post["removal_at"] > (row.deadline_at or 0)
            ), (row.probe_id, row.outcome, post)


def _audit(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = audit_command(tmp_path / "ws", "--reports", str(tmp_path / "reports"), *args)
    return subprocess.run(
        command, env=process_env(), capture_output=True, text=True, timeout=timeout
    )


def test_wrong_port_is_caught_before_any_probe(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    plan_file = write_plan(
        tmp_path / "plan.yaml",
        plan(4, 1, base_url=f"http://127.0.0.1:{port}", time_scale=SCALE),
    )
    started = time.monotonic()
    done = _audit(tmp_path, "run", "--plan", str(plan_file), "--format", "json")
    elapsed = time.monotonic() - started
    assert done.returncode == 4, done.stderr
    assert "before any probe is sent" in done.stderr
    assert "ConnectError" in done.stderr or "refused" in done.stderr.lower()
    assert elapsed < 60  # the retries of one request, not a deadline's worth of waiting
    run_id = _run_id(done.stdout)
    card = _scorecard(tmp_path / "reports", run_id)
    assert card["standing"] == "FAILED" and card["exit_code"] == 4
    store = Store(tmp_path / "ws" / "audit.sqlite")
    assert all(row.post_id is None for row in store.probes(run_id))
    assert store.action_counts(run_id).get("submit", 0) == 0


def test_wrong_token_is_caught_before_any_probe(tmp_path: Path) -> None:
    config = tmp_path / "sandbox.yaml"
    from audit.sandbox.moderation import default_config_path

    config.write_text(default_config_path().read_text() + "\ntoken: the-right-one\n")
    port = free_port()
    with sandbox_on(port, tmp_path / "state.sqlite", "--config", str(config)):
        the_plan = plan(4, 1, base_url=f"http://127.0.0.1:{port}", time_scale=SCALE)
        target = the_plan.targets[0].model_copy(update={"token_env": "SANDBOX_TOKEN"})
        the_plan = the_plan.model_copy(update={"targets": [target]})
        plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
        command = audit_command(tmp_path / "ws", "--reports", str(tmp_path / "reports"))
        command += ["run", "--plan", str(plan_file), "--format", "json"]
        env = {**process_env(), "SANDBOX_TOKEN": "a-wrong-one"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        posts = httpx.get(f"http://127.0.0.1:{port}/_sandbox/truth", timeout=10).json()["posts"]
    assert done.returncode == 4, done.stderr
    assert "HTTP 401" in done.stderr and "before any probe is sent" in done.stderr
    assert "a-wrong-one" not in done.stderr + done.stdout
    assert posts == []


def _count(store_file: Path, query: str) -> int:
    if not store_file.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{store_file}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # tables not made yet, or busy
        return 0


def _wait(
    condition: Callable[[], bool], what: str, process: subprocess.Popen[str], timeout: float = 120
) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < give_up, f"no {what} within {timeout} s"
        time.sleep(0.05)


def test_target_killed_mid_run_ends_the_run_loudly_and_resume_finishes_it(
    tmp_path: Path,
) -> None:
    port, state = free_port(), tmp_path / "state.sqlite"
    the_plan = plan(8, 2, base_url=f"http://127.0.0.1:{port}", window="PT2H", time_scale=SCALE)
    plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
    store_file = tmp_path / "ws" / "audit.sqlite"
    command = audit_command(tmp_path / "ws", "--reports", str(tmp_path / "reports"))
    command += ["run", "--plan", str(plan_file), "--format", "json", "--give-up-after", "3s"]
    with sandbox_on(port, state):
        auditing = subprocess.Popen(
            command, env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        watching = "SELECT COUNT(*) FROM probes WHERE state = 'watching'"
        # some probes posted and watched: mid-run
        _wait(lambda: _count(store_file, watching) >= 10, "ten probes watched", auditing, 90)
    # the sandbox is gone (stopped by PID); the run must end by itself, failed
    stdout, stderr = auditing.communicate(timeout=120)
    assert auditing.returncode == 4, stderr
    assert "ended: the target gave no working answer" in stderr
    assert "ConnectError" in stderr
    assert "still up on sandbox" in stderr and "platform-audit resume" in stderr
    run_id = _run_id(stdout)
    store = Store(store_file)
    assert store.run(run_id).status == "failed"
    card = _scorecard(tmp_path / "reports", run_id)
    assert card["standing"] == "FAILED" and card["overall_verdict"] != "COMPLIANT"
    assert card["exit_code"] == 4
    store.close()

    # the platform comes back on its state file: resume carries the run to its end
    with sandbox_on(port, state):
        resumed = _audit(tmp_path, "resume", run_id, "--format", "json", timeout=300)
        truth = httpx.get(f"http://127.0.0.1:{port}/_sandbox/truth", timeout=10).json()
    assert resumed.returncode in (0, 1, 3), resumed.stderr
    store = Store(store_file)
    assert store.run(run_id).status == "complete"
    _check_platform(store, run_id, truth)  # none lost, none twice, all withdrawn, intervals
    _agrees_with_the_platform(store, run_id, truth)


def test_progress_lines_without_a_terminal() -> None:
    stream = io.StringIO()
    now = [1_000.0]
    with Progress(
        3, "run r1", last_deadline=lambda: 1_060.0, now=lambda: now[0], every=0.01, stream=stream
    ) as progress:
        progress.update(ProgressEvent("a", "submitting", None))
        give_up = time.monotonic() + 30
        while stream.getvalue().count("\n") < 3 and time.monotonic() < give_up:
            time.sleep(0.01)
        for probe_id in "abc":
            progress.update(ProgressEvent(probe_id, "watching", None))
        progress.update(ProgressEvent("c", "finished", "removed_in_time"))
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3
    assert lines[0].startswith("run r1: 0/3 finished")
    assert "the last deadline falls at 1970-01-01T00:17:40.000Z (in 1 min)" in lines[0]
    told = [x for x in lines if "every probe is posted" in x]
    assert len(told) == 1 and "the last deadline falls at" in told[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a POSIX process model")
def test_resume_of_a_demo_run_says_its_sandbox_is_gone(tmp_path: Path) -> None:
    from audit.clock import VirtualClock
    from audit.demo import demo_plan
    from audit.runner import create_runs

    store = Store(tmp_path / "ws" / "audit.sqlite")
    the_plan = demo_plan(f"http://127.0.0.1:{free_port()}", 3, 2, 1)
    (prepared,) = create_runs(store, the_plan, None, VirtualClock(1_000.0))
    store.close()
    done = _audit(tmp_path, "resume", prepared.run_id)
    assert done.returncode == 4
    assert "demo run" in done.stderr and "is gone" in done.stderr
    assert "Traceback" not in done.stderr


def test_sigkill_while_submitting_to_an_unreachable_target_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    """The target goes away mid-submission; the tool keeps trying (its give-up time is long)
    and is killed with SIGKILL while its submissions fail; the target comes back on its state
    file and `resume` finishes the run: no probe lost, none posted twice, every outcome agrees
    with the platform's ground truth."""
    port, state = free_port(), tmp_path / "state.sqlite"
    the_plan = plan(8, 2, base_url=f"http://127.0.0.1:{port}", window="PT2H", time_scale=SCALE)
    plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
    store_file = tmp_path / "ws" / "audit.sqlite"
    command = audit_command(tmp_path / "ws", "--reports", str(tmp_path / "reports"))
    command += ["run", "--plan", str(plan_file), "--format", "json", "--give-up-after", "10m"]
    with sandbox_on(port, state):
        auditing = subprocess.Popen(
            command, env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        posted = "SELECT COUNT(*) FROM probes WHERE post_id IS NOT NULL"
        _wait(lambda: _count(store_file, posted) >= 2, "two posts", auditing)
    # the target is gone: wait until submissions to it are failing, then kill the tool
    failing = (
        "SELECT COUNT(*) FROM observations WHERE action IN ('submit', 'resubmit', 'lookup')"
        " AND result = 'error'"
    )
    _wait(lambda: _count(store_file, failing) >= 1, "a failed submission", auditing)
    os.kill(auditing.pid, signal.SIGKILL)
    auditing.communicate(timeout=30)
    run_id = _count_run_id(store_file)
    with sandbox_on(port, state):
        resumed = _audit(tmp_path, "resume", run_id, "--format", "json", timeout=300)
        truth = httpx.get(f"http://127.0.0.1:{port}/_sandbox/truth", timeout=10).json()
    assert resumed.returncode in (0, 1, 3), resumed.stderr
    store = Store(store_file)
    _check_platform(store, run_id, truth)  # none lost, none twice, all withdrawn, intervals
    _agrees_with_the_platform(store, run_id, truth)


def _count_run_id(store_file: Path) -> str:
    with sqlite3.connect(f"file:{store_file}?mode=ro", uri=True, timeout=5) as db:
        return str(db.execute("SELECT run_id FROM runs").fetchone()[0])


def test_a_progress_line_without_a_deadline_reader_says_nothing_of_deadlines() -> None:
    stream = io.StringIO()
    progress = Progress(2, "run r2", now=lambda: 0.0, stream=stream, terminal=False)
    progress.update(ProgressEvent("a", "watching", None))
    assert progress.line() == "run r2: 0/2 finished, 1 watching"
