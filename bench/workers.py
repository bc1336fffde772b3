"""Throughput of 1, 2 and 4 ``worker`` processes on one PostgreSQL store.

Starts a throwaway PostgreSQL server (``tests/pg_server.py``: initdb and postgres on a free
loopback port, ``fsync=off``) and, for each pass, a fresh database holding the same runs: one
run per reference sandbox, each sandbox its own ``platform-audit sandbox serve`` process (one
uvicorn process each, restarted for every pass with the same seed, so every pass meets the same
platform). Time is compressed so far that every look is due at once (as in
``bench/throughput.py``), so the workers are bound by their own work, the store and the
servers, never by the schedule. Then N ``platform-audit --store URL worker --until-idle``
processes carry the runs to the end.

Per pass it measures the exchanges the ledger holds over the steady part (the ledger's request
times, from the 5th to the 95th percentile of the pass's requests, so start-up and the last
stragglers are left out), the requests/s over the whole pass (first worker started to last
worker exited), the CPU seconds of the workers (by ``wait4``), of the sandboxes and of the
PostgreSQL server (postmaster and backends), the largest peak RSS of a worker (its ``VmHWM``,
sampled every 50 ms while it runs), and the 1-minute load average. Configurations are
interleaved (1, 2, 4, then 4, 2, 1, ...) because the CPU speed of a shared machine varies
between minutes; the scaling ratio is the median requests/s of N workers over the median of
one.

    python bench/workers.py [--probes 600] [--sandboxes 2] [--workers 1,2,4] [--repeat 2]

With ``--verify`` every run of every pass is verified afterwards (``platform-audit --store URL
verify RUN``, its wall and CPU seconds and peak RSS, sampled as for the workers, recorded):
the form for one large run,

    python bench/workers.py --probes 100000 --sandboxes 1 --workers 2 --repeat 1 \
        --max-probes 2000 --pass-timeout 7200 --verify --keep

``--keep`` leaves the server's folder (the cluster in ``data``, each pass's workspace beside
it) for a later look: start it again with ``postgres -D FOLDER/data -p PORT -k FOLDER``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from benchlib import load_average, machine, proc_cpu_seconds, proc_memory_mb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audit.clock import SystemClock  # noqa: E402
from audit.plan import Plan, PollingPolicy, Sample, Schedule, Target  # noqa: E402
from audit.runner import create_runs  # noqa: E402
from audit.sandbox.server import free_port, wait_ready  # noqa: E402
from audit.store_open import open_store  # noqa: E402
from tests.pg_server import PgServer, start_server  # noqa: E402

SCALE = 86400.0 * 20  # a 24 h deadline lasts 50 ms: every look is due almost at once
SEED = 11
LEASE = "10s"
PASS_TIMEOUT = 240.0  # by default, a pass that takes longer is a hung worker, not a figure


def env() -> dict[str, str]:
    values = dict(os.environ)
    values["PYTHONPATH"] = str(ROOT) + os.pathsep + values.get("PYTHONPATH", "")
    for name in ("PLATFORM_AUDIT_WORKSPACE", "PLATFORM_AUDIT_STORE"):
        values.pop(name, None)
    return values


def start_sandbox(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "audit", "sandbox", "serve", "--port", str(port)]
    command += ["--seed", str(SEED), "--time-scale", str(SCALE)]
    process = subprocess.Popen(
        command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_ready(f"http://127.0.0.1:{port}")
    return process


def the_plan(base_urls: list[str], probes: int) -> Plan:
    per_run = max(3, probes // len(base_urls))
    return Plan(
        name="workers",
        packs=["vn-superstition"],
        targets=[
            Target(name=f"sb{n}", base_url=url, rate_limit=None, concurrency=32)
            for n, url in enumerate(base_urls)
        ],
        seed=SEED,
        sample=Sample(violating_per_criterion=max(1, per_run // 3), controls_per_criterion=0),
        schedule=Schedule(submission_window="PT1S", jitter=0.0),
        polling=PollingPolicy(min_margin_seconds=0.0),
        time_scale=SCALE,
    )


def postgres_cpu_seconds(server: PgServer) -> float:
    """CPU seconds of the postmaster, its exited children (reaped) and its live backends."""
    ticks = os.sysconf("SC_CLK_TCK")
    postmaster = int((server.root / "data" / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime
        elif ppid == postmaster:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _peak_mb(pid: int) -> float:
    """A live child's peak RSS so far (``VmHWM``; 0 once it has exited). Sampled while it
    runs, not read from ``wait4``: see :func:`benchlib.peak_rss_mb`."""
    try:
        return proc_memory_mb(pid)[1]
    except (OSError, IndexError, ValueError):
        return 0.0


def request_times(url: str, workspace: Path) -> list[float]:
    store = open_store(workspace, url)
    try:
        times = [
            float(record.entry["started_at"])
            for run in store.runs()
            for record in store.exchanges(run.run_id)
        ]
    finally:
        store.close()
    return sorted(times)


def verify_runs(url: str, workspace: Path) -> list[dict[str, Any]]:
    """``verify`` of every run in the store, each in its own process: verdict, seconds, RSS."""
    store = open_store(workspace, url)
    try:
        run_ids = [run.run_id for run in store.runs()]
    finally:
        store.close()
    found = []
    for run_id in run_ids:
        command = [sys.executable, "-m", "audit", "--workspace", str(workspace)]
        command += ["--store", url, "verify", run_id]
        started = time.time()
        with tempfile.TemporaryFile() as out:
            process = subprocess.Popen(command, env=env(), stdout=out, stderr=subprocess.STDOUT)
            peak = 0.0
            while True:
                peak = max(peak, _peak_mb(process.pid))
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                time.sleep(0.05)
            out.seek(0)
            output = out.read().decode(errors="replace")
        found.append(
            {
                "run_id": run_id,
                "exit_code": os.waitstatus_to_exitcode(status),
                "first_line": output.splitlines()[0] if output else "",
                "wall_seconds": round(time.time() - started, 1),
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
                "peak_rss_mb": round(peak),
            }
        )
    return found


def one_pass(
    server: PgServer,
    workers: int,
    sandboxes: int,
    probes: int,
    max_probes: int,
    pass_timeout: float = PASS_TIMEOUT,
    verify: bool = False,
    keep: Path | None = None,
) -> dict[str, Any]:
    ports = [free_port() for _ in range(sandboxes)]
    served = [start_sandbox(port) for port in ports]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            workspace = Path(tmp)
            url = server.fresh_database()
            store = open_store(workspace, url)
            plan = the_plan([f"http://127.0.0.1:{p}" for p in ports], probes)
            planning = time.process_time()
            runs = create_runs(store, plan, None, SystemClock())
            plan_cpu = time.process_time() - planning
            planned = sum(len(store.probes(r.run_id)) for r in runs)
            store.close()
            command = [sys.executable, "-m", "audit", "--workspace", str(workspace)]
            command += ["--store", url, "--reports", str(workspace / "reports"), "worker"]
            command += ["--lease", LEASE, "--max-probes", str(max_probes), "--until-idle"]
            command += ["--format", "json"]
            sandbox_cpu = [proc_cpu_seconds(p.pid) for p in served]
            pg_cpu = postgres_cpu_seconds(server)
            started = time.time()
            processes = [
                subprocess.Popen(
                    command,
                    env=env(),
                    cwd=workspace,
                    stdout=subprocess.DEVNULL,
                    stderr=(workspace / f"worker{n}.log").open("wb"),
                )
                for n in range(workers)
            ]
            worker_cpu, worker_rss, codes = 0.0, 0.0, []
            waiting, give_up = list(processes), time.monotonic() + pass_timeout
            while waiting:
                for process in list(waiting):
                    worker_rss = max(worker_rss, _peak_mb(process.pid))
                    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                    if pid == 0:
                        continue
                    waiting.remove(process)
                    process.returncode = os.waitstatus_to_exitcode(status)
                    codes.append(process.returncode)
                    worker_cpu += usage.ru_utime + usage.ru_stime
                if waiting and time.monotonic() > give_up:
                    for process in waiting:
                        process.kill()
                        process.wait()
                    raise RuntimeError(
                        f"{len(waiting)} of {workers} worker(s) still running after "
                        f"{pass_timeout:g} s (--max-probes {max_probes}); killed"
                    )
                time.sleep(0.05)
            wall = time.time() - started
            load = load_average()
            pairs = zip(served, sandbox_cpu, strict=True)
            sandbox_used = sum(proc_cpu_seconds(p.pid) - c for p, c in pairs)
            pg_used = postgres_cpu_seconds(server) - pg_cpu
            if any(codes):
                logs = "".join(p.read_text()[-1500:] for p in workspace.glob("worker*.log"))
                raise RuntimeError(f"a worker exited with {codes}:\n{logs}")
            times = request_times(url, workspace)
            finished = open_store(workspace, url)
            statuses = sorted({r.status for r in finished.runs()})
            finished.close()
            verified = verify_runs(url, workspace) if verify else None
            with psycopg.connect(url) as conn:
                size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            if keep is not None:
                shutil.copytree(workspace, keep / f"workspace-{url.rsplit('/', 1)[1]}")
    finally:
        for process in served:
            process.terminate()
            process.wait(timeout=10)
    low, high = times[len(times) // 20], times[len(times) * 19 // 20]
    steady = len(times) * 9 // 10
    requests = len(times)
    return {
        "workers": workers,
        "probes": planned,
        "plan_cpu_seconds": round(plan_cpu, 1),
        "database_mb": round(int(size[0]) / 1e6, 1) if size else None,
        "requests": requests,
        "run_statuses": statuses,
        "wall_seconds": round(wall, 2),
        "requests_per_s_whole": round(requests / wall, 1),
        "requests_per_s_steady": round(steady / (high - low), 1) if high > low else None,
        "cpu_seconds": {
            "workers": round(worker_cpu, 2),
            "sandboxes": round(sandbox_used, 2),
            "postgresql": round(pg_used, 2),
        },
        "worker_cpu_ms_per_request": round(1000 * worker_cpu / requests, 2),
        "worker_peak_rss_mb": round(worker_rss),
        "postgresql_cpu_ms_per_request": round(1000 * pg_used / requests, 2),
        "load_average_1m_after": load,
        **({} if verified is None else {"verify": verified}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=600, help="probes over all runs")
    parser.add_argument("--sandboxes", type=int, default=2, help="sandbox processes, one run each")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument(
        "--max-probes", type=int, default=50, help="each worker's --max-probes (probes held)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="passes of each worker count")
    parser.add_argument(
        "--pass-timeout", type=float, default=PASS_TIMEOUT, help="seconds before a pass is hung"
    )
    parser.add_argument("--verify", action="store_true", help="verify every run after its pass")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the server's folder (cluster and every pass's workspace) and print its path",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    if args.probes < 3 * args.sandboxes or args.repeat < 1 or not counts or min(counts) < 1:
        parser.error("need --probes >= 3 per sandbox, --repeat >= 1 and worker counts >= 1")
    server = start_server()
    passes: list[dict[str, Any]] = []
    try:
        for repeat in range(args.repeat):
            order = counts if repeat % 2 == 0 else list(reversed(counts))
            for workers in order:
                one = one_pass(
                    server,
                    workers,
                    args.sandboxes,
                    args.probes,
                    args.max_probes,
                    args.pass_timeout,
                    args.verify,
                    server.root if args.keep else None,
                )
                passes.append(one)
                print(json.dumps(passes[-1]), file=sys.stderr, flush=True)
    finally:
        server.stop(keep=args.keep)
        if args.keep:
            print(json.dumps({"kept": str(server.root), "port": server.port}), file=sys.stderr)
    medians: dict[str, float] = {}
    for workers in counts:
        rates = [p["requests_per_s_steady"] or p["requests_per_s_whole"] for p in passes
                 if p["workers"] == workers]  # fmt: skip
        medians[str(workers)] = round(statistics.median(rates), 1)
    base = medians[str(counts[0])]
    result = {
        "benchmark": "workers",
        "machine": machine(),
        "load_average_1m": load_average(),
        "sandboxes": args.sandboxes,
        "lease": LEASE,
        "max_probes": args.max_probes,
        "repeats": args.repeat,
        "passes": passes,
        "requests_per_s_steady_median": medians,
        "requests_per_s_per_worker": {n: round(r / int(n), 1) for n, r in medians.items()},
        "scaling_ratio_to_first": {n: round(r / base, 2) for n, r in medians.items()},
        "goal": "4 workers >= 3x one worker where the CPUs allow",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
