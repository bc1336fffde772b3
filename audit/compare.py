"""Scorecards side by side: a diff of two runs, several platforms compared, one plan's trend.

Pure functions of :class:`~audit.scorecard.Scorecard` view models; nothing here reads the store.

A criterion *changed beyond noise* between two runs only when the two removal-in-deadline rates
differ significantly by an exact test at the criterion's confidence (level ``1 - confidence``,
two-sided): Boschloo's exact test, which is uniformly more powerful than Fisher's, while both
samples are small enough for it to be quick, Fisher's exact test beyond. A verdict that flips
without such a difference is shown but is not a change: two runs of an unchanged platform near
its threshold flip verdicts often. Probes without a known outcome never make a change: a
regression is called only when the earlier run's worst case (unknowns not removed) and the later
run's best case (unknowns removed) differ significantly, and an improvement the other way round.
Comparisons of several platforms test every pair within a criterion and control the family-wise
error with Holm's step-down method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations, pairwise
from typing import Literal

import numpy as np
from pydantic import BaseModel

from audit.durations import parse_duration
from audit.errors import InputError
from audit.report.page import time_text
from audit.scorecard import SCHEMA_VERSION, CriterionCard, Scorecard
from audit.stats import Verdict

__all__ = [
    "Comparison",
    "CriterionChange",
    "RunDiff",
    "RunRef",
    "Trend",
    "compare_runs",
    "diff_runs",
    "rate_test",
    "trend_of",
]

BOSCHLOO_MAX_N = 400  # above this many probes in both runs together, Fisher's test is used
Direction = Literal["better", "worse", "changed", "same"]


def run_label(target: str, run_id: str, period_start_utc: str | None) -> str:
    """A run's name where several appear together: its target, its id and the date it began,
    so two runs on the same target are told apart."""
    date = f", {period_start_utc[:10]}" if period_start_utc else ""
    return f"{target} (run {run_id}{date})"


class RunRef(BaseModel):
    """Which run a column or point is."""

    run_id: str
    label: str  # target + run id + date, distinct for every run
    plan_name: str
    target: str
    pack_id: str
    pack_version: str
    period_start_utc: str | None
    period_end_utc: str | None
    overall_verdict: Verdict
    time_scale: float


class RateCell(BaseModel):
    """One criterion's result in one run."""

    run_id: str
    target: str
    label: str  # target + run id + date, distinct for every run
    period_start_utc: str | None
    verdict: Verdict
    successes: int
    n: int  # planned violating probes
    unknown: int = 0  # of them, without a known outcome
    rate: float | None
    lower: float | None
    upper: float | None
    threshold: float
    confidence: float
    median_time: str
    over_removed: int
    controls_measured: int


class RateTest(BaseModel):
    test: str  # "Boschloo exact", "Fisher exact" or "none"
    p_value: float | None
    alpha: float
    significant: bool


class CriterionChange(BaseModel):
    criterion_id: str
    title: str
    before: RateCell | None
    after: RateCell | None
    difference: float | None  # after.rate - before.rate
    test: RateTest
    verdict_changed: bool
    changed: bool  # beyond noise: verdict changed or significant difference
    direction: Direction
    note: str


class RunDiff(BaseModel):
    kind: Literal["diff"] = "diff"
    schema_version: str = SCHEMA_VERSION
    before: RunRef
    after: RunRef
    changes: list[CriterionChange]
    notes: list[str]

    @property
    def changed(self) -> list[CriterionChange]:
        return [c for c in self.changes if c.changed]


class PairDifference(BaseModel):
    first: str  # run id
    second: str
    difference: float | None  # second.rate - first.rate
    test: RateTest
    holm_significant: bool


class ComparedCriterion(BaseModel):
    criterion_id: str
    title: str
    deadline: str  # ISO 8601, as the pack states it
    deadline_seconds: float  # the same in seconds of platform time
    threshold: float
    confidence: float
    cells: list[RateCell]
    pairs: list[PairDifference]


class Comparison(BaseModel):
    kind: Literal["comparison"] = "comparison"
    schema_version: str = SCHEMA_VERSION
    pack_id: str
    runs: list[RunRef]
    criteria: list[ComparedCriterion]
    notes: list[str]


class TrendSeries(BaseModel):
    criterion_id: str
    title: str
    threshold: float
    points: list[RateCell]
    steps: list[CriterionChange]  # between consecutive runs


class Trend(BaseModel):
    kind: Literal["trend"] = "trend"
    schema_version: str = SCHEMA_VERSION
    plan_name: str
    target: str
    pack_id: str
    runs: list[RunRef]
    series: list[TrendSeries]
    notes: list[str]

    @property
    def latest_regressions(self) -> list[CriterionChange]:
        """Criteria that changed for the worse, beyond noise, in the latest run."""
        last = [s.steps[-1] for s in self.series if s.steps]
        return [c for c in last if c.changed and c.direction == "worse"]


# building blocks --------------------------------------------------------------------------
def run_ref(card: Scorecard) -> RunRef:
    return RunRef(
        run_id=card.run_id,
        label=run_label(card.target["name"], card.run_id, card.period_start_utc),
        plan_name=card.plan_name,
        target=card.target["name"],
        pack_id=str(card.pack["id"]),
        pack_version=str(card.pack["version"]),
        period_start_utc=card.period_start_utc,
        period_end_utc=card.period_end_utc,
        overall_verdict=card.overall_verdict,
        time_scale=card.time_scale,
    )


def rate_cell(card: Scorecard, c: CriterionCard) -> RateCell:
    rate = c.removal_in_deadline
    return RateCell(
        run_id=card.run_id,
        target=card.target["name"],
        label=run_label(card.target["name"], card.run_id, card.period_start_utc),
        period_start_utc=card.period_start_utc,
        verdict=c.verdict,
        successes=rate.successes,
        n=rate.n,
        unknown=c.inconclusive,
        rate=rate.rate,
        lower=c.one_sided_lower,
        upper=c.one_sided_upper,
        threshold=c.threshold,
        confidence=c.confidence,
        median_time=time_text(c.median_time, card.time_scale),
        over_removed=c.over_removed,
        controls_measured=c.kept + c.over_removed,
    )


def rate_test(
    a: RateCell, b: RateCell, confidence: float, a_extra: int = 0, b_extra: int = 0
) -> RateTest:
    """Two-sided exact test that two removal rates differ, at level ``1 - confidence``; each
    side's successes may be raised by that many of its unknowns (its best case)."""
    alpha = round(1.0 - confidence, 10)
    if a.n == 0 or b.n == 0:
        return RateTest(test="none", p_value=None, alpha=alpha, significant=False)
    name, p = exact_p(a.successes + a_extra, a.n, b.successes + b_extra, b.n)
    return RateTest(test=name, p_value=p, alpha=alpha, significant=p < alpha)


def exact_p(k_a: int, n_a: int, k_b: int, n_b: int) -> tuple[str, float]:
    """The two-sided exact test (Boschloo; Fisher for large samples) that k_a/n_a and k_b/n_b
    differ: its name and p-value."""
    # imported here: scipy.stats costs a second to import, and a scorecard (which imports this
    # module through the renderers) never needs it
    from scipy.stats import boschloo_exact, fisher_exact

    table = np.array([[k_a, k_b], [n_a - k_a, n_b - k_b]])
    if n_a + n_b <= BOSCHLOO_MAX_N:
        name, p = "Boschloo exact", float(boschloo_exact(table, alternative="two-sided").pvalue)
    else:
        name, p = "Fisher exact", float(fisher_exact(table, alternative="two-sided").pvalue)
    return name, 1.0 if math.isnan(p) else min(1.0, p)


def statement_notes(before: Scorecard, after: Scorecard) -> list[str]:
    """For each statements finding checked in both runs: its rate in each and whether they
    differ beyond noise (the same exact test, at the runs' statements level)."""
    if before.statements is None or after.statements is None:
        return []
    notes = []
    earlier = {r.kind: r for r in before.statements.overall if r.checked}
    for rate in after.statements.overall:
        old = earlier.get(rate.kind)
        if old is None or not rate.checked:
            continue
        _, p = exact_p(old.found, old.checked, rate.found, rate.checked)
        beyond = "a change beyond noise" if p < 1.0 - rate.level else "within noise"
        notes.append(
            f"statements, {rate.title}: {old.found}/{old.checked} → {rate.found}/{rate.checked} "
            f"({beyond}, p = {p:.3g})"
        )
    return notes


def _worst_share(cell: RateCell) -> float:
    return cell.successes / cell.n if cell.n else 0.0


def _best_share(cell: RateCell) -> float:
    return (cell.successes + cell.unknown) / cell.n if cell.n else 0.0


def change_test(before: RateCell, after: RateCell) -> tuple[RateTest, Direction]:
    """The exact test behind a change, and its direction: worse only if the later run's best
    case is significantly below the earlier run's worst case; better the other way round."""
    confidence = max(before.confidence, after.confidence)
    unmeasured = Verdict.NOT_MEASURED
    if before.verdict != after.verdict and unmeasured in (before.verdict, after.verdict):
        return rate_test(before, after, confidence), "changed"
    plain = rate_test(before, after, confidence)
    # with no unknown on either side the worst and best cases are the counts: one test serves
    worse = rate_test(before, after, confidence, b_extra=after.unknown) if after.unknown else plain
    if worse.significant and _best_share(after) < _worst_share(before):
        return worse, "worse"
    better = (
        rate_test(before, after, confidence, a_extra=before.unknown) if before.unknown else plain
    )
    if better.significant and _worst_share(after) > _best_share(before):
        return better, "better"
    return plain.model_copy(update={"significant": False}), "same"


def _note(before: RateCell, after: RateCell, test: RateTest, direction: Direction) -> str:
    rates = f"{_pct(before.rate)} → {_pct(after.rate)}"
    p = "no test" if test.p_value is None else f"{test.test} p = {test.p_value:.3g}"
    if direction == "same":
        flip = (
            f"verdict {before.verdict} → {after.verdict}, but "
            if before.verdict != after.verdict
            else ""
        )
        return f"{flip}no change beyond noise: rate {rates} ({p}, level {test.alpha:g})"
    return f"rate {rates}, significant ({p} < {test.alpha:g})"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def criterion_change(
    criterion_id: str, title: str, before: RateCell | None, after: RateCell | None
) -> CriterionChange:
    if before is None or after is None:
        side = "first" if after is None else "second"
        present = before or after
        assert present is not None
        alpha = round(1.0 - present.confidence, 10)
        return CriterionChange(
            criterion_id=criterion_id,
            title=title,
            before=before,
            after=after,
            difference=None,
            test=RateTest(test="none", p_value=None, alpha=alpha, significant=False),
            verdict_changed=True,
            changed=True,
            direction="changed",
            note=f"measured only in the {side} run",
        )
    test, direction = change_test(before, after)
    verdict_changed = before.verdict != after.verdict
    difference = None if before.rate is None or after.rate is None else after.rate - before.rate
    return CriterionChange(
        criterion_id=criterion_id,
        title=title,
        before=before,
        after=after,
        difference=difference,
        test=test,
        verdict_changed=verdict_changed,
        changed=direction != "same",
        direction=direction,
        note=_note(before, after, test, direction),
    )


def _same_pack(cards: Sequence[Scorecard], what: str) -> list[str]:
    """Refuse scorecards of different packs; notes for what differs but can be compared."""
    packs = sorted({str(c.pack["id"]) for c in cards})
    if len(packs) > 1:
        raise InputError(f"{what} needs runs of one criteria pack (got {', '.join(packs)})")
    notes: list[str] = []
    versions = sorted({str(c.pack["version"]) for c in cards})
    if len(versions) > 1:
        notes.append(f"The runs used different versions of the pack: {', '.join(versions)}.")
    scales = sorted({c.time_scale for c in cards})
    if len(scales) > 1:
        notes.append(
            "The runs used different time scales ("
            + ", ".join(f"{s:g}" for s in scales)
            + "); their deadlines and latencies are not directly comparable."
        )
    return notes + _criterion_notes(cards)


def _criterion_notes(cards: Sequence[Scorecard]) -> list[str]:
    notes: list[str] = []
    seen: dict[str, tuple[float, float, str]] = {}
    for card in cards:
        for c in card.criteria:
            terms = (c.threshold, c.confidence, c.deadline)
            if seen.setdefault(c.id, terms) != terms:
                notes.append(f"{c.id}: threshold, confidence or deadline differ between runs.")
                seen[c.id] = terms
    return sorted(set(notes))


def _cells(card: Scorecard) -> dict[str, tuple[str, RateCell]]:
    return {c.id: (c.title, rate_cell(card, c)) for c in card.criteria}


# the three views --------------------------------------------------------------------------
def diff_runs(before: Scorecard, after: Scorecard) -> RunDiff:
    notes = _same_pack([before, after], "diff")
    a, b = _cells(before), _cells(after)
    order = [*a, *(k for k in b if k not in a)]
    changes = [
        criterion_change(
            cid,
            (a.get(cid) or b[cid])[0],
            a[cid][1] if cid in a else None,
            b[cid][1] if cid in b else None,
        )
        for cid in order
    ]
    notes += statement_notes(before, after)
    return RunDiff(before=run_ref(before), after=run_ref(after), changes=changes, notes=notes)


def holm(p_values: Sequence[float | None], alpha: float) -> list[bool]:
    """Holm's step-down rejections for ``p_values`` at family-wise level ``alpha``."""
    ranked = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    rejected = [False] * len(p_values)
    for step, (p, index) in enumerate(ranked):
        if p >= alpha / (len(ranked) - step):
            break
        rejected[index] = True
    return rejected


def _compared(cid: str, cards: Sequence[Scorecard]) -> ComparedCriterion:
    found = [(card, c) for card in cards for c in card.criteria if c.id == cid]
    first = found[0][1]
    cells = [rate_cell(card, c) for card, c in found]
    confidence = max(c.confidence for _, c in found)
    tests = [(x, y, rate_test(x, y, confidence)) for x, y in combinations(cells, 2)]
    keep = holm([t.p_value for _, _, t in tests], round(1.0 - confidence, 10))
    pairs = [
        PairDifference(
            first=x.run_id,
            second=y.run_id,
            difference=None if x.rate is None or y.rate is None else y.rate - x.rate,
            test=t,
            holm_significant=k,
        )
        for (x, y, t), k in zip(tests, keep, strict=True)
    ]
    return ComparedCriterion(
        criterion_id=cid,
        title=first.title,
        deadline=first.deadline,
        deadline_seconds=parse_duration(first.deadline),
        threshold=first.threshold,
        confidence=first.confidence,
        cells=cells,
        pairs=pairs,
    )


def compare_runs(cards: Sequence[Scorecard]) -> Comparison:
    if len(cards) < 2:
        raise InputError(f"compare needs at least two runs (got {len(cards)})")
    ids = [c.run_id for c in cards]
    if len(set(ids)) != len(ids):
        raise InputError(f"compare needs distinct runs (got {', '.join(ids)})")
    notes = _same_pack(cards, "compare")
    order: list[str] = []
    for card in cards:
        order += [c.id for c in card.criteria if c.id not in order]
    return Comparison(
        pack_id=str(cards[0].pack["id"]),
        runs=[run_ref(c) for c in cards],
        criteria=[_compared(cid, cards) for cid in order],
        notes=notes,
    )


def trend_of(cards: Sequence[Scorecard]) -> Trend:
    """The trend of one plan's runs on one target, oldest first."""
    if not cards:
        raise InputError("trend needs at least one run")
    targets = sorted({c.target["name"] for c in cards})
    if len(targets) > 1:
        raise InputError(f"trend needs runs on one target (got {', '.join(targets)})")
    ordered = sorted(cards, key=lambda c: (c.period_start_utc or "", c.run_id))
    notes = _same_pack(ordered, "trend")
    ids: list[str] = []
    for card in ordered:
        ids += [c.id for c in card.criteria if c.id not in ids]
    series = [_series(cid, ordered) for cid in ids]
    for earlier, later in pairwise(ordered):
        notes += [f"{later.run_id}: {n}" for n in statement_notes(earlier, later)]
    return Trend(
        plan_name=ordered[-1].plan_name,
        target=targets[0],
        pack_id=str(ordered[0].pack["id"]),
        runs=[run_ref(c) for c in ordered],
        series=series,
        notes=notes,
    )


def _series(cid: str, cards: Sequence[Scorecard]) -> TrendSeries:
    found = [(card, c) for card in cards for c in card.criteria if c.id == cid]
    points = [rate_cell(card, c) for card, c in found]
    steps = [criterion_change(cid, found[0][1].title, x, y) for x, y in pairwise(points)]
    last = found[-1][1]
    return TrendSeries(
        criterion_id=cid, title=last.title, threshold=last.threshold, points=points, steps=steps
    )
