"""Monte Carlo error and cost of the scorecard's bootstrap intervals for the median and the 90th
percentile of time to removal.

For each audit size ``n`` one data set is simulated as the engine observes it: removal times
log-normal (median 2 h, sigma 0.8; 3 % never removed), each probe looked at on its own jittered
geometric grid of the default polling policy (24 h deadline, 6 h grace). The scorecard's
intervals are then computed with ``--seeds`` different bootstrap seeds, with the number of
resamples the scorecard uses for that ``n`` (``audit.scorecard.bootstrap_resamples``). Across
seeds only the Monte Carlo error varies: the table gives, for each end of each interval, its
standard deviation over the seeds as a share of the interval's mean width, and the seconds one
call (both quantiles) takes.

    python bench/bootstrap_error.py [--seeds 10] [--sizes 60,750,2500,25000]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

from benchlib import machine

from audit.polling import PollingPolicy, poll_offsets
from audit.scorecard import bootstrap_resamples
from audit.stats import CensoredTime, quantile_intervals

DEADLINE = 86_400.0
SHARES = (0.5, 0.9)


def observed(n: int, seed: int) -> list[CensoredTime]:
    """Removal intervals of ``n`` probes as the engine's looks bracket them."""
    rng, policy = random.Random(seed), PollingPolicy()
    data = []
    for _ in range(n):
        looks = poll_offsets(DEADLINE, DEADLINE / 4, policy, rng)
        removal = 7200 * math.exp(0.8 * rng.gauss(0, 1)) if rng.random() < 0.97 else math.inf
        left = max((t for t in looks if t < removal), default=0.0)
        right = min((t for t in looks if t >= removal), default=math.inf)
        data.append(CensoredTime(left, right))
    return data


def _finite(value: float | None) -> float:
    return math.inf if value is None else value


def row(n: int, seeds: int) -> str:
    data = observed(n, seed=n)
    resamples = bootstrap_resamples(n)
    ends: list[list[float]] = [[], [], [], []]
    seconds = []
    for seed in range(seeds):
        started = time.process_time()
        intervals = quantile_intervals(data, SHARES, 0.95, resamples=resamples, seed=seed)
        seconds.append(time.process_time() - started)
        for index, (low, high) in enumerate(intervals):
            ends[2 * index].append(_finite(low))
            ends[2 * index + 1].append(_finite(high))
    cells = []
    for index in range(len(SHARES)):
        lows, highs = ends[2 * index], ends[2 * index + 1]
        if any(math.isinf(v) for v in lows + highs):
            cells.append("not reached in some resamples")
            continue
        width = statistics.fmean(highs) - statistics.fmean(lows)
        shares = [statistics.pstdev(v) / width if width > 0 else 0.0 for v in (lows, highs)]
        cells.append(
            f"{statistics.fmean(lows) / 3600:.2f}–{statistics.fmean(highs) / 3600:.2f} h; "
            f"{shares[0]:.0%} / {shares[1]:.0%}"
        )
    return f"| {n:,} | {resamples} | {cells[0]} | {cells[1]} | {statistics.median(seconds):.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--sizes", default="60,750,2500,25000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {machine()}; {args.seeds} bootstrap seeds per size\n")
    print(
        "| probes | resamples | median: mean interval; SD of low / high end over seeds, "
        "as a share of the width | 90th percentile: the same | seconds per call |"
    )
    print("| ---: | ---: | --- | --- | ---: |")
    for n in sizes:
        print(row(n, args.seeds), flush=True)


if __name__ == "__main__":
    main()
