"""Polling cost: status requests per probe against what they buy, for 1 h, 24 h and 7 d deadlines.

Run from the repository root:  python bench/polling_cost.py [--probes 60] [--audits 40] [--seed 1]

For each deadline it compares the engine's default schedule (a jittered geometric grid, one look
just before and one at the deadline, two grace looks; see audit/polling.py) with fixed-interval
polling every minute and every 5 minutes, and with the candidate schedules given by --candidate
(``name:field=value,...`` on PollingPolicy, e.g. ``phase:first=0.002``), on the same removals:

* removal times are drawn by the reference sandbox's own moderation code (audit/sandbox/
  moderation.py, the bundled configuration), with the platform's latencies scaled with the
  deadline (for a 1 h deadline the platform is 24 times faster than for 24 h), for the
  vn-superstition pack's probes: --probes violating probes and a quarter as many controls per
  criterion, in --audits independent audits;
* a look takes 0.5 s: "visible" holds from when it was sent, "down" from when it was answered;
  looking stops at the first look that finds the post down, as the engine does.

Figures per schedule:

* requests per probe: mean and maximum status requests, violating probes and controls;
* exact verdict: share of violating probes whose in-deadline verdict is decided (a look that
  ends by the deadline finds the post down, or one that starts at or after it finds it up);
  a wrong verdict is impossible by construction and counted to prove it (``wrong``);
* per-probe resolution: the width of each removal's censoring interval relative to the true
  removal time, for removals within the deadline (median and 90th percentile);
* Turnbull median: relative error of the NPMLE median (audit.stats.turnbull, the reported
  right-end convention) against the median of the true removal times of the same probes, per
  criterion and audit (mean and 90th percentile of the absolute error).

With --engine it also runs the real engine on the virtual clock against the in-process sandbox
(1,000 probes, 24 h) and reports the same figures from what the engine stored, as a check that
the model above is what the engine does.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.clock import VirtualClock
from audit.outcomes import look_window
from audit.packs import load_pack, resolve_pack
from audit.plan import Plan, Sample, Target
from audit.plan import Schedule as SubmissionSchedule
from audit.polling import PollingPolicy, poll_offsets
from audit.runner import create_runs, execute_run
from audit.sandbox.app import create_app
from audit.sandbox.moderation import (
    SandboxConfig,
    Submission,
    apply_notice,
    decide_post,
    default_config_path,
    load_sandbox_config,
)
from audit.stats import CensoredTime, turnbull
from audit.store import Store
from audit.synthesis import SampleSize, synthesize

HOUR, DAY = 3600.0, 86_400.0
DEADLINES = {"1 h": HOUR, "24 h": DAY, "7 d": 7 * DAY}
LATENCY = 0.5
GRACE = 0.25  # the plan default: watch a quarter of the deadline past it

PREVIOUS = PollingPolicy(jitter="each", first=0.005, grace_polls=2)  # the default until phase

Schedule = Callable[[float, random.Random], list[float]]


@dataclass(frozen=True)
class Removal:
    criterion: str
    violating: bool
    at: float  # seconds after the deadline clock started; inf when never removed


@dataclass
class Looked:
    looks: int
    left: float  # last look that saw it up (its start), or 0
    right: float  # first look that saw it down (its end), or inf


def policy_schedule(policy: PollingPolicy) -> Schedule:
    return lambda deadline, rng: poll_offsets(deadline, deadline * GRACE, policy, rng)


def fixed_schedule(every: float) -> Schedule:
    def offsets(deadline: float, rng: random.Random) -> list[float]:
        del rng
        count = math.ceil(deadline * (1 + GRACE) / every)
        return [every * k for k in range(1, count + 1)]

    return offsets


def draw_removals(deadline: float, per_criterion: int, seed: int) -> list[Removal]:
    """The sandbox's fates for one audit's probes, its latencies scaled to the deadline."""
    pack = load_pack(resolve_pack("vn-superstition", None))
    config: SandboxConfig = load_sandbox_config(
        default_config_path(), time_scale=DAY / deadline, seed=seed
    )
    size = SampleSize(per_criterion, max(1, per_criterion // 4))
    removals = []
    for probe in synthesize(pack, seed, size, run_key=f"bench-{seed}"):
        record, blocked = decide_post(
            config, probe.probe_id, Submission(probe.text, "text", probe.probe_id), 0.0
        )
        if blocked:
            continue
        trigger = pack.criterion(probe.criterion_id).trigger.value
        if trigger != "proactive":
            apply_notice(config, record, trigger, 0.0)
        at = record.removal_at if record.removal_at is not None else math.inf
        removals.append(Removal(probe.criterion_id, probe.expectation.value == "violating", at))
    return removals


def look(offsets: Sequence[float], at: float) -> Looked:
    """Looks in order until one finds the post down. The platform reads the post's state
    halfway through a look; the interval (left, right] always holds the removal time."""
    left = 0.0
    for count, t in enumerate(offsets, start=1):
        if at <= t + LATENCY / 2:
            return Looked(count, left, t + LATENCY)
        left = t
    return Looked(len(offsets), left, math.inf)


@dataclass
class Figures:
    requests_mean: float
    requests_max: int
    decided: float  # share of violating probes with a decided in-deadline verdict
    wrong: int
    width_median: float  # censoring interval width relative to the removal time
    width_p90: float
    median_error_mean: float  # Turnbull median vs the true median, relative
    median_error_p90: float
    medians: int  # how many (criterion, audit) medians were compared


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def _verdict_ok(seen: Looked, at: float, deadline: float) -> bool | None:
    """True/False: the verdict the looks prove is right/wrong; None: undecided."""
    if seen.right <= deadline:
        return at <= deadline
    if seen.left >= deadline:
        return at > deadline
    return None


def _median_error(audit: list[tuple[Removal, Looked]], criterion: str) -> float | None:
    chosen = [(r, s) for r, s in audit if r.violating and r.criterion == criterion]
    truth = statistics.median(max(0.0, r.at) for r, _ in chosen)
    fit = turnbull([CensoredTime(s.left, max(s.left, s.right)) for _, s in chosen])
    estimate = fit.quantile(0.5)
    if estimate is None or math.isinf(truth) or truth <= 0:
        return None
    return abs(estimate - truth) / truth


def summarise(audits: list[list[tuple[Removal, Looked]]], deadline: float) -> Figures:
    """The figures of a schedule over audits of (true removal, what the looks saw) pairs."""
    pairs = [pair for audit in audits for pair in audit]
    requests = [seen.looks for _, seen in pairs]
    violating = [(r, seen) for r, seen in pairs if r.violating]
    verdicts = [_verdict_ok(seen, r.at, deadline) for r, seen in violating]
    widths = [(s.right - s.left) / r.at for r, s in violating if 0 < r.at <= deadline]
    errors = [
        error
        for audit in audits
        for criterion in sorted({r.criterion for r, _ in audit})
        if (error := _median_error(audit, criterion)) is not None
    ]
    return Figures(
        requests_mean=statistics.fmean(requests),
        requests_max=max(requests),
        decided=sum(v is not None for v in verdicts) / len(verdicts),
        wrong=sum(v is False for v in verdicts),
        width_median=_quantile(widths, 0.5),
        width_p90=_quantile(widths, 0.9),
        median_error_mean=statistics.fmean(errors) if errors else math.nan,
        median_error_p90=_quantile(errors, 0.9),
        medians=len(errors),
    )


def evaluate(schedule: Schedule, deadline: float, audits: list[list[Removal]]) -> Figures:
    rng = random.Random(0)
    seen = [[(r, look(schedule(deadline, rng), r.at)) for r in audit] for audit in audits]
    return summarise(seen, deadline)


def _policy(text: str) -> tuple[str, Schedule]:
    name, _, settings = text.partition(":")
    fields: dict[str, object] = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        fields[key] = value
    return name, policy_schedule(PollingPolicy.model_validate(fields))


def schedules(candidates: list[str]) -> dict[str, Schedule]:
    chosen: dict[str, Schedule] = {
        "each": policy_schedule(PREVIOUS),
        "phase (default)": policy_schedule(PollingPolicy()),
        "every 1 min": fixed_schedule(60.0),
        "every 5 min": fixed_schedule(300.0),
    }
    chosen.update(_policy(c) for c in candidates)
    return chosen


def _row(deadline: str, name: str, f: Figures) -> str:
    return (
        f"| {deadline} | {name} | {f.requests_mean:,.1f} | {f.requests_max:,} | "
        f"{100 * f.decided:.2f} % | {f.wrong} | {100 * f.width_median:.1f} % | "
        f"{100 * f.width_p90:.0f} % | {100 * f.median_error_mean:.1f} % | "
        f"{100 * f.median_error_p90:.1f} % |"
    )


HEADER = (
    "| deadline | schedule | requests / probe (mean) | max | verdict decided | wrong | "
    "interval width / removal time (median) | p90 | Turnbull median error (mean) | p90 |\n"
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=60, help="violating probes per criterion")
    parser.add_argument("--audits", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME:FIELD=V,...")
    parser.add_argument("--engine", action="store_true", help="also measure the real engine")
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"python bench/polling_cost.py --probes {args.probes} --audits {args.audits} "
        f"--seed {args.seed}" + "".join(f" --candidate {c}" for c in args.candidate)
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}\n"
    )
    print(HEADER)
    for label, deadline in DEADLINES.items():
        audits = [draw_removals(deadline, args.probes, args.seed + k) for k in range(args.audits)]
        for name, schedule in schedules(args.candidate).items():
            print(_row(label, name, evaluate(schedule, deadline, audits)), flush=True)
    if args.engine:
        print("\nThe engine itself, 24 h, virtual clock, in-process sandbox:\n")
        print(HEADER.replace("| deadline | schedule |", "| probes | schedule, wall time |"))
        for name, policy in (("each", PREVIOUS), ("phase (default)", PollingPolicy())):
            figures, wall = engine_check(policy, args.seed)
            print(_row("1,002", f"{name}, {wall:.1f} s", figures), flush=True)
    print(f"\nrun time: {time.perf_counter() - started:.0f} s")


def engine_check(policy: PollingPolicy, seed: int) -> tuple[Figures, float]:
    """A 24 h audit of 1,002 probes by the real engine on the virtual clock; the figures from
    what it stored, the truth from the sandbox it ran against."""
    clock = VirtualClock()
    app = create_app(load_sandbox_config(default_config_path()), clock)
    target = Target(name="sandbox", base_url="http://sandbox.test", rate_limit=None, concurrency=32)
    plan = Plan(
        name="polling-cost",
        packs=["vn-superstition"],
        targets=[target],
        seed=seed,
        sample=Sample(violating_per_criterion=300, controls_per_criterion=34),
        schedule=SubmissionSchedule(submission_window="PT1H"),
        polling=policy,
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "audit.sqlite")
        (prepared,) = create_runs(store, plan, None, clock)
        started = time.perf_counter()
        transport = httpx.ASGITransport(app=app)
        asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport))
        wall = time.perf_counter() - started
        pairs = _stored_pairs(store, prepared.run_id, app.state.platform.truth())
        store.close()
    return summarise([pairs], DAY), wall


def _stored_pairs(store: Store, run_id: str, truth: dict[str, Any]) -> list[tuple[Removal, Looked]]:
    posts = {p["idempotency_key"]: p for p in truth["posts"]}
    observations = store.observations(run_id)
    pairs = []
    for row in store.probes(run_id):
        post = posts.get(row.probe_id)
        if post is None or row.clock_start is None:
            continue
        start = row.clock_start
        at = post["removal_at"] - start if post["removal_at"] is not None else math.inf
        looks = [o for o in observations.get(row.probe_id, []) if o.action == "status"]
        up, down = look_window(looks)
        left = max(0.0, (up if up is not None else start) - start)
        right = down - start if down is not None else math.inf
        removal = Removal(row.criterion_id, row.expectation == "violating", at)
        pairs.append((removal, Looked(len(looks), left, right)))
    return pairs


if __name__ == "__main__":
    main()
