"""Engine throughput against the raw ceiling, on loopback.

Starts the reference sandbox as its own process (``python -m audit sandbox serve``), then, in
the same run and against the same server:

1. the engine audits N probes with a time scale so large that every look is due at once, so the
   engine is bound by its own work and the server, not by the schedule;
2. a bare httpx async loop replays exactly the requests the engine made (same methods, paths and
   bodies, from the engine's evidence ledger) with the same concurrency.

It prints requests per second for both and their ratio (goal: engine / bare >= 0.8). The pair
of passes is repeated (``--repeat``, default 3) and the median ratio reported, with the CPU
seconds the engine process and the server process used in each pass: on a machine with few
cores the two processes compete, and whichever saturates its core sets the pace.

    python bench/throughput.py [--probes 600] [--concurrency 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from benchlib import load_average, machine, proc_cpu_seconds, sent_entry

from audit.clock import SystemClock
from audit.plan import Plan, PollingPolicy, Sample, Schedule, Target
from audit.runner import create_runs, execute_run
from audit.sandbox.server import free_port, wait_ready
from audit.store import Store

SCALE = 86400.0 * 20  # a 24 h deadline lasts 50 ms: every look is due almost at once


def start_sandbox(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "audit",
        "sandbox",
        "serve",
        "--port",
        str(port),
        "--time-scale",
        str(SCALE),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}")
    return process


def engine_pass(
    base_url: str, probes: int, concurrency: int, workdir: Path
) -> tuple[float, list[dict[str, Any]]]:
    per_criterion = max(1, probes // 3)
    plan = Plan(
        name="throughput",
        packs=["vn-superstition"],
        targets=[Target(name="sb", base_url=base_url, rate_limit=None, concurrency=concurrency)],
        seed=1,
        sample=Sample(violating_per_criterion=per_criterion, controls_per_criterion=0),
        schedule=Schedule(submission_window="PT1S", jitter=0.0),
        polling=PollingPolicy(min_margin_seconds=0.0),
        time_scale=SCALE,
    )
    store = Store(workdir / "audit.sqlite")
    clock = SystemClock()
    (prepared,) = create_runs(store, plan, None, clock)
    started = time.perf_counter()
    asyncio.run(execute_run(store, prepared.run_id, clock))
    elapsed = time.perf_counter() - started
    requests = [sent_entry(store, prepared.run_id, r) for r in store.exchanges(prepared.run_id)]
    store.close()
    return elapsed, requests


async def bare_pass(base_url: str, requests: list[dict[str, Any]], concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one(entry: dict[str, Any]) -> None:
            url = entry["url"] + (f"?{entry['query']}" if entry.get("query") else "")
            body = entry.get("request_body", "").encode("utf-8") or None
            async with gate:
                await client.request(
                    entry["method"], url, content=body, headers={"content-type": "application/json"}
                )

        started = time.perf_counter()
        await asyncio.gather(*(one(e) for e in requests))
        return time.perf_counter() - started


def measured_pair(base_url: str, server_pid: int, probes: int, concurrency: int) -> dict[str, Any]:
    """One engine pass and the bare replay of its requests, with both processes' CPU time."""
    server_cpu, own_cpu = proc_cpu_seconds(server_pid), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        engine_s, requests = engine_pass(base_url, probes, concurrency, Path(tmp))
    engine_cpu = time.process_time() - own_cpu
    server_engine_cpu = proc_cpu_seconds(server_pid) - server_cpu
    server_cpu, own_cpu = proc_cpu_seconds(server_pid), time.process_time()
    bare_s = asyncio.run(bare_pass(base_url, requests, concurrency))
    return {
        "requests": len(requests),
        "engine_seconds": round(engine_s, 2),
        "engine_requests_per_s": round(len(requests) / engine_s, 1),
        "engine_cpu_seconds": {
            "engine": round(engine_cpu, 2),
            "server": round(server_engine_cpu, 2),
        },
        "bare_seconds": round(bare_s, 2),
        "bare_requests_per_s": round(len(requests) / bare_s, 1),
        "bare_cpu_seconds": {
            "loop": round(time.process_time() - own_cpu, 2),
            "server": round(proc_cpu_seconds(server_pid) - server_cpu, 2),
        },
        "ratio_engine_to_bare": round(bare_s / engine_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="pairs of passes; median reported")
    args = parser.parse_args()
    if args.probes < 3 or args.repeat < 1:
        parser.error("--probes must be at least 3 and --repeat at least 1")
    port = free_port()
    server = start_sandbox(port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        pairs = [
            measured_pair(base_url, server.pid, args.probes, args.concurrency)
            for _ in range(args.repeat)
        ]
    finally:
        server.terminate()
        server.wait(timeout=10)
    ratios = [p["ratio_engine_to_bare"] for p in pairs]
    result = {
        "benchmark": "throughput",
        "machine": machine(),
        "load_average_1m": load_average(),
        "probes": args.probes - args.probes % 3 or 3,
        "concurrency": args.concurrency,
        "repeats": args.repeat,
        "pairs": pairs,
        "engine_requests_per_s_median": statistics.median(
            p["engine_requests_per_s"] for p in pairs
        ),
        "bare_requests_per_s_median": statistics.median(p["bare_requests_per_s"] for p in pairs),
        "ratio_engine_to_bare_median": statistics.median(ratios),
        "goal_ratio": 0.8,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
