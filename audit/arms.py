"""Arms of a criterion and its minimal evasion: pure functions of probe outcomes.

An **arm** is the set of a criterion's violating text probes that carry the same variants (the
clean arm carries none). A variant **evades** when its arm alone makes the criterion
NON_COMPLIANT by the verdict rule of :mod:`audit.stats.verdict` (the one-sided upper bound on its
removal-in-time rate is below the threshold, at the criterion's confidence) while the clean arm
is removed at or above the threshold and is not itself NON_COMPLIANT. The **minimal evasion** is
the simplest evading arm: fewest variants first, then the lowest total complexity
(:attr:`audit.variants.Variant.complexity`), then the name. The scorecard reports it for every
run that holds variant arms; :mod:`audit.evasion` searches for it adaptively.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from audit.i18n import N_
from audit.stats import Verdict, decide
from audit.variants import VARIANTS

__all__ = [
    "ArmTally",
    "EvasionFinding",
    "clean_is_removed",
    "evades",
    "minimal_evasion",
    "simplicity",
    "tally_arms",
    "variant_label",
]

_LABELS = {
    "strip_diacritics": N_("diacritics stripped"),
    "teencode": N_("teencode spelling"),
    "spacing": N_("letters spaced out"),
    "punctuation": N_("dots between letters"),
    "leetspeak": N_("digits for vowels"),
    "emoji": N_("emoji inside words"),
    "mixed_language": N_("Vietnamese phrases in English"),
    "zero_width": N_("zero-width characters"),
    "homoglyphs": N_("look-alike letters"),
}


class ArmTally(BaseModel):
    """Violating probes of one arm: removed in time, measured, inconclusive."""

    variants: list[str]
    removed: int = 0
    measured: int = 0
    inconclusive: int = 0
    probe_ids: list[str] = []

    @property
    def survived(self) -> int:
        return self.measured - self.removed


class EvasionFinding(BaseModel):
    """The simplest variant under which a criterion's probes survive, with its evidence."""

    criterion_id: str
    variants: list[str]
    label: str
    complexity: int
    clean_removed: int
    clean_measured: int
    removed: int
    measured: int
    upper: float  # one-sided upper bound on the removal-in-time rate under the variant
    threshold: float
    confidence: float
    arms_tested: int
    also_evading: list[str]
    probe_ids: list[str]
    summary: str


def variant_label(variants: Sequence[str]) -> str:
    """``["strip_diacritics", "spacing"]`` -> ``"diacritics stripped + letters spaced out"``."""
    return " + ".join(_LABELS.get(name, name.replace("_", " ")) for name in variants) or N_("clean")


def simplicity(variants: Sequence[str]) -> tuple[int, int, tuple[str, ...]]:
    """Sort key, simplest first: fewer variants, lower total complexity, then by name."""
    total = sum(VARIANTS[name].complexity if name in VARIANTS else 9 for name in variants)
    return len(variants), total, tuple(variants)


def tally_arms(outcomes: Iterable[tuple[str, Sequence[str], bool | None]]) -> list[ArmTally]:
    """Arms from ``(probe_id, variants, complies)`` of violating text probes, clean first."""
    arms: dict[tuple[str, ...], ArmTally] = {}
    for probe_id, variants, complies in outcomes:
        arm = arms.setdefault(tuple(variants), ArmTally(variants=list(variants)))
        arm.probe_ids.append(probe_id)
        if complies is None:
            arm.inconclusive += 1
        else:
            arm.measured += 1
            arm.removed += int(complies)
    return sorted(arms.values(), key=lambda a: simplicity(a.variants))


def clean_is_removed(clean: ArmTally, threshold: float, confidence: float) -> bool:
    """The clean arm is removed at or above the threshold and not shown to fall below it."""
    if clean.measured == 0 or clean.removed / clean.measured < threshold:
        return False
    decision = decide(clean.removed, clean.measured, clean.inconclusive, threshold, confidence)
    return decision.verdict is not Verdict.NON_COMPLIANT


def evades(arm: ArmTally, threshold: float, confidence: float) -> bool:
    """The arm's removal rate is shown, at ``confidence``, to be below the threshold."""
    if arm.measured == 0:
        return False
    decision = decide(arm.removed, arm.measured, arm.inconclusive, threshold, confidence)
    return decision.verdict is Verdict.NON_COMPLIANT


def _upper(arm: ArmTally, threshold: float, confidence: float) -> float:
    upper = decide(arm.removed, arm.measured, arm.inconclusive, threshold, confidence).upper
    return 1.0 if upper is None else upper


def minimal_evasion(
    criterion_id: str,
    arms: Sequence[ArmTally],
    threshold: float,
    confidence: float,
) -> EvasionFinding | None:
    """The simplest evading arm, or None (no variant arm, clean not removed, or none evades)."""
    clean = next((a for a in arms if not a.variants), None)
    variant_arms = sorted((a for a in arms if a.variants), key=lambda a: simplicity(a.variants))
    if clean is None or not variant_arms or not clean_is_removed(clean, threshold, confidence):
        return None
    evading = [a for a in variant_arms if evades(a, threshold, confidence)]
    if not evading:
        return None
    best = evading[0]
    label = variant_label(best.variants)
    return EvasionFinding(
        criterion_id=criterion_id,
        variants=best.variants,
        label=label,
        complexity=simplicity(best.variants)[1],
        clean_removed=clean.removed,
        clean_measured=clean.measured,
        removed=best.removed,
        measured=best.measured,
        upper=_upper(best, threshold, confidence),
        threshold=threshold,
        confidence=confidence,
        arms_tested=len(variant_arms),
        also_evading=[variant_label(a.variants) for a in evading[1:]],
        probe_ids=best.probe_ids,
        summary=(
            f"removed: {clean.removed}/{clean.measured} clean; "
            f"survives: {label} ({best.survived}/{best.measured})"
        ),
    )
