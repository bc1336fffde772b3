"""Checks of a plan against its packs before anything is posted: can each criterion's sample
reach a COMPLIANT verdict at all, and how many unknown outcomes can it absorb?

Pure functions of the plan and the packs (the probes are synthesised, not posted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from audit.numbers import format_percent
from audit.packs import Criterion, Pack, load_pack, resolve_pack
from audit.plan import Plan
from audit.stats import exact_lower_bound, most_unknowns_tolerated
from audit.synthesis import SampleSize, synthesize

__all__ = ["criterion_lines", "plan_packs", "sample_warnings", "violating_counts"]


def violating_counts(plan: Plan, pack: Pack) -> dict[str, int]:
    """Violating probes the plan makes for each criterion of the pack."""
    size = SampleSize.from_sample(plan.sample)
    probes = synthesize(pack, plan.seed, size, run_key="plan-check", criteria=plan.criteria)
    return dict(Counter(p.criterion_id for p in probes if p.expectation.value == "violating"))


def _share(plan: Plan, pack: Pack, criterion: Criterion) -> float:
    if plan.min_measured_share is not None:
        return plan.min_measured_share
    return criterion.min_measured_share or pack.pack.min_measured_share


def criterion_warning(criterion: Criterion, planned: int, min_measured_share: float) -> str | None:
    """A warning when ``planned`` violating probes cannot make the criterion COMPLIANT, or can
    only when no more than a handful of outcomes are unknown; None when the sample is fine."""
    t, conf = criterion.threshold, criterion.confidence
    best = exact_lower_bound(planned, planned, conf) if planned else 0.0
    if best < t:
        return (
            f"criterion {criterion.id}: {planned} violating probes can never give COMPLIANT at "
            f"threshold {t:g} and confidence {conf:g}: even with every one removed in time the "
            f"lower bound is {best:.4f}. Plan more probes (see plan-size)."
        )
    tolerated = most_unknowns_tolerated(planned, t, conf, min_measured_share)
    if tolerated is not None and tolerated == 0:
        return (
            f"criterion {criterion.id}: {planned} violating probes reach COMPLIANT only if every "
            "one is measured and removed in time: a single platform fault or unknown outcome "
            "makes it INCONCLUSIVE. Plan more probes (see plan-size)."
        )
    return None


def sample_warnings(
    plan: Plan, packs: list[Pack], planned: Mapping[str, Mapping[str, int]] | None = None
) -> list[str]:
    """One line per criterion whose sample cannot reach COMPLIANT, or only with no unknown.

    ``planned`` gives the violating probes per criterion of each pack (by pack id) where they are
    already made (``run`` counts its stored probes); otherwise they are synthesised to count.
    """
    lines: list[str] = []
    for pack in packs:
        known = planned.get(pack.pack.id) if planned is not None else None
        counts = known if known is not None else violating_counts(plan, pack)
        for criterion in pack.criteria:
            if criterion.id not in counts:
                continue
            warning = criterion_warning(
                criterion, counts[criterion.id], _share(plan, pack, criterion)
            )
            if warning is not None:
                lines.append(f"pack {pack.pack.id}, {warning}")
    return lines


def plan_packs(plan: Plan, plan_path: Path) -> list[Pack]:
    return [load_pack(resolve_pack(ref, plan_path.parent)) for ref in plan.packs]


def criterion_lines(plan: Plan, packs: list[Pack]) -> list[str]:
    """Per criterion: its planned sample and how many unknown outcomes COMPLIANT can absorb."""
    lines: list[str] = []
    for pack in packs:
        counts = violating_counts(plan, pack)
        for criterion in pack.criteria:
            planned = counts.get(criterion.id)
            if planned is None:
                continue
            share = _share(plan, pack, criterion)
            tolerated = most_unknowns_tolerated(
                planned, criterion.threshold, criterion.confidence, share
            )
            reach = (
                "cannot reach COMPLIANT"
                if tolerated is None
                else f"COMPLIANT possible with at most {tolerated} unknown or failed outcome(s)"
            )
            lines.append(
                f"{pack.pack.id} {criterion.id}: {planned} violating probes at threshold "
                f"{criterion.threshold:g}, confidence {criterion.confidence:g}, measured-share "
                f"floor {format_percent(share, 0)}: {reach}"
            )
    return lines
