"""Simulated time: wall seconds for a 24 h audit of 1,000 probes on the virtual clock.

The engine runs against the reference sandbox in the same process (httpx.ASGITransport, no
sockets), both on one virtual clock that jumps to the next due time whenever the engine would
sleep, so a day of platform time costs only the engine's, the simulated platform's and the
store's work. The plan: the bundled pack's three criteria (24 h deadlines, triggered by order,
proactively and by notice), a quarter of the probes controls, 35 % of violating text probes with
an evasion variant, submitted over one hour, each watched with the default polling policy (16
looks) until its verdict and then withdrawn. Every exchange goes to the evidence ledger and every
transition to the store, on disk, as in a real run.

Prints the wall and CPU seconds of planning and of the run (goal: run <= 10 s), with the
requests made and the machine's load, as JSON.

    python bench/virtual_day.py [--probes 1000] [--repeat 3]
    python bench/virtual_day.py --tree before=/tmp/base --tree after=. [--repeat 3]

``--tree LABEL=PATH`` (repeatable) runs each checkout's own ``bench/virtual_day.py`` in a fresh
process (one day each), interleaved repetition by repetition, so the machine's speed, which
varies from minute to minute, weighs on every checkout alike; it prints each one's CPU and wall
seconds and their ratio to the first tree's, repetition by repetition (e.g. the commit before a
change: ``git worktree add --detach /tmp/base HEAD~1``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import (
    Stopwatch,
    in_process_transport,
    load_average,
    machine,
    peak_rss_mb,
    virtual_plan,
)

from audit.clock import VirtualClock
from audit.runner import create_runs, execute_run
from audit.store import Store


def one_day(probes: int, folder: Path) -> dict[str, Any]:
    clock = VirtualClock()
    transport, _ = in_process_transport(clock)
    store = Store(folder / "audit.sqlite")
    try:
        planning = Stopwatch()
        (prepared,) = create_runs(store, virtual_plan(probes), None, clock)
        plan_wall, plan_cpu = planning.wall(), planning.cpu()
        started_at = clock.now()
        running = Stopwatch()
        asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport))
        run_wall, run_cpu = running.wall(), running.cpu()
        return {
            "probes": prepared.probes,
            "requests": store.exchange_count(prepared.run_id),
            "simulated_hours": round((clock.now() - started_at) / 3600, 1),
            "plan_seconds": round(plan_wall, 2),
            "plan_cpu_seconds": round(plan_cpu, 2),
            "run_seconds": round(run_wall, 2),
            "run_cpu_seconds": round(run_cpu, 2),
            "outcomes": store.outcome_counts(prepared.run_id),
        }
    finally:
        store.close()


def _day_in(tree: Path, probes: int) -> dict[str, Any]:
    """One day run by the checkout at ``tree`` (its own benchmark and package), in a child."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    script = tree / "bench" / "virtual_day.py"
    out = subprocess.run(
        [sys.executable, str(script), "--probes", str(probes), "--repeat", "1"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def side_by_side(trees: dict[str, Path], probes: int, repeat: int) -> dict[str, Any]:
    """Each tree's day, interleaved; ratios to the first tree's, per repetition."""
    days: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    loads = []
    for _ in range(repeat):
        loads.append(load_average())
        for label, tree in trees.items():
            days[label].append(_day_in(tree, probes))
    first = next(iter(trees))
    result: dict[str, Any] = {
        "benchmark": "virtual_day",
        "machine": machine(),
        "load_average_1m_each": loads,
        "probes": probes,
        "repeats": repeat,
        "trees": {label: str(tree) for label, tree in trees.items()},
    }
    for label, runs in days.items():
        cpu = [r["run_cpu_seconds_median"] for r in runs]
        wall = [r["run_seconds_median"] for r in runs]
        base_cpu = [r["run_cpu_seconds_median"] for r in days[first]]
        result[label] = {
            "requests": runs[0]["requests"],
            "run_cpu_seconds_each": cpu,
            "run_seconds_each": wall,
            "peak_rss_mb_each": [r["peak_rss_mb"] for r in runs],
            f"cpu_ratio_to_{first}_each": [
                round(c / b, 3) for c, b in zip(cpu, base_cpu, strict=True)
            ],
            "outcomes": runs[0]["outcomes"],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is reported")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a checkout to run side by side (repeatable); ratios are to the first",
    )
    args = parser.parse_args()
    if args.probes < 6 or args.repeat < 1:
        parser.error("--probes must be at least 6 and --repeat at least 1")
    if args.tree:
        trees: dict[str, Path] = {}
        for item in args.tree:
            label, sep, path = item.partition("=")
            if not sep or not label or not (Path(path) / "bench" / "virtual_day.py").is_file():
                parser.error(f"--tree wants LABEL=PATH to a checkout (got {item!r})")
            trees[label] = Path(path).resolve()
        print(json.dumps(side_by_side(trees, args.probes, args.repeat), indent=2))
        return
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_day(args.probes, Path(tmp)))
    first = runs[0]
    result = {
        "benchmark": "virtual_day",
        "machine": machine(),
        "load_average_1m": load_average(),
        "probes": first["probes"],
        "requests": first["requests"],
        "simulated_hours": first["simulated_hours"],
        "repeats": args.repeat,
        "plan_seconds_median": statistics.median(r["plan_seconds"] for r in runs),
        "run_seconds_each": [r["run_seconds"] for r in runs],
        "run_cpu_seconds_each": [r["run_cpu_seconds"] for r in runs],
        "run_seconds_median": statistics.median(r["run_seconds"] for r in runs),
        "run_cpu_seconds_median": statistics.median(r["run_cpu_seconds"] for r in runs),
        "goal_run_seconds": 10.0,
        "peak_rss_mb": round(peak_rss_mb()),
        "outcomes": first["outcomes"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
