"""Probe synthesis: deterministic from (pack, seed), diverse across seeds, with no audit marker.

Templates of a criterion are dealt out in a shuffled round so each is used about equally; slot
values are drawn per probe, and a text already used in the run for the same criterion is drawn
again, so a platform cannot match probes by exact repetition. Probe ids are opaque hashes: the
platform sees an id only as an idempotency key, never in the content.

The sample decides the form of each probe (see :class:`audit.plan.Sample`): explicit variant
arms (text variants, or one media style such as ``image_low_contrast``: image or speech probes
in that style), a share of variant probes, and shares of banner images, speech and short
videos, each only where the criterion declares that variant or modality. A variant probe always
differs from the clean text it came from: a template the variant leaves unchanged
(``strip_diacritics`` on
English) is skipped for it. Criteria that are not safe to generate take their probes from their
corpus (:mod:`audit.corpus`) and are never written by the tool.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from audit.corpus import corpus_probes
from audit.errors import InputError
from audit.media import (
    IMAGE_VARIANTS,
    MEDIA_COMPLEXITY,
    PLAIN_STYLES,
    media_modality,
    speech_available,
)
from audit.packs import Criterion, Modality, Pack, ProbeTemplate
from audit.plan import Sample
from audit.probe import Expectation, Probe, content_hash, derive_rng, media_recipe, probe_id
from audit.variants import apply_variants
from audit.video import PLAIN_VIDEO, VIDEO_VARIANTS, video_available

__all__ = [
    "VARIANT_LANGUAGES",
    "SampleSize",
    "derive_rng",
    "eligible_templates",
    "parse_variant_spec",
    "synthesize",
    "synthesize_each",
    "variant_applies",
]

PLAIN_IMAGE = "image_plain"
_STYLES: Mapping[Modality, list[str]] = MappingProxyType(
    {Modality.IMAGE: sorted(IMAGE_VARIANTS), Modality.VIDEO: sorted(VIDEO_VARIANTS)}
)
_PLAIN = frozenset({*PLAIN_STYLES.values(), PLAIN_VIDEO})  # styles not listed as variants
_MEDIA = frozenset(MEDIA_COMPLEXITY)
_MEDIA_TYPES = {
    Modality.IMAGE: "image/png",
    Modality.SPEECH: "audio/wav",
    Modality.VIDEO: "video/mp4",
}
_SHARED = (Modality.IMAGE, Modality.SPEECH, Modality.VIDEO)  # in the order shares are dealt
_REDRAWS = 50  # draws of template and slots tried for a fresh text, or one a variant changes
# Variants that rewrite Vietnamese only: they are applied to Vietnamese templates, since on an
# English post they would at most strip the accents from a name, which tests nothing.
VARIANT_LANGUAGES: Mapping[str, frozenset[str]] = MappingProxyType(
    {name: frozenset({"vi"}) for name in ("strip_diacritics", "teencode", "mixed_language")}
)


@dataclass(frozen=True)
class SampleSize:
    """Probes per criterion and their forms; :meth:`from_sample` reads a plan's ``sample``."""

    violating: int
    controls: int
    variant_share: float = 0.0
    variant_arms: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    image_share: float = 0.0
    speech_share: float = 0.0
    video_share: float = 0.0

    @classmethod
    def from_sample(cls, sample: Sample) -> SampleSize:
        return cls(
            violating=sample.violating_per_criterion,
            controls=sample.controls_per_criterion,
            variant_share=sample.variant_share,
            variant_arms=MappingProxyType(dict(sample.variant_arms)),
            image_share=sample.image_share,
            speech_share=sample.speech_share,
            video_share=sample.video_share,
        )

    def share(self, modality: Modality) -> float:
        """The share of probes posted in a media modality."""
        shares = {
            Modality.IMAGE: self.image_share,
            Modality.SPEECH: self.speech_share,
            Modality.VIDEO: self.video_share,
        }
        return shares.get(modality, 0.0)


@dataclass(frozen=True)
class _Form:
    """What one probe will be, before its text is drawn."""

    variants: tuple[str, ...] = ()
    modality: Modality = Modality.TEXT
    style: str | None = None


def parse_variant_spec(spec: str) -> tuple[str, ...]:
    """``"teencode+spacing"`` -> ``("teencode", "spacing")``."""
    return tuple(part.strip() for part in spec.split("+") if part.strip())


def _languages(names: Sequence[str]) -> frozenset[str] | None:
    sets = [VARIANT_LANGUAGES[name] for name in names if name in VARIANT_LANGUAGES]
    return frozenset.intersection(*sets) if sets else None


def eligible_templates(
    templates: Sequence[ProbeTemplate], names: Sequence[str]
) -> list[ProbeTemplate]:
    """The templates a composition of variants may rewrite (all, or those of its languages)."""
    languages = _languages(names)
    if languages is None:
        return list(templates)
    return [t for t in templates if t.language.split("-")[0].lower() in languages]


def variant_applies(criterion: Criterion, names: Sequence[str]) -> bool:
    """True when the variants change some eligible template or one of its slot values."""
    templates = eligible_templates(criterion.templates, names)
    texts = [t.text for t in templates]
    slots = {name for t in templates for name in t.slot_names()}
    texts += [value for name in sorted(slots) for value in criterion.slots[name]]
    return any(apply_variants(text, names, 0) != text for text in texts)


def _dealt(items: Sequence[object], rng: random.Random) -> Iterator[int]:
    """Indices into ``items``, in shuffled rounds so each is used about equally."""
    while True:
        round_ = list(range(len(items)))
        rng.shuffle(round_)
        yield from round_


def _media_arm(names: tuple[str, ...]) -> Modality | None:
    """The modality of an arm that names one media style (``image_low_contrast``), else None."""
    modality = media_modality(names[0]) if len(names) == 1 else None
    return Modality(modality) if modality else None


def _arm_fits(criterion: Criterion, names: tuple[str, ...]) -> bool:
    """A media style fits a criterion declaring its modality; text variants one declaring them
    all, whose texts they change."""
    media = _media_arm(names)
    if media is not None:
        return criterion.safe_to_generate and media in criterion.modalities
    declared = bool(names) and all(name in criterion.variants for name in names)
    return declared and variant_applies(criterion, names)


def _check_arms(chosen: Sequence[Criterion], size: SampleSize) -> None:
    """Every arm must fit at least one chosen criterion: a media style alone, for a criterion
    declaring its modality, or text variants it declares and that change its texts."""
    for spec in sorted(size.variant_arms):
        names = parse_variant_spec(spec)
        if any(_arm_fits(c, names) for c in chosen if c.safe_to_generate):
            continue
        if any(media_modality(name) for name in names):
            raise InputError(
                f"'sample.variant_arms' may name a media style ({', '.join(sorted(_MEDIA))}) "
                f"only alone, for a chosen criterion whose modalities include its modality "
                f"(got {spec!r})"
            )
        declared = "; ".join(f"{c.id}: {', '.join(c.variants) or 'none'}" for c in chosen)
        raise InputError(
            f"'sample.variant_arms' must name variants a chosen criterion declares and "
            f"whose templates they change (got {spec!r}; declared: {declared})"
        )


def _shares(total: int, share: float) -> int:
    return min(total, round(total * share))


def _modalities(
    criterion: Criterion, count: int, size: SampleSize, rng: random.Random
) -> list[Modality]:
    """A modality for each of ``count`` probes: the sample's shares, where declared."""
    dealt: list[Modality] = []
    for modality in _SHARED:
        if modality in criterion.modalities:
            wanted = _shares(count, size.share(modality))
            dealt += [modality] * min(wanted, count - len(dealt))
    chosen = rng.sample(range(count), len(dealt))
    modalities = [Modality.TEXT] * count
    for modality, index in zip(dealt, chosen, strict=True):
        modalities[index] = modality
    return modalities


def _arm_form(names: tuple[str, ...]) -> _Form:
    """A probe of an arm: the clean text in a media style, or text with the variants."""
    media = _media_arm(names)
    if media is not None:
        return _Form(modality=media, style=names[0])
    return _Form(variants=names)


def _forms(
    criterion: Criterion, expectation: Expectation, size: SampleSize, rng: random.Random
) -> list[_Form]:
    """The forms of a criterion's violating probes or controls, arms first.

    Variants apply to text posts only: images carry the clean text in one of the banner styles,
    videos in one of the video variants, and speech the clean text (in the plain voice, or an
    arm's speech style).
    """
    arms: list[_Form] = []
    rest, share = size.controls, 0.0
    if expectation is Expectation.VIOLATING:
        arms = [
            _arm_form(parse_variant_spec(spec))
            for spec in sorted(size.variant_arms)
            if _arm_fits(criterion, parse_variant_spec(spec))
            for _ in range(size.variant_arms[spec])
        ]
        rest, share = size.violating - len(arms), size.variant_share
    modalities = _modalities(criterion, rest, size, rng)
    texts = [i for i, modality in enumerate(modalities) if modality is Modality.TEXT]
    singles = [v for v in criterion.variants if variant_applies(criterion, (v,))]
    chosen = set(rng.sample(texts, _shares(len(texts), share))) if singles else set()
    deck = _dealt(singles, rng)
    styles = {m: _dealt(names, rng) for m, names in _STYLES.items()}
    forms = list(arms)
    for index, modality in enumerate(modalities):
        variants = (singles[next(deck)],) if index in chosen else ()
        style = _STYLES[modality][next(styles[modality])] if modality in _STYLES else None
        forms.append(_Form(variants=variants, modality=modality, style=style))
    return forms


class _Deck:
    """Templates dealt in shuffled rounds, one deck per set of languages a variant allows."""

    def __init__(self, templates: list[ProbeTemplate], rng: random.Random) -> None:
        self._templates = templates
        self._rng = rng
        self._decks: dict[frozenset[str] | None, tuple[list[ProbeTemplate], Iterator[int]]] = {}

    def next(self, variants: tuple[str, ...]) -> ProbeTemplate | None:
        key = _languages(variants)
        if key not in self._decks:
            eligible = eligible_templates(self._templates, variants)
            self._decks[key] = (eligible, _dealt(eligible, self._rng))
        eligible, deck = self._decks[key]
        return eligible[next(deck)] if eligible else None


def _draw_text(
    criterion: Criterion, deck: _Deck, rng: random.Random, form: _Form, seen: set[str]
) -> tuple[ProbeTemplate, dict[str, str], str, int]:
    """A template, slots and final text for a form: fresh within the run, changed by the variant."""
    best: tuple[ProbeTemplate, dict[str, str], str, int] | None = None
    for _ in range(_REDRAWS):
        template = deck.next(form.variants)
        if template is None:
            break
        slots = {name: rng.choice(criterion.slots[name]) for name in template.slot_names()}
        clean = template.text.format(**slots)
        variant_seed = rng.getrandbits(32) if form.variants else 0
        text = apply_variants(clean, form.variants, variant_seed) if form.variants else clean
        if form.variants and text == clean:
            continue  # the variant does nothing to this text: not a variant probe
        best = best or (template, slots, text, variant_seed)
        if text not in seen:
            best = (template, slots, text, variant_seed)
            break
    if best is None:
        raise InputError(
            f"variant {'+'.join(form.variants)} changes none of the texts drawn for criterion "
            f"{criterion.id}"
        )
    seen.add(best[2])
    return best


def _make(
    criterion: Criterion,
    expectation: Expectation,
    drawn: tuple[ProbeTemplate, dict[str, str], str, int],
    form: _Form,
    probe_id_: str,
    media_seed: int,
) -> Probe:
    template, slots, text, _ = drawn
    variants = form.variants
    media_type = _MEDIA_TYPES.get(form.modality)
    style = form.style if media_type else None
    if style is not None and style not in _PLAIN:
        variants = (*variants, style)
    seed = media_seed if media_type else None
    recipe = media_recipe(form.modality, style, seed, template.language) if media_type else None
    return Probe(
        probe_id=probe_id_,
        criterion_id=criterion.id,
        expectation=expectation,
        template_id=template.id,
        slots=slots,
        language=template.language,
        modality=form.modality,
        variants=variants,
        text=text,
        media_type=media_type,
        media_style=style,
        media_seed=seed,
        content_hash=content_hash(text, recipe),
    )


def _generated(
    pack: Pack, criterion: Criterion, seed: int, run_key: str, size: SampleSize
) -> Iterator[Probe]:
    for expectation, templates in (
        (Expectation.VIOLATING, criterion.templates),
        (Expectation.CONTROL, criterion.controls),
    ):
        if not templates:
            continue
        rng = derive_rng(pack.pack.id, pack.pack.version, seed, criterion.id, expectation.value)
        forms = _forms(criterion, expectation, size, rng)
        deck = _Deck(templates, rng)
        seen: set[str] = set()
        for index, form in enumerate(forms):
            drawn = _draw_text(criterion, deck, rng, form, seen)
            pid = probe_id(run_key, criterion.id, expectation.value, index)
            media_seed = rng.getrandbits(32) if form.modality is not Modality.TEXT else 0
            yield _make(criterion, expectation, drawn, form, pid, media_seed)


def _spoken(probe: Probe) -> bool:
    if probe.corpus_file is not None:
        return False
    if probe.modality is Modality.VIDEO:
        return VIDEO_VARIANTS[probe.media_style or PLAIN_VIDEO].speech
    return probe.modality is Modality.SPEECH


def _check_programs(probes: Sequence[Probe]) -> None:
    """Refuse, before anything is posted, media this installation cannot make."""
    _check_programs_of(_needs(probes))


def _needs(probes: Iterable[Probe]) -> tuple[set[str], set[str]]:
    """The criteria whose probes need speech made, and those whose probes need video made."""
    spoken, video = set(), set()
    for probe in probes:
        if _spoken(probe):
            spoken.add(probe.criterion_id)
        if probe.modality is Modality.VIDEO and probe.corpus_file is None:
            video.add(probe.criterion_id)
    return spoken, video


def _check_programs_of(needs: tuple[set[str], set[str]]) -> None:
    spoken, video = sorted(needs[0]), sorted(needs[1])
    if spoken and not speech_available():
        raise InputError(
            f"'sample.speech_share', 'sample.video_share' or a speech style in "
            f"'sample.variant_arms' asks for speech (criteria {', '.join(spoken)}), but the "
            "espeak-ng program that renders it is not installed; install it (Debian or Ubuntu: "
            "apt-get install espeak-ng) or set those shares to 0 and leave speech styles out of "
            "the arms"
        )
    if video and not video_available():
        raise InputError(
            f"'sample.video_share' asks for video probes (criteria {', '.join(video)}), but the "
            "ffmpeg program that makes them is not installed; install it (Debian or Ubuntu: "
            "apt-get install ffmpeg) or set video_share to 0"
        )


def synthesize(
    pack: Pack,
    seed: int,
    size: SampleSize,
    run_key: str,
    criteria: list[str] | None = None,
) -> list[Probe]:
    """Probes for every chosen criterion (all, or the listed ones), violating then controls.

    ``run_key`` makes probe ids unique per run, so idempotency keys never collide across runs;
    the content depends only on (pack, seed, size). Raises :class:`InputError` before anything
    is posted when the sample asks for what cannot be made (an undeclared variant arm, speech
    without espeak-ng, video without ffmpeg, a missing corpus).
    """
    probes = list(_each_probe(pack, seed, size, run_key, criteria))
    _check_programs(probes)
    return probes


def synthesize_each(
    pack: Pack,
    seed: int,
    size: SampleSize,
    run_key: str,
    criteria: list[str] | None = None,
) -> Iterator[Probe]:
    """The probes of :func:`synthesize`, one at a time, so a large plan is never held whole;
    the check for the programs media need comes after the last probe (raised before the
    caller commits)."""
    spoken: set[str] = set()
    video: set[str] = set()
    for probe in _each_probe(pack, seed, size, run_key, criteria):
        more_spoken, more_video = _needs([probe])
        spoken |= more_spoken
        video |= more_video
        yield probe
    _check_programs_of((spoken, video))


def _each_probe(
    pack: Pack, seed: int, size: SampleSize, run_key: str, criteria: list[str] | None
) -> Iterator[Probe]:
    chosen = [c for c in pack.criteria if criteria is None or c.id in criteria]
    _check_arms(chosen, size)
    for criterion in chosen:
        if criterion.safe_to_generate:
            yield from _generated(pack, criterion, seed, run_key, size)
        else:
            counts = (size.violating, size.controls)
            yield from corpus_probes(pack, criterion, seed, run_key, counts)
