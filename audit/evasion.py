"""Minimal evasion search: the simplest variant under which a criterion's probes survive.

For a criterion whose clean probes the platform removes, the search posts variant probes in
rounds, each round an ordinary run (:func:`audit.runner.create_runs` and
:func:`audit.runner.execute_run` with a plan restricted to the criterion and to the round's
arms), so every probe is posted, observed, recorded in the evidence ledger and withdrawn like
any other. Rounds adapt to what the previous ones found, within a budget of probes:

Candidates are the criterion's declared text variants and, for each of its media modalities,
every image style or speech style but the plain one (:data:`audit.media.IMAGE_VARIANTS`,
:data:`audit.media.SPEECH_VARIANTS`). Each modality has its own clean arm: clean text, plain
banners, plain speech; a media style is judged against the clean arm of its modality.

1. **Single variants, simplest first.** Round 1 posts the clean arm of each modality it
   screens (the baselines) and screens every candidate of the lowest complexity with a few
   probes each; later rounds screen the next complexity level (with the baseline of a modality
   met for the first time). A modality whose clean probes are not removed is searched no
   further: there is nothing to evade; when that holds for every modality, the search stops.
2. **Shrinking a composition.** If no single variant evades, the search screens all declared
   text variants composed (a media probe carries one style); if that evades, it shrinks it as
   hypothesis shrinks a failing example: each round tries every composition with one variant
   fewer and keeps the simplest that still evades, until none does.
3. **Confirmation.** The simplest evading candidate is posted again with fresh probes, beside a
   fresh clean arm of its modality, in a run of its own; the finding and its evidence come from
   that run alone (so screening's selection does not bias it), and its scorecard shows the same
   finding.

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
    MODALITIES,
    ArmTally,
    EvasionFinding,
    arm_modality,
    arm_spec,
    clean_is_removed,
    clean_label,
    evades,
    minimal_evasion,
    simplicity,
    tally_arms,
    variant_label,
)
from audit.clock import Clock
from audit.errors import InputError
from audit.media import IMAGE_VARIANTS, PLAIN_STYLES, SPEECH_VARIANTS, speech_available
from audit.outcomes import Outcome
from audit.packs import Criterion, Pack, load_pack, resolve_pack
from audit.plan import Plan, Sample
from audit.probe import derive_rng
from audit.runner import create_runs, execute_run
from audit.store_protocol import RunStore
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
    "search_candidates",
    "search_modalities",
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
    baselines: dict[str, ArmTally] = field(default_factory=dict)  # the clean arm per modality
    rounds: list[SearchRound] = field(default_factory=list)
    probes: int = 0
    unconfirmed: ArmTally | None = None  # an evading candidate the budget left unconfirmed

    def describe(self) -> str:
        rounds = len(self.rounds)
        where = f"{rounds} round{'s' if rounds != 1 else ''}, {self.probes} probes"
        if self.finding is not None:
            return f"{self.criterion_id}: {self.finding.summary} ({where})"
        clean = [
            f"{arm.removed}/{arm.measured} {clean_label(modality)}"
            for modality, arm in sorted(self.baselines.items(), key=lambda i: _rank(i[0]))
        ]
        base = f"removed: {', '.join(clean)}; " if clean else ""
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


def _rank(modality: str) -> int:
    return MODALITIES.index(modality) if modality in MODALITIES else len(MODALITIES)


_MEDIA_STYLES = {"image": sorted(IMAGE_VARIANTS), "speech": sorted(SPEECH_VARIANTS)}


def searchable_modalities(criterion: Criterion) -> list[str]:
    """The criterion's modalities the search has variants for: text, image and speech (video
    variants are posted by runs and broken down in scorecards, but not searched)."""
    return [m.value for m in criterion.modalities if m.value in MODALITIES]


def search_modalities(criterion: Criterion, requested: Sequence[str]) -> tuple[list[str], str]:
    """The modalities to search: those requested (all the criterion declares when none), and a
    note for the user, empty when there is nothing to say.

    Speech needs espeak-ng: asked for by name without it, that is an input error; left to the
    default, speech is left out and the note says so and how to install it.
    """
    declared = searchable_modalities(criterion)
    for name in requested:
        if name not in declared:
            raise InputError(
                f"'--modality' must be one that criterion {criterion.id} declares "
                f"({', '.join(declared)}) (got {name!r})"
            )
    chosen = [m for m in declared if not requested or m in requested]
    if "speech" not in chosen or speech_available():
        return chosen, ""
    install = "espeak-ng is not installed (Debian or Ubuntu: apt-get install espeak-ng)"
    if requested:
        raise InputError(f"'--modality speech' needs speech probes, but {install}")
    return [m for m in chosen if m != "speech"], f"speech variants are not searched: {install}"


def search_candidates(criterion: Criterion, modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Single variants to screen, simplest first: the declared text variants that change the
    criterion's texts, and every image or speech style but the plain one."""
    singles: list[tuple[str, ...]] = []
    if "text" in modalities:
        singles += [(v,) for v in criterion.variants if variant_applies(criterion, (v,))]
    for modality in modalities:
        plain = PLAIN_STYLES.get(modality)
        singles += [(s,) for s in _MEDIA_STYLES.get(modality, []) if s != plain]
    return sorted(singles, key=simplicity)


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
        store: RunStore,
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
            (p.probe_id, p.modality, p.variants, _complies(p.outcome))
            for p in card.probes
            if p.expectation == "violating"
        )


class EvasionSearch:
    """One search for one criterion; ``rounds`` posts each round (see :class:`PlanRounds`).

    ``modalities`` limits the candidates to text variants and the image and speech styles of
    those modalities (default: every modality the criterion declares).
    """

    def __init__(
        self,
        criterion: Criterion,
        rounds: RoundRunner,
        settings: SearchSettings | None = None,
        on_round: Callable[[SearchRound], None] | None = None,
        modalities: Sequence[str] | None = None,
    ) -> None:
        self.criterion = criterion
        self.settings = settings or SearchSettings()
        self._rounds, self._on_round = rounds, on_round
        # by default every modality the search can make here (speech needs espeak-ng)
        chosen = modalities if modalities is not None else search_modalities(criterion, [])[0]
        self.modalities = list(chosen)
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

    def _fit(self, candidates: list[tuple[str, ...]]) -> tuple[dict[str, int], int, list[str]]:
        """The round's arms, clean text probes and new baselines: candidates in order, each
        with the clean arm of its modality the first time, as many as the budget leaves room
        for. Raises _BudgetSpent when not even one fits."""
        room = self.settings.budget - self.result.probes
        arms: dict[str, int] = {}
        clean, new, fitted = 0, list[str](), 0
        for candidate in candidates:
            modality = arm_modality(candidate)
            base = modality not in self.result.baselines and modality not in new
            cost = self.settings.screen + (self.settings.clean if base else 0)
            if cost > room:
                break
            room, fitted = room - cost, fitted + 1
            arms[arm_spec(modality, candidate)] = self.settings.screen
            if base:
                new.append(modality)
                if modality == "text":
                    clean = self.settings.clean
                else:
                    arms[arm_spec(modality, [])] = self.settings.clean
        if not fitted:
            raise _BudgetSpent
        if fitted < len(candidates):
            self._unscreened = True
        return arms, clean, new

    async def _screen(self, purpose: str, candidates: list[tuple[str, ...]]) -> list[ArmTally]:
        """Screen candidates (with the clean arm of each modality not screened before); the
        evading arms whose clean arm is removed, simplest first."""
        arms, clean, new = self._fit(candidates)
        found = await self._round(purpose, arms, clean)
        for modality in new:
            clean_arms = [a for a in found.arms if a.modality == modality and not a.variants]
            self.result.baselines[modality] = (
                clean_arms[0] if clean_arms else ArmTally(variants=[], modality=modality)
            )
        c = self.criterion
        return [
            a
            for a in found.arms
            if a.variants
            and self._clean_removed(a.modality)
            and evades(a, c.threshold, c.confidence)
        ]

    async def _confirm(self, arm: ArmTally) -> EvasionFinding | None:
        c, modality = self.criterion, arm.modality
        if self.settings.confirm == 0:
            base = self.result.baselines[modality]
            return minimal_evasion(c.id, [base, arm], c.threshold, c.confidence, modality)
        arms = {arm_spec(modality, arm.variants): self.settings.confirm}
        clean = self.settings.clean
        if modality != "text":
            arms[arm_spec(modality, [])], clean = clean, 0
        found = await self._round(f"confirm {variant_label(arm.variants)}", arms, clean)
        return minimal_evasion(c.id, found.arms, c.threshold, c.confidence, modality)

    # phases ---------------------------------------------------------------------------------
    def _clean_removed(self, modality: str) -> bool:
        base, c = self.result.baselines.get(modality), self.criterion
        return base is not None and clean_is_removed(base, c.threshold, c.confidence)

    def _live(self, candidates: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """Candidates whose modality has no baseline yet, or one that is removed."""
        return [
            s
            for s in candidates
            if arm_modality(s) not in self.result.baselines or self._clean_removed(arm_modality(s))
        ]

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
            group = self._live([s for s in singles if simplicity(s)[1] == level])
            if not group:
                continue
            evading = await self._screen(f"single variants of complexity {level}", group)
            if not self._live(singles):
                self.result.status = SearchStatus.CLEAN_NOT_REMOVED
                return True
            if await self._try(evading):
                return True
        return False

    async def _shrink(self, singles: list[tuple[str, ...]]) -> None:
        """Compose the text variants (a media probe carries one style) and shrink."""
        texts = [s for s in self._live(singles) if arm_modality(s) == "text"]
        composed = tuple(name for single in texts for name in single)
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
        singles = search_candidates(self.criterion, self.modalities)
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
