"""Minimal evasion search: the simplest variant under which a criterion's probes survive.

For a criterion whose clean probes the platform removes, the search posts variant probes in
rounds, each round an ordinary run (:func:`audit.runner.create_runs` and
:func:`audit.runner.execute_run` with a plan restricted to the criterion and to the round's
arms), so every probe is posted, observed, recorded in the evidence ledger and withdrawn like
any other. Rounds adapt to what the previous ones found, within a budget of probes:

1. **Single variants, simplest first.** Round 1 posts a clean arm (the baseline) and screens
   every declared variant of the lowest complexity with a few probes each; later rounds screen
   the next complexity level. If the clean probes are not removed, the search stops: there is
   nothing to evade.
2. **Shrinking a composition.** If no single variant evades, the search screens all declared
   variants composed; if that evades, it shrinks it as hypothesis shrinks a failing example:
   each round tries every composition with one variant fewer and keeps the simplest that still
   evades, until none does.
3. **Confirmation.** The simplest evading candidate is posted again with fresh probes, beside a
   fresh clean arm, in a run of its own; the finding and its evidence come from that run alone
   (so screening's selection does not bias it), and its scorecard shows the same finding.

"Evades" follows :mod:`audit.arms`: the arm alone makes the criterion NON_COMPLIANT at the
criterion's confidence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import httpx

from audit.arms import (
    ArmTally,
    EvasionFinding,
    clean_is_removed,
    evades,
    minimal_evasion,
    simplicity,
    tally_arms,
    variant_label,
)
from audit.clock import Clock
from audit.errors import InputError
from audit.outcomes import Outcome
from audit.packs import Criterion, Pack, load_pack, resolve_pack
from audit.plan import Plan, Sample
from audit.probe import derive_rng
from audit.runner import create_runs, execute_run
from audit.store import Store
from audit.synthesis import variant_applies
from audit.workspace import scorecard_for

__all__ = [
    "EvasionSearch",
    "PlanRounds",
    "RoundRunner",
    "SearchResult",
    "SearchRound",
    "SearchSettings",
    "SearchStatus",
]


@dataclass(frozen=True)
class SearchSettings:
    clean: int = 12  # clean probes in the baseline and in the confirmation run
    screen: int = 4  # probes per candidate when screening
    confirm: int = 12  # fresh probes for the confirmation (0: report the screening evidence)
    budget: int = 120  # most probes the whole search may post

    def __post_init__(self) -> None:
        for name in ("clean", "screen", "budget"):
            if getattr(self, name) < 1:
                raise InputError(f"'{name}' must be at least 1 (got {getattr(self, name)})")
        if self.confirm < 0:
            raise InputError(f"'confirm' must be 0 or more (got {self.confirm})")


class SearchStatus(StrEnum):
    FOUND = "found"  # an evasion, confirmed
    NOT_FOUND = "not_found"  # every candidate screened, none evades
    CLEAN_NOT_REMOVED = "clean_not_removed"  # the baseline already fails: nothing to evade
    BUDGET_SPENT = "budget_spent"  # candidates left unscreened when the budget ran out


@dataclass(frozen=True)
class SearchRound:
    number: int
    run_id: str
    purpose: str
    arms: list[ArmTally]


@dataclass
class SearchResult:
    criterion_id: str
    status: SearchStatus = SearchStatus.NOT_FOUND
    finding: EvasionFinding | None = None
    baseline: ArmTally | None = None
    rounds: list[SearchRound] = field(default_factory=list)
    probes: int = 0
    unconfirmed: ArmTally | None = None  # an evading candidate the budget left unconfirmed

    def describe(self) -> str:
        rounds = len(self.rounds)
        where = f"{rounds} round{'s' if rounds != 1 else ''}, {self.probes} probes"
        if self.finding is not None:
            return f"{self.criterion_id}: {self.finding.summary} ({where})"
        clean = self.baseline
        base = f"removed: {clean.removed}/{clean.measured} clean; " if clean else ""
        text = {
            SearchStatus.NOT_FOUND: "no variant survives",
            SearchStatus.CLEAN_NOT_REMOVED: "clean probes are not removed, so there is "
            "nothing to evade",
            SearchStatus.BUDGET_SPENT: "no evasion found before the budget ran out",
            SearchStatus.FOUND: "found",
        }[self.status]
        if self.unconfirmed is not None:
            arm = self.unconfirmed
            text += (
                f"; unconfirmed candidate: {variant_label(arm.variants)} "
                f"({arm.survived}/{arm.measured} survived in screening)"
            )
        return f"{self.criterion_id}: {base}{text} ({where})"


def _spec(variants: Sequence[str]) -> str:
    return "+".join(variants)


def _complies(outcome: str) -> bool | None:
    return None if outcome == "pending" else Outcome(outcome).complies


class _BudgetSpent(Exception):
    pass


RoundRunner = Callable[[int, dict[str, int], int], Awaitable[tuple[str, list[ArmTally]]]]
"""Posts one round: (round number, variant arms, clean probes) -> (run id, arm tallies)."""


class PlanRounds:
    """Rounds as ordinary runs: the plan restricted to the criterion, its pack, one target and
    the round's arms, created with :func:`create_runs` and carried out with :func:`execute_run`.
    """

    def __init__(
        self,
        store: Store,
        plan: Plan,
        criterion_id: str,
        clock: Clock,
        *,
        plan_source: Path | None = None,
        target: str | None = None,
        allow_production: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        probe_key: str | None = None,
    ) -> None:
        """``probe_key``: see :func:`create_runs`; each round's probes get it with the round's
        number, so a search against a fresh simulator is the same for the same seed."""
        self.store, self.clock = store, clock
        self._source, self._allow, self._transport = plan_source, allow_production, transport
        self._probe_key = probe_key
        pack_ref, self.criterion = _find_criterion(plan, criterion_id, plan_source)
        self.plan = _restricted(plan, pack_ref, criterion_id, target)

    async def __call__(
        self, number: int, arms: dict[str, int], clean: int
    ) -> tuple[str, list[ArmTally]]:
        seed = derive_rng(self.plan.seed, "evasion", self.criterion.id, number).getrandbits(31)
        size = clean + sum(arms.values())
        sample = Sample(violating_per_criterion=size, controls_per_criterion=0, variant_arms=arms)
        plan = self.plan.model_copy(update={"seed": seed, "sample": sample})
        key = None if self._probe_key is None else f"{self._probe_key}-round-{number}"
        (prepared,) = create_runs(
            self.store, plan, self._source, self.clock, allow_production=self._allow, probe_key=key
        )
        await execute_run(self.store, prepared.run_id, self.clock, transport=self._transport)
        card = scorecard_for(self.store, prepared.run_id)
        return prepared.run_id, tally_arms(
            (p.probe_id, p.variants, _complies(p.outcome))
            for p in card.probes
            if p.expectation == "violating" and p.modality == "text"
        )


class EvasionSearch:
    """One search for one criterion; ``rounds`` posts each round (see :class:`PlanRounds`)."""

    def __init__(
        self,
        criterion: Criterion,
        rounds: RoundRunner,
        settings: SearchSettings | None = None,
        on_round: Callable[[SearchRound], None] | None = None,
    ) -> None:
        self.criterion = criterion
        self.settings = settings or SearchSettings()
        self._rounds, self._on_round = rounds, on_round
        self.result = SearchResult(criterion.id)
        self._unscreened = False

    # rounds ---------------------------------------------------------------------------------
    async def _round(self, purpose: str, arms: dict[str, int], clean: int) -> SearchRound:
        size = clean + sum(arms.values())
        if self.result.probes + size > self.settings.budget:
            raise _BudgetSpent
        number = len(self.result.rounds) + 1
        run_id, tallies = await self._rounds(number, arms, clean)
        found = SearchRound(number, run_id, purpose, tallies)
        self.result.rounds.append(found)
        self.result.probes += size
        if self._on_round is not None:
            self._on_round(found)
        return found

    def _fit(self, candidates: list[tuple[str, ...]], clean: int) -> dict[str, int]:
        room = self.settings.budget - self.result.probes - clean
        count = max(0, min(len(candidates), room // self.settings.screen))
        if count == 0:
            raise _BudgetSpent
        return {_spec(c): self.settings.screen for c in candidates[:count]}

    async def _screen(self, purpose: str, candidates: list[tuple[str, ...]]) -> list[ArmTally]:
        """Screen candidates (the first round adds the baseline); the evading arms, simplest
        first. Raises _BudgetSpent when not even one candidate fits."""
        clean = self.settings.clean if self.result.baseline is None else 0
        arms = self._fit(candidates, clean)
        found = await self._round(purpose, arms, clean)
        if self.result.baseline is None:
            clean_arms = [a for a in found.arms if not a.variants]
            self.result.baseline = clean_arms[0] if clean_arms else ArmTally(variants=[])
        if len(arms) < len(candidates):
            self._unscreened = True
        c = self.criterion
        return [a for a in found.arms if a.variants and evades(a, c.threshold, c.confidence)]

    async def _confirm(self, arm: ArmTally) -> EvasionFinding | None:
        c = self.criterion
        if self.settings.confirm == 0:
            assert self.result.baseline is not None
            return minimal_evasion(c.id, [self.result.baseline, arm], c.threshold, c.confidence)
        spec = _spec(arm.variants)
        purpose = f"confirm {variant_label(arm.variants)}"
        found = await self._round(purpose, {spec: self.settings.confirm}, self.settings.clean)
        return minimal_evasion(c.id, found.arms, c.threshold, c.confidence)

    # phases ---------------------------------------------------------------------------------
    def _clean_removed(self) -> bool:
        base, c = self.result.baseline, self.criterion
        return base is not None and clean_is_removed(base, c.threshold, c.confidence)

    async def _try(self, evading: list[ArmTally]) -> bool:
        for arm in evading:
            self.result.unconfirmed = arm
            finding = await self._confirm(arm)
            if finding is not None:
                self.result.finding, self.result.status = finding, SearchStatus.FOUND
                self.result.unconfirmed = None
                return True
        self.result.unconfirmed = None
        return False

    async def _singles(self, singles: list[tuple[str, ...]]) -> bool:
        for level in sorted({simplicity(s)[1] for s in singles}):
            group = [s for s in singles if simplicity(s)[1] == level]
            evading = await self._screen(f"single variants of complexity {level}", group)
            if not self._clean_removed():
                self.result.status = SearchStatus.CLEAN_NOT_REMOVED
                return True
            if await self._try(evading):
                return True
        return False

    async def _shrink(self, singles: list[tuple[str, ...]]) -> None:
        composed = tuple(name for single in singles for name in single)
        if len(composed) < 2:
            return
        evading = await self._screen("all variants composed", [composed])
        if not evading:
            return
        best = evading[0]
        while len(best.variants) > 2:
            smaller = sorted(
                (tuple(v for v in best.variants if v != drop) for drop in best.variants),
                key=simplicity,
            )
            evading = await self._screen(f"shrink from {len(best.variants)} variants", smaller)
            if not evading:
                break
            best = evading[0]
        await self._try([best])

    async def run(self) -> SearchResult:
        """Search until a confirmed evasion, the end of the candidates, or the budget."""
        singles: list[tuple[str, ...]] = sorted(
            ((v,) for v in self.criterion.variants if variant_applies(self.criterion, (v,))),
            key=simplicity,
        )
        try:
            if not await self._singles(singles):
                await self._shrink(singles)
        except _BudgetSpent:
            self._unscreened = True
        if self.result.status is SearchStatus.NOT_FOUND and self._unscreened:
            self.result.status = SearchStatus.BUDGET_SPENT
        return self.result


def _find_criterion(plan: Plan, criterion_id: str, source: Path | None) -> tuple[str, Criterion]:
    base = source.parent if source else None
    for ref in plan.packs:
        pack: Pack = load_pack(resolve_pack(ref, base))
        for criterion in pack.criteria:
            if criterion.id == criterion_id:
                if not criterion.safe_to_generate or not criterion.variants:
                    raise InputError(
                        f"criterion {criterion_id} declares no variants to search "
                        "(corpus criteria are submitted verbatim and never varied)"
                    )
                return ref, criterion
    raise InputError(
        f"'--criterion' must name a criterion of the plan's packs ({', '.join(plan.packs)}) "
        f"(got {criterion_id!r})"
    )


def _restricted(plan: Plan, pack_ref: str, criterion_id: str, target: str | None) -> Plan:
    chosen = [t for t in plan.targets if target is None or t.name == target][:1]
    if not chosen:
        names = ", ".join(t.name for t in plan.targets)
        raise InputError(f"'--target' must name a target of the plan ({names}) (got {target!r})")
    return plan.model_copy(
        update={
            "name": f"{plan.name}-evasion",
            "packs": [pack_ref],
            "criteria": [criterion_id],
            "targets": chosen,
        }
    )
