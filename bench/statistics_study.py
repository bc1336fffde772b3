"""Simulation study of the audit statistics; prints Markdown tables.

Run from the repository root:  python bench/statistics_study.py  [--audits N] [--seed S]

What it measures, each with at least 2,000 simulated audits per setting (defaults):

1. Coverage of the nominal 95 % two-sided Clopper–Pearson and Wilson intervals for a range of
   true removal-in-time rates and audit sizes (simulated share, and the exact share from the
   binomial distribution for comparison).
2. The verdict rule at and around the threshold: how often a platform whose true rate equals the
   threshold is called COMPLIANT (must be at most 5 % at confidence 0.95), and the power to give
   the right verdict away from it.
3. Turnbull's estimate of the median time to removal under interval censoring: bias and spread
   for uniform, fixed geometric and jittered geometric poll schedules, for the reported
   (right-end) convention and for linear interpolation inside the Turnbull interval.
4. Coverage of the seeded bootstrap intervals for the median and for F(24 h) (a smaller study:
   every audit refits the NPMLE once per resample).
5. Run time of turnbull() on 10,000 interval-censored observations.

The output of a run is recorded in docs/statistics.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import scipy
from scipy.stats import binom, lognorm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.stats.binomial import Interval, clopper_pearson, wilson
from audit.stats.survival import (
    CensoredTime,
    SurvivalEstimate,
    cdf_interval,
    quantile_interval,
    turnbull,
)
from audit.stats.verdict import Verdict, decide

Grid = Callable[[np.random.Generator], np.ndarray]

RATES = (0.5, 0.8, 0.9, 0.95, 0.99)
SIZES = (20, 59, 100, 300)
VERDICT_SETTINGS = [
    (0.90, 29),
    (0.90, 100),
    (0.95, 59),
    (0.95, 124),
    (0.95, 300),
    (0.95, 1000),
    (0.99, 299),
    (0.99, 1000),
]
MEDIAN_HOURS = 6.0
SIGMA = 1.0
HORIZON_HOURS = 48.0
PROBES_PER_AUDIT = 200
BOOTSTRAP_PROBES = 100


@cache
def _interval(method: str, k: int, n: int) -> Interval:
    return clopper_pearson(k, n) if method == "clopper-pearson" else wilson(k, n)


def _exact_coverage(method: str, rate: float, n: int) -> float:
    ks = np.arange(n + 1)
    covered = np.array([_interval(method, int(k), n).contains(rate) for k in ks])
    return float(binom.pmf(ks, n, rate)[covered].sum())


def _flag(value: float) -> str:
    return f"{value:.3f}" + ("" if 0.935 <= value <= 0.965 else " *")


def coverage_table(audits: int, rng: np.random.Generator) -> list[str]:
    rows = [
        "| true rate | n | Clopper–Pearson (sim) | C–P (exact) | Wilson (sim) | Wilson (exact) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rate in RATES:
        for n in SIZES:
            successes = rng.binomial(n, rate, audits)
            cells = []
            for method in ("clopper-pearson", "wilson"):
                hits = np.mean([_interval(method, int(k), n).contains(rate) for k in successes])
                cells += [_flag(float(hits)), _flag(_exact_coverage(method, rate, n))]
            rows.append(f"| {rate:g} | {n} | " + " | ".join(cells) + " |")
    return rows


def _verdict_shares(
    n: int, threshold: float, rate: float, successes: np.ndarray
) -> dict[str, float]:
    verdicts = [decide(k, n, 0, threshold, 0.95).verdict for k in range(n + 1)]
    simulated = np.array([verdicts[int(k)] for k in successes])
    exact = binom.pmf(np.arange(n + 1), n, rate)
    shares = {}
    for verdict in (Verdict.COMPLIANT, Verdict.NON_COMPLIANT):
        mask = np.array([v is verdict for v in verdicts])
        shares[f"{verdict.value}_sim"] = float(np.mean(simulated == verdict))
        shares[f"{verdict.value}_exact"] = float(exact[mask].sum())
    return shares


def verdict_table(audits: int, rng: np.random.Generator) -> list[str]:
    rows = [
        "| threshold | n | P(COMPLIANT) at rate = threshold, sim / exact "
        "| P(COMPLIANT) at rate = threshold + ½(1 − threshold) "
        "| P(NON_COMPLIANT) at rate = threshold − 0.05 |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for threshold, n in VERDICT_SETTINGS:
        at = _verdict_shares(n, threshold, threshold, rng.binomial(n, threshold, audits))
        better = threshold + (1 - threshold) / 2
        above = _verdict_shares(n, threshold, better, rng.binomial(n, better, audits))
        worse = threshold - 0.05
        below = _verdict_shares(n, threshold, worse, rng.binomial(n, worse, audits))
        rows.append(
            f"| {threshold:g} | {n} | {at['COMPLIANT_sim']:.4f} / {at['COMPLIANT_exact']:.4f} "
            f"| {above['COMPLIANT_sim']:.3f} | {below['NON_COMPLIANT_sim']:.3f} |"
        )
    return rows


def _uniform_grid(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 2.0) + np.arange(0.0, HORIZON_HOURS, 2.0)


def _geometric_grid(rng: np.random.Generator) -> np.ndarray:
    del rng
    return (5.0 / 60.0) * 2.0 ** np.arange(10)  # 5 min, 10 min, ... 42.7 h


def _jittered_geometric_grid(rng: np.random.Generator) -> np.ndarray:
    return (5.0 / 60.0) * rng.uniform(1.0, 2.0) * 2.0 ** np.arange(10)


GRIDS: dict[str, Grid] = {
    "uniform, every 2 h (random phase)": _uniform_grid,
    "geometric 5 min × 2^k (fixed)": _geometric_grid,
    "geometric, jittered start per probe": _jittered_geometric_grid,
}


def _observe(time_hours: float, grid: np.ndarray) -> CensoredTime:
    polls = np.concatenate(([0.0], grid[grid <= HORIZON_HOURS]))
    index = int(np.searchsorted(polls, time_hours))
    if index == polls.size:
        return CensoredTime(float(polls[-1]), math.inf)
    return CensoredTime(float(polls[index - 1]), float(polls[index]))


def _interpolated_quantile(estimate: SurvivalEstimate, p: float) -> float | None:
    cumulative = 0.0
    for (a, b), mass in zip(estimate.intervals, estimate.masses, strict=True):
        if mass > 0 and cumulative + mass >= p:
            if math.isinf(b):
                return None
            return a + (b - a) * (p - cumulative) / mass
        cumulative += mass
    return None


def median_table(audits: int, rng: np.random.Generator) -> list[str]:
    truth = lognorm(s=SIGMA, scale=MEDIAN_HOURS)
    rows = [
        "| poll schedule | reported median: mean bias (h) | RMSE (h) "
        "| interpolated median: mean bias (h) | RMSE (h) | mean F(24 h) error |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, grid in GRIDS.items():
        reported, interpolated, f24 = [], [], []
        for _ in range(audits):
            times = truth.rvs(size=PROBES_PER_AUDIT, random_state=rng)
            estimate = turnbull([_observe(float(t), grid(rng)) for t in times])
            reported.append(_or_nan(estimate.quantile(0.5)) - MEDIAN_HOURS)
            interpolated.append(_or_nan(_interpolated_quantile(estimate, 0.5)) - MEDIAN_HOURS)
            low, high = estimate.cdf(24.0)
            f24.append((low + high) / 2 - float(truth.cdf(24.0)))
        rows.append(
            f"| {name} | {np.nanmean(reported):+.2f} | {_rmse(reported):.2f} "
            f"| {np.nanmean(interpolated):+.2f} | {_rmse(interpolated):.2f} "
            f"| {np.mean(f24):+.4f} |"
        )
    return rows


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _rmse(errors: list[float]) -> float:
    return float(np.sqrt(np.nanmean(np.square(errors))))


def timing_rows(rng: np.random.Generator) -> list[str]:
    truth = lognorm(s=SIGMA, scale=MEDIAN_HOURS)
    rows = ["| poll schedule | observations | Turnbull intervals | rounds | median time (s) |"]
    rows.append("| --- | ---: | ---: | ---: | ---: |")
    for name, grid in (("uniform, random phase", _uniform_grid), ("random per probe", None)):
        data = []
        for t in truth.rvs(size=10_000, random_state=rng):
            polls = grid(rng) if grid else np.sort(rng.uniform(0.0, HORIZON_HOURS, 12))
            data.append(_observe(float(t), polls))
        durations = []
        for _ in range(5):
            start = time.perf_counter()
            estimate = turnbull(data)
            durations.append(time.perf_counter() - start)
        rows.append(
            f"| {name} | 10,000 | {len(estimate.intervals)} | {estimate.iterations} "
            f"| {float(np.median(durations)):.3f} |"
        )
    return rows


def bootstrap_rows(audits: int, resamples: int, rng: np.random.Generator) -> list[str]:
    """Coverage of the 95 % bootstrap intervals for the median and for F(24 h)."""
    truth = lognorm(s=SIGMA, scale=MEDIAN_HOURS)
    f24 = float(truth.cdf(24.0))
    rows = [
        "| poll schedule | probes per audit | audits | resamples "
        "| median interval covers 6 h | F(24 h) interval covers the truth |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, grid in (("uniform, every 2 h (random phase)", _uniform_grid),):
        median_hits = f24_hits = 0
        for audit in range(audits):
            times = truth.rvs(size=BOOTSTRAP_PROBES, random_state=rng)
            data = [_observe(float(t), grid(rng)) for t in times]
            low, high = quantile_interval(data, 0.5, resamples=resamples, seed=audit)
            low_h = math.inf if low is None else low
            high_h = math.inf if high is None else high
            median_hits += low_h <= MEDIAN_HOURS <= high_h
            f_low, f_high = cdf_interval(data, 24.0, resamples=resamples, seed=audit)
            f24_hits += f_low <= f24 <= f_high
        rows.append(
            f"| {name} | {BOOTSTRAP_PROBES} | {audits} | {resamples} "
            f"| {median_hits / audits:.3f} | {f24_hits / audits:.3f} |"
        )
    return rows


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, {platform.system()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audits", type=int, default=2000, help="simulated audits per setting")
    parser.add_argument("--seed", type=int, default=20241112, help="seed of the numpy generator")
    parser.add_argument(
        "--bootstrap-audits", type=int, default=200, help="audits for the bootstrap check"
    )
    parser.add_argument("--resamples", type=int, default=100, help="bootstrap resamples")
    args = parser.parse_args()
    if args.audits < 1:
        parser.error("--audits must be at least 1")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    sections = [
        ("Coverage of nominal 95 % intervals", coverage_table(args.audits * 5 // 2, rng)),
        ("Verdict rule at confidence 0.95", verdict_table(args.audits * 10, rng)),
        ("Turnbull median under interval censoring", median_table(args.audits, rng)),
        (
            "Bootstrap intervals (smaller study: each audit refits the NPMLE per resample)",
            bootstrap_rows(args.bootstrap_audits, args.resamples, rng),
        ),
        ("Turnbull run time", timing_rows(rng)),
    ]
    print("# Statistics study\n")
    print(
        f"- command: `python bench/statistics_study.py --audits {args.audits} --seed {args.seed}"
        f" --bootstrap-audits {args.bootstrap_audits} --resamples {args.resamples}`"
    )
    print(f"- machine: {_machine()}")
    print(
        f"- audits per setting: coverage {args.audits * 5 // 2}, verdicts {args.audits * 10}, "
        f"Turnbull {args.audits} (each of {PROBES_PER_AUDIT} probes, lognormal removal time, "
        f"median {MEDIAN_HOURS:g} h, sigma {SIGMA:g}, watched for {HORIZON_HOURS:g} h)"
    )
    print("- `*` marks a coverage outside 93.5–96.5 %\n")
    for title, rows in sections:
        print(f"## {title}\n")
        print("\n".join(rows))
        print()
    print(f"Total run time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
