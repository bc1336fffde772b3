"""Worker processes carrying a run together against a real sandbox server, on SQLite and
PostgreSQL.

As in tests/test_kill_resume.py, one run is planned once (``run --detach``) and copied to a
second workspace aimed at a second sandbox with the same seed: the twin draws the same fate
for every probe. The reference is carried by one ``resume`` process; the other by 1 or 4
``worker`` processes, or by two of which one is killed with SIGKILL mid-run, or (on
PostgreSQL) by 1 or 4 each killed with SIGKILL at random points and replaced. What must hold:
no probe lost (each finished, with an outcome, once on the platform), none submitted twice,
no notice filed twice, every post withdrawn, the ledger one unbroken chain (``verify``), and
the outcomes of the reference probe by probe (with a killed worker, a probe whose deadline
fell while its lease was lapsing may be inconclusive, never a wrong definite outcome).
Time is compressed 1600x (a 24 h deadline lasts 54 s; the probes go out over 6 h, 13.5 s);
leases last 2 s.
"""

from __future__ import annotations

import bisect
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from audit.store import Store
from audit.store_leases import leases_of
from audit.store_protocol import RunStore
from tests.durable_support import (
    audit_command,
    copy_store,
    plan,
    process_env,
    served_sandbox,
    stop,
    write_plan,
)
from tests.store_backends import open_store, store_args
from tests.test_kill_resume import (
    SCALE,
    SEED,
    _check_platform,
    _compare,
    _count,
    _detach,
    _exchanges,
    _point_at,
)

LEASE = 2.0
WINDOW = "PT6H"  # the probes go out over 13.5 s of real time, then 54 s to their deadlines


def _worker(workspace: Path, number: int, *options: str) -> subprocess.Popen[bytes]:
    """A worker with ``--until-idle``; ``options``: the main command's (``--store URL``),
    then the worker's own (``--max-probes N``)."""
    store = list(options[:2]) if options[:1] == ("--store",) else []
    own = list(options[len(store) :])
    command = audit_command(
        workspace,
        *store,
        "worker",
        "--lease",
        f"{LEASE:g}s",
        "--until-idle",
        "--format",
        "json",
        *own,
    )
    log = (workspace / f"worker{number}.log").open("ab")
    try:
        return subprocess.Popen(command, env=process_env(), stdout=log, stderr=log, cwd=workspace)
    finally:
        log.close()


def _twins(tmp_path: Path, first: str, second: str) -> tuple[str, Path, Path]:
    the_plan = plan(6, 2, base_url=first, window=WINDOW, time_scale=SCALE)
    plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
    reference, workers = tmp_path / "ref", tmp_path / "workers"
    run_id = _detach(reference, plan_file)
    copy_store(reference / "audit.sqlite", workers / "audit.sqlite")
    _point_at(workers / "audit.sqlite", second)
    return run_id, reference, workers


def _resume(workspace: Path, run_id: str, *store: str) -> subprocess.Popen[bytes]:
    command = audit_command(workspace, *store, "resume", run_id, "--format", "json")
    return subprocess.Popen(
        command, env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _no_duplicate_notice(store: RunStore, run_id: str, truth: dict[str, Any]) -> None:
    """Each post got at most one filing; a filing sent again (the platform de-duplicates by
    key, and counts it) only where the store records an earlier intent of it, one whose
    answer a stopped worker never had."""
    history = store.observations(run_id)
    for post in truth["posts"]:
        key = post["idempotency_key"]
        assert len(post["notices"]) <= 1, key
        intents = [o for o in history.get(key, []) if o.result == "sending"]
        assert post["notice_repeats"] <= max(0, len(intents) - 1), key


def _succeeds(workspace: Path, *args: str) -> None:
    """A command of the workspace that must exit 0 (its output shown when it does not)."""
    done = subprocess.run(
        audit_command(workspace, *args), env=process_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _verified(workspace: Path, run_id: str, *store: str) -> None:
    _succeeds(workspace, *store, "verify", run_id)


def _logs(workspace: Path) -> str:
    return "\n".join(p.read_text()[-2000:] for p in sorted(workspace.glob("worker*.log")))


def _check_run(
    workspace: Path, run_id: str, truth: dict[str, Any], store: RunStore | None = None
) -> RunStore:
    store = store or Store(workspace / "audit.sqlite")
    assert store.run(run_id).status == "complete", _logs(workspace)
    _check_platform(store, run_id, truth)
    _no_duplicate_notice(store, run_id, truth)
    assert leases_of(store).held() == {}  # every lease ended with its worker
    url = () if isinstance(store, Store) else ("--store", store.location)
    _verified(workspace, run_id, *url)
    return store


@pytest.mark.slow
def test_one_and_four_workers_end_as_one_process_does(tmp_path: Path) -> None:
    """The reference, a twin carried by one worker and a twin carried by four, side by side
    (each against its own sandbox of the same seed), so the three take one run's time."""
    with (
        served_sandbox(SEED, SCALE) as first,
        served_sandbox(SEED, SCALE) as second,
        served_sandbox(SEED, SCALE) as third,
    ):
        run_id, ref_ws, one_ws = _twins(tmp_path, first.base_url, second.base_url)
        four_ws = tmp_path / "four"
        copy_store(ref_ws / "audit.sqlite", four_ws / "audit.sqlite")
        _point_at(four_ws / "audit.sqlite", third.base_url)
        reference = _resume(ref_ws, run_id)
        carried = {
            one_ws: [_worker(one_ws, 0)],
            four_ws: [_worker(four_ws, n) for n in range(4)],
        }
        codes = {ws: [p.wait(timeout=300) for p in ps] for ws, ps in carried.items()}
        assert reference.wait(timeout=300) in (0, 1, 3)
        stop(reference)
        ref_truth = first.truth()
        truths = {one_ws: second.truth(), four_ws: third.truth()}
    ref_store = Store(ref_ws / "audit.sqlite")
    _check_platform(ref_store, run_id, ref_truth)
    for workspace, processes in carried.items():
        assert codes[workspace] == [0] * len(processes), _logs(workspace)
        store = _check_run(workspace, run_id, truths[workspace])
        assert _compare(ref_store, store, run_id) == []  # probe by probe, the same outcomes
        finished = _logs(workspace).count(f"run {run_id}: finished")
        assert finished == 1, "the run was completed (and its scorecard written) once"


def _leases(store_file: Path) -> dict[str, tuple[str, float]]:
    try:
        with sqlite3.connect(f"file:{store_file}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("SELECT probe_id, owner, until FROM leases").fetchall()
    except sqlite3.OperationalError:  # busy
        return {}
    return {str(r[0]): (str(r[1]), float(r[2])) for r in rows}


def _first_step_after(
    store_file: Path, probe_ids: Iterable[str], after: float
) -> tuple[float, str] | None:
    """When the first observation of any of ``probe_ids`` started after ``after``, and whose
    (None: none yet, or the store busy)."""
    ids = sorted(probe_ids)
    marks = ", ".join("?" * len(ids))
    try:
        with sqlite3.connect(f"file:{store_file}?mode=ro", uri=True, timeout=5) as db:
            first = db.execute(
                f"SELECT started_at, probe_id FROM observations"
                f" WHERE probe_id IN ({marks}) AND started_at > ? ORDER BY started_at LIMIT 1",
                (*ids, after),
            ).fetchone()
    except sqlite3.OperationalError:  # busy
        return None
    return None if first is None else (float(first[0]), str(first[1]))


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

        def taken_over() -> tuple[float, str] | None:
            # another worker's lease on one of them, seen now; or, since a lease taken over
            # may be released again within milliseconds (the probe's next step is beyond the
            # claim horizon) and so never be seen by this poll, the first step recorded on one
            # of them after the kill, which only a worker holding its lease can record
            now = time.time()
            leases = _leases(store_file)
            for p in held:
                if p in leases and mark not in leases[p][0]:
                    return now, p
            return _first_step_after(store_file, held, killed_at)

        took, taken = _wait_for(taken_over, [survivor], timeout=60)
        assert survivor.wait(timeout=300) == 0, _logs(workers_ws)
        assert reference.wait(timeout=300) in (0, 1, 3)
        stop(reference)
        ref_truth, workers_truth = first.truth(), second.truth()
    delay = took - killed_at
    print(
        f"takeover {delay:.2f} s after SIGKILL (lease {LEASE:g} s; that probe's lease ran to "
        f"{held[taken][1] - killed_at:.2f} s after)"
    )
    # the probe seen taken over was taken after its own lease ran out
    assert took >= held[taken][1] - 0.05, "a probe was taken before its lease lapsed"
    assert delay <= LEASE * 1.25 + 1.0, "not taken over within one lease (and a claim interval)"
    ref_store = Store(ref_ws / "audit.sqlite")
    _check_platform(ref_store, run_id, ref_truth)
    store = _check_run(workers_ws, run_id, workers_truth)
    excused = _compare(ref_store, store, run_id)
    # only a probe whose deadline fell in the takeover may differ (and then only inconclusive)
    assert len(excused) <= len(held)


def _point_at_pg(url: str, base_url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE runs SET target_json = jsonb_set(target_json::jsonb, '{base_url}',"
            " to_jsonb(%s::text))::text, plan_json = jsonb_set(plan_json::jsonb,"
            " '{targets,0,base_url}', to_jsonb(%s::text))::text",
            (base_url, base_url),
        )


@dataclass
class _Crew:
    """The workers carrying one twin, each killed with SIGKILL once the twin has recorded a
    random number of exchanges more (at random points of the work, whatever this machine's
    speed) and replaced at once, until the workers end by themselves."""

    workspace: Path
    url: str
    size: int
    rng: random.Random
    live: list[subprocess.Popen[bytes]] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    kills: int = 0
    started: int = 0
    target: int = 0

    def start(self) -> None:
        self.live.append(_worker(self.workspace, self.started, "--store", self.url))
        self.started += 1

    def exchanges(self, run_id: str) -> int:
        return _exchanges(self.workspace / "audit.sqlite", run_id)

    def aim(self, run_id: str) -> None:
        self.target = self.exchanges(run_id) + self.rng.randint(1, 2 * KILL_STEPS)

    def step(self, run_id: str) -> bool:
        """Reap the workers that ended, kill one when the target is reached; True while any
        worker of the crew runs."""
        for process in [p for p in self.live if p.poll() is not None]:
            self.live.remove(process)
            self.codes.append(process.wait())
        if self.live and self.exchanges(run_id) >= self.target:
            victim = self.rng.choice(self.live)
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            self.live.remove(victim)
            self.kills += 1
            self.start()
            self.aim(run_id)
        return bool(self.live)


KILL_STEPS = 5  # a worker is killed after 5.5 exchanges of its twin on average


@pytest.mark.slow
def test_one_and_four_workers_killed_at_random_points_on_postgresql_end_as_one_process_does(
    tmp_path: Path, pg_server: Any
) -> None:
    """On PostgreSQL, the reference carried by one ``resume`` process; a twin by one worker
    and a twin by four, side by side, each worker killed with SIGKILL at random points of the
    work and replaced at once (a replacement takes the dead worker's probes once its lease
    lapses). Nothing lost, nothing posted or filed twice, the chain verifies, and probe by
    probe the reference's outcomes, where only the differences a dead process cannot avoid
    (see tests/test_kill_resume.py) may make a probe inconclusive."""
    from audit.store_pg import PostgresStore
    from tests import store_backends

    store_backends.use("postgresql", pg_server)
    rng = random.Random(int(os.environ.get("KILL_SEED", "20261204")))
    stores: list[PostgresStore] = []
    try:
        ref_ws = tmp_path / "ref"
        with (
            served_sandbox(SEED, SCALE) as first,
            served_sandbox(SEED, SCALE) as second,
            served_sandbox(SEED, SCALE) as third,
        ):
            the_plan = plan(6, 2, base_url=first.base_url, window=WINDOW, time_scale=SCALE)
            plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
            ref_url = store_backends.store_url(ref_ws / "audit.sqlite")
            run_id = _detach(ref_ws, plan_file, "--store", ref_url)
            crews = []
            for name, size, sandbox in (("one", 1, second), ("four", 4, third)):
                workspace = tmp_path / name
                store_backends.copy_store(ref_ws / "audit.sqlite", workspace / "audit.sqlite")
                url = store_backends.store_url(workspace / "audit.sqlite")
                _point_at_pg(url, sandbox.base_url)
                crews.append(_Crew(workspace, url, size, random.Random(rng.random())))
            reference = _resume(ref_ws, run_id, "--store", ref_url)
            for crew in crews:
                crew.aim(run_id)
                for _ in range(crew.size):
                    crew.start()
            give_up = time.monotonic() + 600
            running = [crew.step(run_id) for crew in crews]  # every crew steps each time
            while any(running):
                assert time.monotonic() < give_up, "the workers did not end within 600 s"
                time.sleep(0.02)
                running = [crew.step(run_id) for crew in crews]
            assert reference.wait(timeout=300) in (0, 1, 3)
            stop(reference)
            ref_truth = first.truth()
            truths = {crews[0].workspace: second.truth(), crews[1].workspace: third.truth()}
        stores.append(PostgresStore(ref_url, ref_ws))
        _check_platform(stores[0], run_id, ref_truth)
        for crew in crews:
            assert set(crew.codes) == {0}, _logs(crew.workspace)
            stores.append(PostgresStore(crew.url, crew.workspace))
            store = _check_run(crew.workspace, run_id, truths[crew.workspace], stores[-1])
            excused = _compare(stores[0], store, run_id)
            print(
                f"{crew.size} worker(s): {crew.kills} kills, {crew.started} started, "
                f"{len(excused)} excused, {crew.exchanges(run_id)} exchanges"
            )
            assert crew.kills >= 10, crew.kills
    finally:
        for opened in stores:
            opened.close()
        store_backends.reset()


@pytest.mark.slow
@pytest.mark.both_stores
def test_cleanup_after_all_four_workers_were_killed_leaves_nothing_up(tmp_path: Path) -> None:
    """Four workers killed with SIGKILL at once mid-run (some probes watched, some still to
    submit), their leases still running: ``cleanup`` withdraws every post of the run, by the
    sandbox's ground truth, and leaves nothing due."""
    with served_sandbox(SEED, SCALE) as sandbox:
        the_plan = plan(6, 2, base_url=sandbox.base_url, window=WINDOW, time_scale=SCALE)
        workspace = tmp_path / "ws"
        store_file = workspace / "audit.sqlite"
        store = store_args(store_file)
        run_id = _detach(workspace, write_plan(tmp_path / "plan.yaml", the_plan), *store)
        workers = [_worker(workspace, n, *store) for n in range(4)]
        watched = "SELECT COUNT(*) FROM probes WHERE state = 'watching'"
        _wait_for(lambda: (_count(store_file, watched) or 0) >= 3, workers, timeout=120)
        for process in workers:
            os.kill(process.pid, signal.SIGKILL)
        for process in workers:
            process.wait()
        _succeeds(workspace, *store, "cleanup", run_id)
        truth = sandbox.truth()
    opened = open_store(store_file)
    keys = {row.probe_id for row in opened.probes(run_id)}
    posts = [p for p in truth["posts"] if p["idempotency_key"] in keys]
    assert posts, "nothing was posted"
    assert all(p["withdrawn_at"] is not None for p in posts)
    assert all(p["submissions"] == 1 for p in posts)
    assert opened.probes_up(run_id) == []
    assert opened.next_due_time(run_id) is None


@pytest.mark.slow
@pytest.mark.both_stores
def test_a_targets_rate_limit_holds_across_four_workers(tmp_path: Path) -> None:
    """A target allowing 10 requests a second, carried by four workers at once: their
    requests share the target's pace through the store, so no one-second window of the whole
    run's ledger holds more than 11 request starts (the tool's own pace, never the platform's
    clock: the deadlines run from the accepted attempts)."""
    scale = 86400.0 * 20  # every look due at once: the rate limit alone sets the pace
    with served_sandbox(SEED, scale) as sandbox:
        the_plan = plan(
            10, 2, base_url=sandbox.base_url, window="PT1S", rate_limit=10.0, time_scale=scale
        )
        workspace = tmp_path / "ws"
        store = store_args(workspace / "audit.sqlite")
        run_id = _detach(workspace, write_plan(tmp_path / "plan.yaml", the_plan), *store)
        # at most 6 probes each, so all four hold some of the run's 36 at once
        workers = [_worker(workspace, n, *store, "--max-probes", "6") for n in range(4)]
        owners, give_up = 0, time.monotonic() + 300
        while any(process.poll() is None for process in workers):
            assert time.monotonic() < give_up, "the workers did not end within 300 s"
            held = "SELECT COUNT(DISTINCT owner) FROM leases"
            owners = max(owners, _count(workspace / "audit.sqlite", held) or 0)
            time.sleep(0.05)
        assert [process.wait() for process in workers] == [0] * 4, _logs(workspace)
    opened = open_store(workspace / "audit.sqlite")
    assert opened.run(run_id).status == "complete"
    starts = sorted(float(r.entry["started_at"]) for r in opened.exchanges(run_id))
    assert len(starts) > 100
    busiest = max(bisect.bisect_left(starts, t + 1.0) - i for i, t in enumerate(starts))
    print(f"busiest second: {busiest} of {len(starts)} request starts; {owners} workers at once")
    assert owners >= 3, "the workers did not share the run"
    assert busiest <= 11


@pytest.mark.slow
def test_a_worker_stopped_by_sigterm_ends_its_leases_and_another_finishes_the_run(
    tmp_path: Path,
) -> None:
    scale = 14_400.0  # what is tested does not wait on deadlines: a 24 h deadline lasts 6 s
    with served_sandbox(SEED, scale) as sandbox:
        the_plan = plan(6, 2, base_url=sandbox.base_url, window=WINDOW, time_scale=scale)
        workspace = tmp_path / "ws"
        run_id = _detach(workspace, write_plan(tmp_path / "plan.yaml", the_plan))
        first = _worker(workspace, 0)
        store_file = workspace / "audit.sqlite"
        mark = f":{first.pid}:"
        _wait_for(lambda: any(mark in o for o, _ in _leases(store_file).values()), [first], 120)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0, _logs(workspace)
        assert _leases(store_file) == {}, "a lease outlived its stopped worker"
        second = _worker(workspace, 1)
        assert second.wait(timeout=300) == 0, _logs(workspace)
        truth = sandbox.truth()
    _check_run(workspace, run_id, truth)


def test_a_worker_whose_probes_are_held_by_its_other_run_waits_instead_of_spinning(
    tmp_path: Path,
) -> None:
    """Two runs, a --max-probes smaller than one run: while one run's probes fill the worker,
    the other's session must wait for room (a claim interval), not loop without yielding to
    the event loop, which starved every request and the SIGTERM handler."""
    scale = 86400.0 * 20
    with served_sandbox(SEED, scale) as sandbox:
        the_plan = plan(6, 0, base_url=sandbox.base_url, window="PT1S", time_scale=scale)
        twin = the_plan.targets[0].model_copy(update={"name": "sandbox-2"})
        the_plan = the_plan.model_copy(update={"targets": [the_plan.targets[0], twin]})
        workspace = tmp_path / "ws"
        plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
        _detach(workspace, plan_file)
        command = audit_command(
            workspace, "worker", "--lease", "2s", "--max-probes", "4", "--until-idle"
        )
        done = subprocess.run(
            command, env=process_env(), cwd=workspace, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        assert done.stdout.decode().count(": finished;") == 2
    store = Store(workspace / "audit.sqlite")
    try:
        runs = store.runs()
        assert len(runs) == 2 and all(r.status == "complete" for r in runs)
        assert all(p.outcome is not None for r in runs for p in store.probes(r.run_id))
    finally:
        store.close()
