"""SIGKILL at random points of a real run, resumed each time, against a real sandbox server.

One stored run is planned once (``run --detach``) and copied to a second workspace: the twin has
the same run id, so the same probes and idempotency keys, and against a fresh sandbox with the
same seed the platform draws the same fate for every probe. The reference twin runs to its end
uninterrupted; the other is killed with SIGKILL at random points of its work (submission,
notices, looks, withdrawals) and resumed each time, until a ``resume`` ends by itself. Time is
compressed 1600x (a 24 h deadline lasts 54 s; the submission window of 12 h, 27 s).

What must hold:

* no probe lost: every probe finished, with an outcome, and appears exactly once on the platform
  (posted or blocked at upload);
* none submitted twice: the sandbox saw one submission per idempotency key, and as many posts
  as the store has accepted probes; every post was withdrawn;
* the same verdicts: probe by probe, the same outcome as the reference, and criterion by
  criterion the same verdict. The differences allowed are the two a dead auditor cannot
  avoid, each an ``inconclusive`` probe, never a wrong definite outcome: when the process was
  down across a probe's deadline (no look in the last ``margin`` before it), the removal cannot
  be placed on either side of the deadline; and when it was killed between a proactive probe's
  accepted POST and its commit, and the lookup on restart does not say when the platform
  received the post (the sandbox's answer for a post it has already removed), the clock's start
  is lost. Every removal interval must contain the true removal time.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from audit.outcomes import Outcome, look_window
from audit.polling import PollingPolicy
from audit.store import ObservationRow, ProbeRow
from audit.store_protocol import RunStore
from audit.workspace import scorecard_for
from tests import store_backends
from tests.durable_support import (
    audit_command,
    copy_store,
    plan,
    posts_by_key,
    process_env,
    served_sandbox,
    stop,
    write_plan,
)
from tests.store_backends import open_store, raw_sql

pytestmark = pytest.mark.both_stores

SCALE = 1600.0
SEED = 147
KILLS = 20
STEPS = 5  # a resume is killed after 5.5 exchanges on average: about 30 kills in a run


def _detach(workspace: Path, plan_file: Path, *store: str) -> str:
    out = subprocess.run(
        audit_command(workspace, *store, "run", "--plan", str(plan_file), "--detach"),
        env=process_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()[1].rstrip(":")


def _point_at(store_file: Path, base_url: str) -> None:
    """Aim the copied run at the second sandbox (the only difference between the twins)."""
    if store_backends.current_kind() == "sqlite":
        sql = (
            "UPDATE runs SET target_json = json_set(target_json, '$.base_url', ?),"
            " plan_json = json_set(plan_json, '$.targets[0].base_url', ?)"
        )
    else:
        sql = (
            "UPDATE runs SET target_json = jsonb_set(target_json::jsonb, '{base_url}',"
            " to_jsonb(?::text))::text, plan_json = jsonb_set(plan_json::jsonb,"
            " '{targets,0,base_url}', to_jsonb(?::text))::text"
        )
    raw_sql(store_file, sql, base_url, base_url)


def _count(store_file: Path, query: str, *args: object) -> int | None:
    """A COUNT over the store, read while the run goes; None while it is busy or not made."""
    try:
        rows, _ = raw_sql(store_file, query, *args)
    except store_backends.db_errors():
        return None
    return int(str(rows[0][0]))


def _wait_for(
    store_file: Path, query: str, process: subprocess.Popen[bytes], timeout: float = 180
) -> None:
    """Until ``query`` (a COUNT over the store) is positive, while the run goes."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        assert process.poll() is None, "the run ended before the phase it was to be killed in"
        if (_count(store_file, query) or 0) > 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {query!r} within {timeout} s")


def _states(store_file: Path, run_id: str) -> Counter[str]:
    store = open_store(store_file)
    try:
        return Counter(store.state_counts(run_id))
    finally:
        store.close()


def _exchanges(store_file: Path, run_id: str) -> int:
    """How many exchanges with the platform the run has recorded (read while it goes)."""
    found = _count(store_file, store_backends.ledger_count_query(), run_id)
    return -1 if found is None else found


def _killed_series(
    workspace: Path, run_id: str, rng: random.Random
) -> tuple[list[Counter[str]], int]:
    """Resume, SIGKILL once the process has recorded a random number of exchanges of its own
    (1 to 2 * STEPS: kills fall at random points of the work, whatever this machine's speed),
    resume at once, ..., until a resume ends by itself."""
    kills: list[Counter[str]] = []
    command = audit_command(workspace, "resume", run_id, "--format", "json")
    env, log = process_env(), workspace / "resume.log"
    store_file = workspace / "audit.sqlite"
    while True:
        target = _exchanges(store_file, run_id) + rng.randint(1, 2 * STEPS)
        with log.open("ab") as errors:
            process = subprocess.Popen(command, env=env, stdout=errors, stderr=errors)
        while process.poll() is None and _exchanges(store_file, run_id) < target:
            time.sleep(0.02)
        if process.poll() is not None:
            return kills, process.wait()
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills.append(_states(store_file, run_id))


def _phase(states: Counter[str]) -> str:
    if states["planned"]:
        return "submission"
    if states["watching"] and states["finished"]:
        return "verdicts and withdrawals"
    if states["watching"]:
        return "watching"
    return "end"


def _looks(store: RunStore, run_id: str) -> dict[str, list[ObservationRow]]:
    return {
        probe_id: [o for o in history if o.action == "status"]
        for probe_id, history in store.observations(run_id).items()
    }


def _gap_at_deadline(row: ProbeRow, looks: list[ObservationRow]) -> bool:
    """No look in the last margin before the deadline: the auditor was down then."""
    assert row.deadline_at is not None
    margin = PollingPolicy().margin_seconds(row.deadline_s)
    start = row.deadline_at - margin - 0.05
    return not any(start <= o.started_at < row.deadline_at for o in looks)


def _receipt_lost(row: ProbeRow, history: list[ObservationRow]) -> bool:
    """Killed between a proactive probe's accepted POST and its commit, and found again by
    lookup where the platform does not say when it received the post (the sandbox's answer for
    a post it has already removed): the clock's start went with the process, so the probe is
    inconclusive, never judged from the tool's intent."""
    submissions = [o for o in history if o.action in ("submit", "resubmit", "lookup")]
    return (
        row.trigger == "proactive"
        and row.outcome == Outcome.INCONCLUSIVE
        and row.clock_start is None
        and row.note == "found after a restart; when the platform received it is not known"
        and [(o.action, o.result) for o in submissions][-1:] == [("lookup", "accepted")]
        and not any(o.result == "accepted" for o in submissions[:-1])
    )


def _compare(reference: RunStore, killed: RunStore, run_id: str) -> list[str]:
    """Probe-by-probe comparison; returns the probes whose difference the downtime explains."""
    ref_rows = {r.probe_id: r for r in reference.probes(run_id)}
    ref_looks, killed_looks = _looks(reference, run_id), _looks(killed, run_id)
    excused: list[str] = []
    for row in killed.probes(run_id):
        ref = ref_rows[row.probe_id]
        if row.outcome == ref.outcome:
            continue
        if _receipt_lost(row, killed.observations_of(run_id, row.probe_id)):
            excused.append(row.probe_id)
            continue
        pair = [(row, killed_looks.get(row.probe_id, [])), (ref, ref_looks.get(ref.probe_id, []))]
        gaps = [
            r
            for r, looks in pair
            if r.outcome == Outcome.INCONCLUSIVE and _gap_at_deadline(r, looks)
        ]
        assert gaps, f"{row.probe_id}: {ref.outcome} uninterrupted, {row.outcome} after kills"
        excused.append(row.probe_id)
    return excused


def _check_platform(store: RunStore, run_id: str, truth: dict[str, Any]) -> None:
    rows = store.probes(run_id)
    keys = Counter(p["idempotency_key"] for p in truth["posts"])
    keys.update(b["idempotency_key"] for b in truth["blocked"])
    assert {r.state for r in rows} == {"finished"}
    assert None not in {r.outcome for r in rows}
    assert all(keys[r.probe_id] == 1 for r in rows), "a probe lost or posted twice"
    assert all(p["submissions"] == 1 for p in truth["posts"]), "a probe submitted twice"
    assert len(truth["posts"]) == sum(1 for r in rows if r.post_id is not None)
    assert all(p["withdrawn_at"] is not None for p in truth["posts"]), "a probe left up"
    posts = posts_by_key(truth)
    looks = _looks(store, run_id)
    for row in rows:
        post = posts.get(row.probe_id)
        if post is None or row.clock_start is None or post["removal_at"] is None:
            continue
        up, down = look_window(looks.get(row.probe_id, []))
        if down is not None:  # the true removal lies in the measured interval
            known_up = up if up is not None else row.submitted_at
            assert known_up is not None
            assert known_up < post["removal_at"] <= down + 1e-3, row.probe_id


def _verdicts(store: RunStore, run_id: str) -> dict[str, str]:
    return {c.id: c.verdict.value for c in scorecard_for(store, run_id).criteria}


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(int(os.environ.get("KILL_SEED", "20261128")))
    with served_sandbox(SEED, SCALE) as first, served_sandbox(SEED, SCALE) as second:
        the_plan = plan(6, 2, base_url=first.base_url, window="PT12H", time_scale=SCALE)
        plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
        run_id = _detach(tmp_path / "ref", plan_file)
        copy_store(tmp_path / "ref" / "audit.sqlite", tmp_path / "killed" / "audit.sqlite")
        _point_at(tmp_path / "killed" / "audit.sqlite", second.base_url)
        command = audit_command(tmp_path / "ref", "resume", run_id, "--format", "json")
        reference_process = subprocess.Popen(
            command, env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        kills, code = _killed_series(tmp_path / "killed", run_id, rng)
        assert reference_process.wait(timeout=120) in (0, 1, 3)
        stop(reference_process)
        ref_truth, killed_truth = first.truth(), second.truth()
    assert code in (0, 1, 3), (tmp_path / "killed" / "resume.log").read_text()[-3000:]
    reference, killed = (
        open_store(tmp_path / "ref" / "audit.sqlite"),
        open_store(tmp_path / "killed" / "audit.sqlite"),
    )
    _check_platform(reference, run_id, ref_truth)
    _check_platform(killed, run_id, killed_truth)
    excused = _compare(reference, killed, run_id)
    ref_verdicts, killed_verdicts = _verdicts(reference, run_id), _verdicts(killed, run_id)
    touched = {killed.probe(run_id, p).criterion_id for p in excused}
    for criterion, verdict in ref_verdicts.items():
        pair = {verdict, killed_verdicts[criterion]}
        # a criterion with a probe the downtime made inconclusive may turn inconclusive itself,
        # never into the opposite definite verdict
        assert len(pair) == 1 or (criterion in touched and "INCONCLUSIVE" in pair), criterion
    seen = Counter(_phase(states) for states in kills)
    mid_step = sum(1 for s in kills if s["submitting"] or s["noticing"] or s["withdrawing"])
    summary = {
        "kills": len(kills),
        "phases": dict(seen),
        "left_mid_step": mid_step,
        "excused": len(excused),
        "exchanges": _exchanges(tmp_path / "killed" / "audit.sqlite", run_id),
        "seconds": round(time.monotonic() - started, 1),
    }
    print("kill test:", json.dumps(summary))
    assert len(kills) >= KILLS
    assert seen["submission"] >= 3
    assert seen["verdicts and withdrawals"] >= 5
    assert seen["watching"] + seen["verdicts and withdrawals"] >= 10


@pytest.mark.slow
def test_cleanup_after_sigkill_leaves_nothing_of_the_run_up(tmp_path: Path) -> None:
    """``run`` killed at random moments of three runs (during submission, notices and looks),
    then ``cleanup``: the sandbox's ground truth shows every post of the run withdrawn, and the
    run posts nothing more."""
    rng = random.Random(int(os.environ.get("KILL_SEED", "20261128")))
    with served_sandbox(SEED, SCALE) as sandbox:
        the_plan = plan(6, 2, base_url=sandbox.base_url, window="PT12H", time_scale=SCALE)
        plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
        # killed once the run has reached a phase (waited on, not timed: this machine's speed
        # varies), plus a random moment more: mid-submission, with notices going, while watching
        phases = [
            "SELECT COUNT(*) FROM probes WHERE post_id IS NOT NULL",
            "SELECT COUNT(*) FROM probes WHERE state = 'noticing' OR clock_start IS NOT NULL",
            "SELECT COUNT(*) FROM probes WHERE state = 'watching'",
        ]
        for number, query in enumerate(phases):
            workspace = tmp_path / f"ws{number}"
            command = audit_command(workspace, "run", "--plan", str(plan_file))
            process = subprocess.Popen(
                command, env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            _wait_for(workspace / "audit.sqlite", query, process)
            time.sleep(rng.uniform(0.0, 1.5))
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            store = open_store(workspace / "audit.sqlite")
            (run,) = store.runs()
            cleaned = subprocess.run(
                audit_command(workspace, "cleanup", run.run_id),
                env=process_env(),
                capture_output=True,
                text=True,
            )
            assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
            keys = {row.probe_id for row in store.probes(run.run_id)}
            posts = [p for p in sandbox.truth()["posts"] if p["idempotency_key"] in keys]
            assert posts, "nothing was posted"
            assert all(p["withdrawn_at"] is not None for p in posts)
            assert store.probes_up(run.run_id) == []
            assert store.next_due_time(run.run_id) is None
            store.close()
