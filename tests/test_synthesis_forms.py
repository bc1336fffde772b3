"""Synthesis: variant arms and shares, image and speech probes, determinism and anti-gaming."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import InputError
from audit.media import IMAGE_VARIANTS, SPEECH_VARIANTS, render_speech
from audit.packs import Modality, Pack, load_pack, resolve_pack
from audit.plan import Sample
from audit.probe import Expectation, Probe
from audit.probe_media import probe_media
from audit.synthesis import SampleSize, eligible_templates, synthesize
from audit.variants import EMOJI, HOMOGLYPH_CHARS, ZERO_WIDTH_CHARS
from tests.test_media import MIN_OVERLAP, ocr, overlap, require_program

PACKS = ("vn-superstition", "scam-ads")
INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e]")
MARKER_WORDS = re.compile(r"\b(test|probe|audit|synthetic|platform-audit)\b", re.IGNORECASE)


def pack(ref: str = "vn-superstition") -> Pack:
    return load_pack(resolve_pack(ref))


def size(
    violating: int = 40,
    controls: int = 10,
    *,
    variant_share: float = 0.0,
    variant_arms: dict[str, int] | None = None,
    image_share: float = 0.0,
    speech_share: float = 0.0,
) -> SampleSize:
    return SampleSize(
        violating,
        controls,
        variant_share=variant_share,
        variant_arms=MappingProxyType(variant_arms or {}),
        image_share=image_share,
        speech_share=speech_share,
    )


def clean_text(p: Pack, probe: Probe) -> str:
    criterion = p.criterion(probe.criterion_id)
    templates = {t.id: t for t in [*criterion.templates, *criterion.controls]}
    return templates[probe.template_id].text.format(**probe.slots)


# --- determinism and anti-gaming ------------------------------------------------------------


@pytest.mark.parametrize("ref", PACKS)
def test_same_pack_and_seed_give_the_same_probes_whatever_the_run(ref: str) -> None:
    forms = size(variant_share=0.4, image_share=0.2)
    first = synthesize(pack(ref), 11, forms, run_key="run-a")
    second = synthesize(pack(ref), 11, forms, run_key="run-b")
    assert [p.model_dump(exclude={"probe_id"}) for p in first] == [
        p.model_dump(exclude={"probe_id"}) for p in second
    ]
    assert {p.probe_id for p in first}.isdisjoint(p.probe_id for p in second)


@pytest.mark.parametrize("ref", PACKS)
def test_two_seeds_share_few_exact_texts(ref: str) -> None:
    forms = size(60, 20, variant_share=0.3)
    texts = [
        {
            p.text
            for p in synthesize(pack(ref), seed, forms, run_key="r")
            if p.expectation == "violating"
        }
        for seed in (1, 2)
    ]
    shared = texts[0] & texts[1]
    assert len(shared) <= 0.05 * len(texts[0]), sorted(shared)


@pytest.mark.parametrize("ref", PACKS)
def test_violating_texts_are_not_repeated_within_a_run(ref: str) -> None:
    probes = synthesize(pack(ref), 3, size(60, 0), run_key="r")
    for criterion, count in Counter(p.criterion_id for p in probes).items():
        texts = {p.text for p in probes if p.criterion_id == criterion}
        assert len(texts) == count


@pytest.mark.parametrize("ref", PACKS)
def test_clean_probes_are_the_template_text_and_carry_no_marker(ref: str) -> None:
    p = pack(ref)
    probes = synthesize(p, 5, size(30, 10, image_share=0.2), run_key="marker-check")
    for probe in probes:
        assert probe.probe_id not in probe.text
        assert not MARKER_WORDS.search(probe.text), probe.text
        if not probe.variants or probe.variants[0].startswith("image_"):
            assert probe.text == clean_text(p, probe)
            assert not INVISIBLE.search(probe.text)


# --- variants ----------------------------------------------------------------------------------


def test_variant_share_uses_only_declared_variants_and_changes_every_text() -> None:
    p = pack()
    probes = synthesize(p, 9, size(60, 10, variant_share=0.5), run_key="r")
    for probe in probes:
        text_variants = probe.text_variants
        if probe.expectation is Expectation.CONTROL:
            assert not text_variants
            continue
        if text_variants:
            assert probe.modality is Modality.TEXT
            assert set(text_variants) <= set(p.criterion(probe.criterion_id).variants)
            assert probe.text != clean_text(p, probe)
    by_criterion = Counter(
        p.criterion_id for p in probes if p.text_variants and p.expectation == "violating"
    )
    assert by_criterion == {"VN-SUP-01": 30, "VN-SUP-02": 30, "VN-SUP-03": 30}


def test_vietnamese_variants_rewrite_only_vietnamese_templates() -> None:
    p = pack()
    arms = {"strip_diacritics": 10, "mixed_language": 5, "teencode": 5}
    probes = synthesize(p, 2, size(30, 0, variant_arms=arms), run_key="r", criteria=["VN-SUP-01"])
    varied = [probe for probe in probes if probe.variants]
    assert Counter("+".join(probe.variants) for probe in varied) == arms
    assert {probe.language for probe in varied} == {"vi"}


def test_variant_arms_are_counted_within_the_violating_probes() -> None:
    p = pack()
    forms = size(20, 4, variant_arms={"strip_diacritics+spacing": 6, "zero_width": 3})
    probes = synthesize(p, 4, forms, run_key="r", criteria=["VN-SUP-01"])
    violating = [probe for probe in probes if probe.expectation == "violating"]
    assert len(violating) == 20
    counts = Counter("+".join(probe.variants) or "clean" for probe in violating)
    assert counts == {"strip_diacritics+spacing": 6, "zero_width": 3, "clean": 11}


def test_an_arm_applies_to_each_criterion_that_declares_it() -> None:
    forms = size(10, 0, variant_arms={"teencode": 4})  # VN-SUP-03 does not declare teencode
    probes = synthesize(pack(), 4, forms, run_key="r")
    counts = Counter(probe.criterion_id for probe in probes if probe.variants == ("teencode",))
    assert counts == {"VN-SUP-01": 4, "VN-SUP-02": 4}


def test_an_arm_no_chosen_criterion_declares_is_refused_naming_them() -> None:
    forms = size(10, 0, variant_arms={"teencode": 4})
    with pytest.raises(
        InputError, match=r"'sample.variant_arms'.*teencode.*VN-SUP-03: strip_diacritics"
    ):
        synthesize(pack(), 4, forms, run_key="r", criteria=["VN-SUP-03"])


def test_a_media_style_arm_posts_the_clean_text_in_that_style(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the forms are the point here, not the audio: nothing is rendered, so the check for
    # espeak-ng (which refuses speech where it is missing) is answered as on a machine with it
    monkeypatch.setattr("audit.synthesis.speech_available", lambda: True)
    p = pack()
    arms = {"image_low_contrast": 5, "image_plain": 4, "speech_fast": 3}
    probes = synthesize(p, 4, size(20, 2, variant_arms=arms), run_key="r")
    violating = [probe for probe in probes if probe.expectation == "violating"]
    forms = Counter(
        (probe.criterion_id, probe.modality.value, probe.media_style, probe.variants)
        for probe in violating
        if probe.media_style is not None
    )
    for criterion in ("VN-SUP-01", "VN-SUP-02"):
        assert forms[(criterion, "image", "image_low_contrast", ("image_low_contrast",))] == 5
        assert forms[(criterion, "image", "image_plain", ())] == 4
    assert forms[("VN-SUP-01", "speech", "speech_fast", ("speech_fast",))] == 3
    assert not [key for key in forms if key[0] == "VN-SUP-02" and key[1] == "speech"]
    arm_probes = [probe for probe in violating if probe.media_style is not None]
    assert all(probe.text == clean_text(p, probe) for probe in arm_probes)
    assert all(probe.media_seed is not None for probe in arm_probes)
    assert Counter(probe.criterion_id for probe in violating)["VN-SUP-02"] == 20


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ({"speech_fast": 2}, r"media style .* only alone, for a chosen criterion whose modalities"),
        ({"image_noise+spacing": 2}, r"only alone,.* \(got 'image_noise\+spacing'\)"),
    ],
)
def test_a_media_style_arm_that_cannot_be_posted_is_refused(
    arms: dict[str, int], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        synthesize(pack(), 4, size(10, 0, variant_arms=arms), run_key="r", criteria=["VN-SUP-02"])


@pytest.mark.slow
def test_a_speech_style_arm_is_spoken_in_its_style() -> None:
    require_program("espeak-ng", "espeak-ng")
    forms = size(4, 0, variant_arms={"speech_voice": 2})
    probes = synthesize(pack(), 4, forms, run_key="r", criteria=["VN-SUP-01"])
    probe = next(p for p in probes if p.media_style == "speech_voice")
    assert probe.modality is Modality.SPEECH and probe.media_type == "audio/wav"
    assert probe.media_seed is not None
    voiced = render_speech(
        probe.text, probe.language, probe.media_seed, SPEECH_VARIANTS["speech_voice"]
    )
    assert probe_media(probe) == voiced
    assert voiced != render_speech(probe.text, probe.language, probe.media_seed)


def test_eligible_templates_keep_all_for_language_neutral_variants() -> None:
    templates = pack().criterion("VN-SUP-01").templates
    assert eligible_templates(templates, ["homoglyphs"]) == templates
    assert {t.language for t in eligible_templates(templates, ["strip_diacritics"])} == {"vi"}


def test_inserted_characters_appear_only_in_probes_of_their_variant() -> None:
    probes = synthesize(pack(), 8, size(60, 10, variant_share=0.6), run_key="r")
    for probe in probes:
        if "zero_width" not in probe.variants:
            assert not set(probe.text) & set(ZERO_WIDTH_CHARS)
        if "homoglyphs" not in probe.variants:
            assert not set(probe.text) & HOMOGLYPH_CHARS


# --- modalities --------------------------------------------------------------------------------


def test_modalities_follow_the_shares_where_the_criterion_declares_them() -> None:
    require_program("espeak-ng", "espeak-ng")  # speech probes are rendered when synthesised
    forms = size(40, 10, image_share=0.25, speech_share=0.1)
    probes = synthesize(pack(), 6, forms, run_key="r")
    counts = Counter((p.criterion_id, p.expectation.value, p.modality.value) for p in probes)
    assert counts[("VN-SUP-01", "violating", "image")] == 10
    assert counts[("VN-SUP-01", "violating", "speech")] == 4
    assert counts[("VN-SUP-02", "violating", "speech")] == 0  # text and image only
    assert counts[("VN-SUP-02", "control", "image")] == 2  # round(10 * 0.25) = 2
    for probe in probes:
        if probe.modality is Modality.IMAGE:
            assert probe.media_type == "image/png" and probe.media_style in IMAGE_VARIANTS
            assert probe.media_seed is not None and not probe.text_variants
        elif probe.modality is Modality.SPEECH:
            assert probe.media_type == "audio/wav" and probe.variants == ()
        else:
            assert probe.media_type is None and probe.media_seed is None


def test_image_styles_other_than_plain_are_recorded_as_variants() -> None:
    probes = synthesize(pack(), 6, size(60, 0, image_share=0.5), run_key="r")
    images = [p for p in probes if p.modality is Modality.IMAGE]
    assert {p.media_style for p in images} == set(IMAGE_VARIANTS)
    for probe in images:
        expected = () if probe.media_style == "image_plain" else (probe.media_style,)
        assert probe.variants == expected


def test_media_content_hash_pins_the_recipe() -> None:
    probes = synthesize(pack(), 6, size(20, 0, image_share=0.5), run_key="r")
    images = [p for p in probes if p.modality is Modality.IMAGE]
    assert len({p.content_hash for p in images}) == len(images)
    texts = [p for p in probes if p.modality is Modality.TEXT]
    assert all(p.content_hash.startswith("sha256:") for p in texts)


def test_image_probe_media_is_a_deterministic_png() -> None:
    probe = next(
        p
        for p in synthesize(pack(), 6, size(8, 0, image_share=0.5), run_key="r")
        if p.modality is Modality.IMAGE
    )
    media = probe_media(probe)
    assert media is not None and media.startswith(b"\x89PNG\r\n\x1a\n")
    assert probe_media(probe) == media


@pytest.mark.slow
def test_image_probe_shows_the_probe_text(tmp_path: Path) -> None:
    """The banner of an image probe carries the probe's own text (read back by OCR)."""
    probe = next(
        p
        for p in synthesize(pack(), 6, size(12, 0, image_share=1.0), run_key="r")
        if p.media_style == "image_plain" and p.language == "en"
    )
    media = probe_media(probe)
    assert media is not None
    assert overlap(probe.text, ocr(media, "eng", tmp_path)) >= MIN_OVERLAP


def test_text_probe_has_no_media() -> None:
    probe = synthesize(pack(), 6, size(1, 0), run_key="r")[0]
    assert probe_media(probe) is None


def test_speech_without_espeak_is_refused_before_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audit.synthesis.speech_available", lambda: False)
    with pytest.raises(InputError, match=r"speech_share.*VN-SUP-01.*espeak-ng"):
        synthesize(pack(), 1, size(10, 0, speech_share=0.2), run_key="r")
    assert synthesize(pack(), 1, size(10, 0, image_share=0.2), run_key="r")


def test_sample_size_reads_every_field_of_the_plan_sample() -> None:
    sample = Sample(
        violating_per_criterion=30,
        controls_per_criterion=5,
        variant_share=0.2,
        variant_arms={"spacing": 4},
        image_share=0.1,
        speech_share=0.05,
    )
    forms = SampleSize.from_sample(sample)
    assert (forms.violating, forms.controls, forms.variant_share) == (30, 5, 0.2)
    assert dict(forms.variant_arms) == {"spacing": 4}
    assert (forms.image_share, forms.speech_share) == (0.1, 0.05)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image_share": 0.7, "speech_share": 0.5}, "add up to at most 1"),
        ({"violating_per_criterion": 5, "variant_arms": {"spacing": 6}}, "fit within"),
        ({"variant_share": 1.5}, "less than or equal to 1"),
    ],
)
def test_sample_rejects_forms_that_do_not_fit(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sample.model_validate(fields)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    violating=st.integers(1, 40),
    controls=st.integers(0, 10),
    variant_share=st.floats(0, 1),
    image_share=st.floats(0, 0.5),
    speech_share=st.floats(0, 0.5),
)
def test_counts_and_declarations_hold_for_any_sample(
    seed: int,
    violating: int,
    controls: int,
    variant_share: float,
    image_share: float,
    speech_share: float,
) -> None:
    require_program("espeak-ng", "espeak-ng")  # speech probes are rendered when synthesised
    p = pack()
    forms = size(
        violating, controls, variant_share=variant_share, image_share=image_share,
        speech_share=speech_share,
    )  # fmt: skip
    probes = synthesize(p, seed, forms, run_key="prop")
    for criterion in p.criteria:
        mine = [probe for probe in probes if probe.criterion_id == criterion.id]
        assert sum(probe.expectation == "violating" for probe in mine) == violating
        assert sum(probe.expectation == "control" for probe in mine) == controls
        for probe in mine:
            assert probe.modality in criterion.modalities
            assert set(probe.text_variants) <= set(criterion.variants)
            assert not (set(probe.text) & set(EMOJI) - set(clean_text(p, probe))) or (
                "emoji" in probe.variants
            )
