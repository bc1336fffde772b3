"""Arms of a criterion and its minimal evasion: pure functions of probe outcomes.

An **arm** is the set of a criterion's violating probes of one modality that carry the same
variants: text variants for text posts, one media style (``image_low_contrast``,
``speech_fast``...) for images and speech. Each modality has its clean arm: clean text, plain
banners (``image_plain``), plain speech (``speech_plain``). A variant **evades** when its arm
alone makes the criterion NON_COMPLIANT by the verdict rule of :mod:`audit.stats.verdict` (the
one-sided upper bound on its removal-in-time rate is below the threshold, at the criterion's
confidence) while the clean arm of its modality is removed at or above the threshold and is not
itself NON_COMPLIANT. The **minimal evasion** of a modality is its simplest evading arm: fewest
variants first, then the lowest total complexity (:attr:`audit.variants.Variant.complexity`,
:data:`audit.media.MEDIA_COMPLEXITY`), then the name. The scorecard reports it for every run
that holds variant arms; :mod:`audit.evasion` searches for it adaptively.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from audit.i18n import N_
from audit.media import MEDIA_COMPLEXITY, PLAIN_STYLES, media_modality
from audit.stats import Verdict, decide
from audit.variants import VARIANTS

__all__ = [
    "MODALITIES",
    "ArmTally",
    "EvasionFinding",
    "arm_modality",
    "arm_spec",
    "clean_is_removed",
    "clean_label",
    "evades",
    "minimal_evasion",
    "minimal_evasions",
    "simplicity",
    "spec_arm",
    "tally_arms",
    "variant_label",
]

MODALITIES = ("text", "image", "speech")  # the order arms and findings are listed in

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
    "image_serif": N_("serif-font banner"),
    "image_small_text": N_("small-print banner"),
    "image_low_contrast": N_("low-contrast banner"),
    "image_rotated": N_("rotated banner"),
    "image_noise": N_("speckled banner"),
    "image_watermark": N_("watermark-style banner"),
    "speech_fast": N_("fast speech"),
    "speech_voice": N_("speech in another voice"),
    "speech_noise": N_("speech over background noise"),
}
_CLEAN = {"text": "clean", "image": "plain banners", "speech": "plain speech"}


class ArmTally(BaseModel):
    """Violating probes of one arm: removed in time, measured, inconclusive."""

    variants: list[str]
    modality: str = "text"
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


def clean_label(modality: str) -> str:
    """What the clean arm of a modality is called: "clean", "plain banners", "plain speech"."""
    return _CLEAN.get(modality, f"plain {modality}")


def arm_modality(variants: Sequence[str]) -> str:
    """The modality of a variant arm: that of its media style, else text."""
    media = media_modality(variants[0]) if len(variants) == 1 else None
    return media or "text"


def spec_arm(spec: str) -> tuple[str, list[str]]:
    """An arm of ``sample.variant_arms``: ``"image_plain"`` -> ``("image", [])``,
    ``"image_noise"`` -> ``("image", ["image_noise"])``, ``"a+b"`` -> ``("text", ["a", "b"])``."""
    names = [part.strip() for part in spec.split("+") if part.strip()]
    modality = arm_modality(names)
    if modality != "text" and names[0] == PLAIN_STYLES[modality]:
        return modality, []
    return modality, names


def arm_spec(modality: str, variants: Sequence[str]) -> str:
    """The ``sample.variant_arms`` key of an arm; a clean media arm is its plain style."""
    if not variants and modality != "text":
        return PLAIN_STYLES[modality]
    return "+".join(variants)


def simplicity(variants: Sequence[str]) -> tuple[int, int, tuple[str, ...]]:
    """Sort key, simplest first: fewer variants, lower total complexity, then by name."""
    total = sum(_complexity(name) for name in variants)
    return len(variants), total, tuple(variants)


def _complexity(name: str) -> int:
    if name in VARIANTS:
        return VARIANTS[name].complexity
    return MEDIA_COMPLEXITY.get(name, 9)


def _order(arm: ArmTally) -> tuple[tuple[int, int, tuple[str, ...]], int]:
    rank = MODALITIES.index(arm.modality) if arm.modality in MODALITIES else len(MODALITIES)
    return simplicity(arm.variants), rank


def tally_arms(
    outcomes: Iterable[tuple[str, str, Sequence[str], bool | None]],
) -> list[ArmTally]:
    """Arms from ``(probe_id, modality, variants, complies)`` of violating probes, the clean
    arms first (text, image, speech), then the simplest."""
    arms: dict[tuple[str, tuple[str, ...]], ArmTally] = {}
    for probe_id, modality, variants, complies in outcomes:
        key = (modality, tuple(variants))
        arm = arms.setdefault(key, ArmTally(variants=list(variants), modality=modality))
        arm.probe_ids.append(probe_id)
        if complies is None:
            arm.inconclusive += 1
        else:
            arm.measured += 1
            arm.removed += int(complies)
    return sorted(arms.values(), key=_order)


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


def minimal_evasions(
    criterion_id: str, arms: Sequence[ArmTally], threshold: float, confidence: float
) -> list[EvasionFinding]:
    """The minimal evasion of each modality that has one, text first."""
    found = (
        minimal_evasion(criterion_id, arms, threshold, confidence, modality)
        for modality in MODALITIES
    )
    return [finding for finding in found if finding is not None]


def minimal_evasion(
    criterion_id: str,
    arms: Sequence[ArmTally],
    threshold: float,
    confidence: float,
    modality: str = "text",
) -> EvasionFinding | None:
    """The simplest evading arm of ``modality`` against that modality's clean arm, or None
    (no variant arm, clean not removed, or none evades)."""
    arms = [a for a in arms if a.modality == modality]
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
            f"removed: {clean.removed}/{clean.measured} {clean_label(modality)}; "
            f"survives: {label} ({best.survived}/{best.measured})"
        ),
    )
