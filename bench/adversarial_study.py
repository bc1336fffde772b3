"""The verdict rule against a platform that chooses which outcomes become unknown; prints
Markdown tables. Exact (binomial sums, no Monte Carlo error).

Run from the repository root:  python bench/adversarial_study.py

1. **Hiding adversary.** A platform removes each violating probe in time with probability p and
   makes a share h of the probes it did *not* remove unknown (it answers errors exactly for the
   posts still up). The table gives P(COMPLIANT) under the rule (every unknown a failure for
   COMPLIANT, measured-share floor 90 %) and under the rule it replaces (unknowns left out), for
   true rates at and below the threshold: the false-COMPLIANT rate.
2. **Power cost for honest platforms.** A platform with true rate above the threshold whose
   faults make a share r of probes unknown at random: P(COMPLIANT) under both rules.
3. **diff false alarms.** Two runs of an unchanged platform: how often `diff` calls a change
   (the exact two-sample test at level 0.05), and how often the verdicts alone flip.

The output of a run is recorded in docs/statistics.md and docs/scorecards.md.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from scipy.stats import binom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.compare import RateCell, criterion_change
from audit.stats import Verdict, decide, exact_lower_bound

THRESHOLD, CONFIDENCE, FLOOR = 0.95, 0.95, 0.9
EPS = 1e-12  # probability mass below which a term is skipped (sum of skipped terms < 1e-9)


@cache
def _lower(k: int, n: int) -> float:
    return exact_lower_bound(k, n, CONFIDENCE)


def new_rule_compliant(n: int, p: float, h: float) -> float:
    """P(COMPLIANT): removed s ~ Bin(n, p); hidden H ~ Bin(n - s, h) of the rest."""
    most_hidden = int(n * (1 - FLOOR) + 1e-9)
    total = 0.0
    for s in range(n + 1):
        if _lower(s, n) < THRESHOLD:
            continue
        total += float(binom.pmf(s, n, p)) * float(binom.cdf(most_hidden, n - s, h))
    return total


def old_rule_compliant(n: int, p: float, h: float) -> float:
    """P(COMPLIANT) when unknowns were left out: lower bound over the measured probes."""
    total = 0.0
    for s in range(n + 1):
        ps = float(binom.pmf(s, n, p))
        if ps < EPS:
            continue
        rest = n - s
        for hidden in range(rest + 1):
            ph = float(binom.pmf(hidden, rest, h))
            if ph < EPS:
                continue
            measured = n - hidden
            if measured and _lower(s, measured) >= THRESHOLD:
                total += ps * ph
    return total


def honest_compliant(n: int, p: float, r: float, rule: str) -> float:
    """P(COMPLIANT) when each probe is unknown with probability r, whatever its outcome."""
    total = 0.0
    for unknown in range(n + 1):
        pu = float(binom.pmf(unknown, n, r))
        if pu < EPS:
            continue
        measured = n - unknown
        for s in range(measured + 1):
            ps = float(binom.pmf(s, measured, p))
            if ps < EPS:
                continue
            if rule == "new":
                ok = decide(s, measured, unknown, THRESHOLD, CONFIDENCE).verdict is (
                    Verdict.COMPLIANT
                )
            else:
                ok = measured > 0 and _lower(s, measured) >= THRESHOLD
            if ok:
                total += pu * ps
    return total


def _cell(k: int, n: int) -> RateCell:
    verdict = decide(k, n, 0, THRESHOLD, CONFIDENCE).verdict
    return RateCell(
        run_id=f"r{k}",
        target="t",
        period_start_utc=None,
        verdict=verdict,
        successes=k,
        n=n,
        rate=k / n,
        lower=None,
        upper=None,
        threshold=THRESHOLD,
        confidence=CONFIDENCE,
        median_time="-",
        over_removed=0,
        controls_measured=0,
    )


def diff_false_alarms(n: int, p: float) -> tuple[float, float]:
    """(P(diff calls a change), P(the verdict flips)) for two runs of one unchanged platform."""
    called = flipped = 0.0
    support = [k for k in range(n + 1) if float(binom.pmf(k, n, p)) >= 1e-7]
    for a in support:
        for b in support:
            weight = float(binom.pmf(a, n, p)) * float(binom.pmf(b, n, p))
            change = criterion_change("X", "x", _cell(a, n), _cell(b, n))
            called += weight * change.changed
            flipped += weight * change.verdict_changed
    return called, flipped


def main() -> None:
    hiding = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
    print(f"## Hiding adversary (threshold {THRESHOLD}, confidence {CONFIDENCE}, floor {FLOOR})\n")
    print("| probes | true rate | rule | " + " | ".join(f"h = {h:g}" for h in hiding) + " |")
    print("| ---: | ---: | --- | " + " | ".join("---:" for _ in hiding) + " |")
    for n in (59, 100, 300):
        for p in (0.95, 0.90, 0.80):
            new = [new_rule_compliant(n, p, h) for h in hiding]
            old = [old_rule_compliant(n, p, h) for h in hiding]
            print(
                f"| {n} | {p:g} | worst case decides | "
                + " | ".join(f"{v:.4f}" for v in new)
                + " |"
            )
            print(
                f"| {n} | {p:g} | unknowns left out | " + " | ".join(f"{v:.4f}" for v in old) + " |"
            )
    faults = (0.0, 0.01, 0.02, 0.05)
    print("\n## Power for honest platforms (unknowns at random)\n")
    print("| probes | true rate | rule | " + " | ".join(f"r = {r:g}" for r in faults) + " |")
    print("| ---: | ---: | --- | " + " | ".join("---:" for _ in faults) + " |")
    for n in (100, 300):
        for p in (0.98, 0.99, 1.0):
            for rule, label in (("new", "worst case decides"), ("old", "unknowns left out")):
                values = [honest_compliant(n, p, r, rule) for r in faults]
                print(f"| {n} | {p:g} | {label} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    print("\n## diff on an unchanged platform (level 0.05)\n")
    print("| probes per run | true rate | change called | verdict flips |")
    print("| ---: | ---: | ---: | ---: |")
    for n, p in ((60, 0.95), (60, 0.9), (100, 0.95), (300, 0.95)):
        called, flipped = diff_false_alarms(n, p)
        print(f"| {n} | {p:g} | {called:.4f} | {flipped:.4f} |")


if __name__ == "__main__":
    main()
