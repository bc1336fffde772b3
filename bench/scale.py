"""Scale: one run of 100,000 probes on the virtual clock, killed mid-way and resumed.

Each phase runs in its own process, so each has its own peak memory:

1. **plan** — ``create_runs``: synthesise the probes and store them (peak RSS, seconds);
2. **run** — the engine against the reference sandbox in the same process, on the virtual clock
   (as ``bench/virtual_day.py``); this process watches it (resident memory as it goes, from
   /proc) and sends it SIGKILL once ``--kill-at`` of the probes are finished;
3. **resume** — a fresh process continues the run to its end: the time from the process start
   to its first request to the platform (imports, opening the store, loading the probes with
   work left), and to completion. A real platform keeps its posts across the auditor's crash;
   the simulated one lived in the killed process, so the resumed process first rebuilds it from
   the run's evidence ledger (every post, notice and withdrawal, replayed through the sandbox's
   own moderation code at the recorded times). That rebuild is timed apart and not counted;
4. **report** — build the scorecard from the store and render all five formats (goal <= 5 s),
   as ``platform-audit report`` does, each format timed.

Then the store's size on disk. Prints every figure as JSON, with each goal beside it: peak
RSS of every phase <= 300 MB, store <= 8 kB per probe, report <= 5 s of CPU counting its
imports (the report phase's process CPU from start to end); flatness (peak RSS at 100,000
probes within 1.25x of 10,000) is read across two runs of this script.

    python bench/scale.py [--probes 100000] [--kill-at 0.5] [--workspace DIR]
    python bench/scale.py --probes 100000 --kill-at 0.1 --no-resume   # memory plateau, report
    python bench/scale.py --phase report --workspace DIR   # re-time the report only

With ``--no-resume`` the run is killed and not resumed: the report is then of the run as far
as it went (all probes planned, the finished share measured).

Without ``--workspace`` the store goes to a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    Stopwatch,
    in_process_transport,
    load_average,
    machine,
    peak_rss_mb,
    proc_cpu_seconds,
    proc_memory_mb,
    sandbox_config,
    sent_entry,
    virtual_plan,
)

from audit.clock import VirtualClock
from audit.sandbox.app import SandboxPlatform
from audit.sandbox.moderation import Submission, apply_notice, decide_post
from audit.store import Store

SCRIPT = Path(__file__).resolve()
REPORT_FORMATS = ["html", "md", "json", "junit", "csv"]


def _store(workspace: Path) -> Store:
    return Store(workspace / "audit.sqlite")


def _only_run(store: Store) -> str:
    runs = store.runs()
    if len(runs) != 1:
        raise SystemExit(f"expected one run in the workspace, found {len(runs)}")
    return runs[0].run_id


def _emit(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


# phases, each in its own process ----------------------------------------------------------------
def phase_plan(workspace: Path, probes: int) -> None:
    from audit.runner import create_runs

    clock = VirtualClock()
    watch = Stopwatch()
    store = _store(workspace)
    (prepared,) = create_runs(store, virtual_plan(probes), None, clock)
    store.close()
    _emit(
        {
            "probes": prepared.probes,
            "seconds": round(watch.wall(), 2),
            "cpu_seconds": round(watch.cpu(), 2),
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


def phase_run(workspace: Path) -> None:
    from audit.runner import execute_run

    store = _store(workspace)
    run_id = _only_run(store)
    clock = VirtualClock(store.run(run_id).created_at)
    transport, _ = in_process_transport(clock)
    asyncio.run(execute_run(store, run_id, clock, transport=transport))
    store.close()


class _FirstRequest(httpx.ASGITransport):
    """The in-process transport, noting when the first request goes out."""

    first_at: float | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.first_at is None:
            self.first_at = time.time()
        return await super().handle_async_request(request)


def _last_time(store: Store, run_id: str) -> float:
    return max(float(record.entry["ended_at"]) for record in store.exchanges(run_id))


def rebuild_platform(store: Store, run_id: str, platform: SandboxPlatform) -> int:
    """Replay the posts, notices and withdrawals of the run's ledger into a fresh simulated
    platform, through the sandbox's moderation code, at the recorded times. Returns the number
    of replayed exchanges."""
    replayed = 0
    for record in store.exchanges(run_id):
        if record.entry["method"] in ("POST", "DELETE"):
            _replay(platform, sent_entry(store, run_id, record))
            replayed += 1
    return replayed


def _replay(platform: SandboxPlatform, entry: dict[str, Any]) -> None:
    path = httpx.URL(entry["url"]).path.rstrip("/").split("/")
    status, at = entry["status"], float(entry["started_at"])
    if entry["method"] == "POST" and path[-1] == "posts":
        body = json.loads(entry["request_body"])
        key = entry.get("request_headers", {}).get("idempotency-key")
        sub = Submission(body["text"], body.get("modality", "text"), key)
        if status == 201:
            post_id = json.loads(entry["response_body"])["id"]
            record, blocked = decide_post(platform.config, post_id, sub, at)
            assert not blocked, f"post {post_id} was accepted but replays as blocked"
            platform.posts[post_id] = record
            if key:
                platform.by_key[key] = post_id
        elif status == 200 and key in platform.by_key:
            platform.posts[platform.by_key[key]].submissions += 1
        elif status == 422:
            platform.blocked.append({"idempotency_key": key, "at": at, "modality": sub.modality})
    elif entry["method"] == "POST" and path[-1] == "reports" and status in (200, 202):
        post = platform.posts[path[-2]]
        key = entry.get("request_headers", {}).get("idempotency-key")
        if status == 200 and key in post.notice_keys:  # a filing sent again: answered as before
            post.notice_repeats += 1
            return
        kind = json.loads(entry["request_body"]).get("kind", "notice")
        apply_notice(platform.config, post, kind, at)
        if key is not None:
            post.notice_keys[key] = len(post.notices) - 1
    elif entry["method"] == "DELETE" and status == 204:
        platform.posts[path[-1]].withdrawn_at = at


def phase_resume(workspace: Path, spawned_at: float) -> None:
    from audit.runner import execute_run
    from audit.sandbox.app import create_app

    imported_at = time.time()
    store = _store(workspace)
    run_id = _only_run(store)
    clock = VirtualClock(_last_time(store, run_id))
    rebuild = Stopwatch()
    app = create_app(sandbox_config(), clock)
    replayed = rebuild_platform(store, run_id, app.state.platform)
    rebuild_s = rebuild.wall()
    transport = _FirstRequest(app)
    watch = Stopwatch()
    started_at = time.time()
    asyncio.run(execute_run(store, run_id, clock, transport=transport))
    store.close()
    first = (transport.first_at or time.time()) - started_at
    _emit(
        {
            "imports_seconds": round(imported_at - spawned_at, 2),
            "rebuild_platform_seconds": round(rebuild_s, 2),
            "replayed_exchanges": replayed,
            "load_to_first_request_seconds": round(first, 2),
            "to_first_request_seconds": round(imported_at - spawned_at + first, 2),
            "to_completion_seconds": round(imported_at - spawned_at + watch.wall(), 2),
            "run_seconds": round(watch.wall(), 2),
            "run_cpu_seconds": round(watch.cpu(), 2),
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


def phase_report(workspace: Path) -> None:
    """What ``platform-audit report`` does (``audit.workspace.write_reports``), each format
    timed: the scorecard from the store, then each file rendered and written."""
    from audit.report.registry import render_formats
    from audit.workspace import cyclic_gc_paused, scorecard_for

    imports = Stopwatch()  # made after the imports at the top of this script
    store = _store(workspace)
    run_id = _only_run(store)
    out = workspace / "reports" / run_id
    out.mkdir(parents=True, exist_ok=True)
    watch = Stopwatch()
    formats: dict[str, float] = {}
    with cyclic_gc_paused():  # as write_reports
        card = scorecard_for(store, run_id)
        build_s = watch.wall()
        for fmt in REPORT_FORMATS:
            started = time.perf_counter()
            render_formats(card, [fmt], out)
            formats[fmt] = round(time.perf_counter() - started, 2)
    store.close()
    _emit(
        {
            "probes": len(card.probes),
            "verdicts": {c.id: str(c.verdict) for c in card.criteria},
            "build_seconds": round(build_s, 2),
            "render_seconds": formats,
            "total_seconds": round(watch.wall(), 2),
            "total_cpu_seconds": round(watch.cpu(), 2),
            # the whole process: interpreter start, every import, build, render, write
            "process_cpu_seconds": round(sum(os.times()[:2]), 2),
            "imports_seconds": round(imports.wall() - watch.wall(), 2),
            "file_mb": {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(out.iterdir())},
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


# the orchestrating process --------------------------------------------------------------------
def _child(phase: str, workspace: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(SCRIPT), "--phase", phase, "--workspace", str(workspace)]
    return subprocess.Popen([*command, *extra], stdout=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"a phase failed (exit {process.returncode})")
    parsed: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return parsed


def _finished(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT COUNT(*) FROM probes WHERE state = 'finished'").fetchone()
    return int(row[0])


def watch_and_kill(workspace: Path, probes: int, kill_at: float) -> dict[str, Any]:
    """Run the engine in a child, sample its memory, SIGKILL it once ``kill_at`` is done."""
    started = time.perf_counter()
    child = _child("run", workspace)
    db = sqlite3.connect(f"file:{workspace / 'audit.sqlite'}?mode=ro", uri=True)
    samples: list[tuple[float, float]] = []
    peak = cpu = 0.0
    killed = False
    next_sample = 0.0
    while child.poll() is None:
        time.sleep(0.5)
        try:
            done = _finished(db) / probes
            rss, hwm = proc_memory_mb(child.pid)
            cpu = proc_cpu_seconds(child.pid)
        except (sqlite3.OperationalError, FileNotFoundError, ProcessLookupError):
            continue
        if hwm == 0:  # exited, not yet reaped: a zombie's status has no memory lines
            continue
        peak = max(peak, hwm)
        if done >= next_sample:
            samples.append((round(done, 3), round(rss)))
            next_sample = done + 0.1
        if 0 < kill_at <= done:
            os.kill(child.pid, signal.SIGKILL)
            killed = True
            break
    child.wait()
    finished = _finished(db)
    db.close()
    return {
        "killed": killed,
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(cpu, 2),
        "finished_probes_at_kill": finished,
        "peak_rss_mb": round(peak),
        "rss_mb_by_share_finished": samples,
    }


def store_size_mb(workspace: Path) -> dict[str, float]:
    files = [workspace / f"audit.sqlite{suffix}" for suffix in ("", "-wal", "-shm")]
    return {f.name: round(f.stat().st_size / 2**20, 1) for f in files if f.exists()}


def store_counts(workspace: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(workspace / "audit.sqlite")) as db:
        return {
            table: int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("probes", "observations", "exchanges")
        }


def orchestrate(workspace: Path, probes: int, kill_at: float, resume: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "scale",
        "machine": machine(),
        "load_average_1m_at_start": load_average(),
        "kill_at": kill_at,
    }
    result["plan"] = _result(_child("plan", workspace, "--probes", str(probes)))
    planned = int(result["plan"]["probes"])
    result["probes"] = planned
    result["run"] = watch_and_kill(workspace, planned, kill_at)
    if result["run"]["killed"] and resume:
        result["resume"] = _result(_child("resume", workspace, "--spawned-at", str(time.time())))
    result["store_mb"] = store_size_mb(workspace)
    result["store_rows"] = store_counts(workspace)
    result["report"] = _result(_child("report", workspace))
    peaks = [result[p]["peak_rss_mb"] for p in ("run", "resume") if p in result]
    result["engine_peak_rss_mb"] = max(peaks)
    size = sum(result["store_mb"].values()) * 2**20
    result["store_kb_per_probe"] = round(size / planned / 1024, 2)
    result["goals"] = {
        "peak_rss_mb_each_phase": 300,
        "store_kb_per_probe": 8.0,
        "report_process_cpu_seconds": 5.0,
        "report_peak_rss_mb": 300,
    }
    report = result["report"]
    result["met"] = {
        "peak_rss_each_phase": all(
            result[p]["peak_rss_mb"] <= 300
            for p in ("plan", "run", "resume", "report")
            if p in result
        ),
        "store_kb_per_probe": result["store_kb_per_probe"] <= 8.0,
        "report_cpu": report["process_cpu_seconds"] <= 5.0,
        "report_rss": report["peak_rss_mb"] <= 300,
    }
    result["load_average_1m_at_end"] = load_average()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=100_000)
    parser.add_argument(
        "--kill-at", type=float, default=0.5, help="share finished at the kill; 0: no kill"
    )
    parser.add_argument("--workspace", type=Path, help="keep the store here (default: temp)")
    parser.add_argument(
        "--no-resume", action="store_true", help="after the kill, report on the run as it stands"
    )
    parser.add_argument(
        "--phase",
        choices=["all", "plan", "run", "resume", "report"],
        default="all",
        help="all (default); 'report' re-times the report of an existing --workspace; the "
        "others are the child processes",
    )
    parser.add_argument("--spawned-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase != "all":
        if args.workspace is None:
            parser.error(f"--phase {args.phase} needs --workspace")
        phases = {
            "plan": lambda: phase_plan(args.workspace, args.probes),
            "run": lambda: phase_run(args.workspace),
            "resume": lambda: phase_resume(args.workspace, args.spawned_at),
            "report": lambda: phase_report(args.workspace),
        }
        phases[args.phase]()
        return
    if args.probes < 6 or not 0 <= args.kill_at < 1:
        parser.error("--probes must be at least 6 and --kill-at in [0, 1)")
    if args.workspace is not None:
        args.workspace.mkdir(parents=True, exist_ok=True)
        if (args.workspace / "audit.sqlite").exists():
            parser.error(f"{args.workspace} already holds a store; give an empty folder")
        result = orchestrate(args.workspace, args.probes, args.kill_at, not args.no_resume)
        print(json.dumps(result, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        result = orchestrate(Path(tmp), args.probes, args.kill_at, not args.no_resume)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
