"""Evasion variants: examples for each, and properties that hold for every variant.

Text strategies: ``domain_text`` draws from Vietnamese and English letters (every precomposed
Vietnamese vowel with every tone, đ/Đ), digits, spaces and basic punctuation ``.,!?;:'"()-``.
Round trips use it minus the characters the variant inserts itself (for punctuation: its
separators ``. - _ *``), and also arbitrary Unicode minus those characters.
"""

from __future__ import annotations

import itertools
import re
import string
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.variants import (
    EMOJI,
    HOMOGLYPH_CHARS,
    SEPARATORS,
    VARIANTS,
    ZERO_WIDTH_CHARS,
    Variant,
    apply_variants,
    strip_diacritics,
    variant_names,
    variant_rng,
)

TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
VOWELS = "aăâeêioôơuưy"
VI_LOWER = [unicodedata.normalize("NFC", v + t) for v in VOWELS for t in TONES] + list(
    "bcdđghklmnpqrstvx"
)
VI_LETTERS = sorted({*VI_LOWER, *(c.upper() for c in VI_LOWER), *string.ascii_letters})
PUNCTUATION = " .,!?;:'\"()-"
ALPHABET = "".join(VI_LETTERS) + string.digits + PUNCTUATION

# What each variant inserts, kept out of the text it must round-trip.
INSERTED = {
    "homoglyphs": "".join(HOMOGLYPH_CHARS),
    "zero_width": "".join(ZERO_WIDTH_CHARS),
    "spacing": "",
    "punctuation": "".join(SEPARATORS),
    "emoji": "".join(EMOJI),
}
# Readability: len(output) <= factor * len(input) on domain text.
GROWTH = {
    "strip_diacritics": 1,
    "teencode": 1,
    "homoglyphs": 1,
    "leetspeak": 1,
    "zero_width": 2,
    "spacing": 2,
    "punctuation": 2,
    "emoji": 2,
    "mixed_language": 3,
}
SAMPLES = (
    "Xem bói giải hạn, đảm bảo hiệu quả 100%. Liên hệ thầy để được tư vấn miễn phí!",
    "Nhận xem tử vi trọn đời, bói bài tarot online, giá rẻ uy tín, chuyển khoản trước.",
    "Cúng giải hạn sao xấu đầu năm, làm bùa yêu linh nghiệm, không hiệu quả hoàn tiền.",
    "Thầy phong thủy xem tướng xem chỉ tay, giải vận hạn, cầu may mắn tài lộc cho cả nhà.",
)
ENGLISH = "Fortune reading and bad luck removal online, inbox now for a cheap price today."
LETTER_LEVEL = ("spacing", "punctuation", "leetspeak", "emoji", "zero_width", "homoglyphs")
SEEDS = range(20)


def domain_text(exclude: str = "") -> st.SearchStrategy[str]:
    """Vietnamese/English letters, digits, spaces and basic punctuation, minus ``exclude``."""
    return st.text(alphabet=sorted(set(ALPHABET) - set(exclude)), max_size=80)


def any_text(exclude: str = "") -> st.SearchStrategy[str]:
    """Arbitrary Unicode text (no surrogates), minus ``exclude``."""
    chars = st.characters(codec="utf-8", exclude_characters=exclude)
    return st.text(alphabet=chars, max_size=80)


def run(name: str, text: str, seed: int) -> str:
    return apply_variants(text, [name], seed)


def normaliser(name: str) -> Variant:
    variant = VARIANTS[name]
    assert variant.normalise is not None
    return variant


ALL = variant_names()
INVERTIBLE = [name for name in ALL if VARIANTS[name].invertible]


# --- the registry -----------------------------------------------------------------------


def test_registry_holds_the_nine_variants_simplest_first() -> None:
    assert set(ALL) == set(GROWTH)
    complexities = [VARIANTS[name].complexity for name in ALL]
    assert complexities == sorted(complexities)
    assert ALL[0] == "strip_diacritics"


@pytest.mark.parametrize("name", ALL)
def test_variant_is_described_and_consistent(name: str) -> None:
    variant = VARIANTS[name]
    assert variant.name == name
    assert variant.description
    assert "\n" not in variant.description
    assert len(variant.description) <= 80
    assert 1 <= variant.complexity <= 4
    assert variant.invertible == (variant.normalise is not None)


def test_invertible_variants_are_the_documented_ones() -> None:
    assert set(INVERTIBLE) == set(INSERTED)


def test_unknown_name_raises_key_error_listing_the_known_names() -> None:
    with pytest.raises(KeyError, match="unknown variant 'nope'") as raised:
        apply_variants("xem bói", ["spacing", "nope"], 1)
    for name in ALL:
        assert name in str(raised.value)


def test_homoglyph_table_maps_back_to_one_letter_each() -> None:
    normalise = normaliser("homoglyphs").normalise
    assert normalise is not None
    for char in HOMOGLYPH_CHARS:
        assert not char.isascii()
        assert normalise(char).isascii()
        assert normalise(char).isalpha()


# --- examples ---------------------------------------------------------------------------

EXACT = [
    ("strip_diacritics", "Xem bói giải hạn, đảm bảo", "Xem boi giai han, dam bao"),
    ("strip_diacritics", "ĐẶT LỊCH XEM TỬ VI", "DAT LICH XEM TU VI"),
    ("strip_diacritics", "Ưu đãi: cúng sao giải hạn", "Uu dai: cung sao giai han"),
    ("strip_diacritics", "xem bo\u0301i", "xem boi"),  # decomposed input
    ("teencode", "Phong thủy, cúng bùa", "Fong thủy, kúng bùa"),
    ("teencode", "gì", "j"),
    ("leetspeak", "xem bói giải hạn", "x3m b01 g141 h4n"),
    ("spacing", "xem bói", "x e m  b ó i"),
    ("spacing", "Xem bói!", "X e m  b ó i!"),
    ("mixed_language", "Phong thủy, xem chỉ tay", "Feng shui, palm reading"),
]


@pytest.mark.parametrize(("name", "text", "expected"), EXACT)
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_exact_examples(name: str, text: str, expected: str, seed: int) -> None:
    assert run(name, text, seed) == expected


@pytest.mark.parametrize("seed", SEEDS)
def test_teencode_uses_chat_short_forms(seed: int) -> None:
    words = run("teencode", "không được gì", seed).split()
    assert words[0] in {"ko", "k", "hông", "không"}
    assert words[1] in {"dc", "đc", "được"}
    assert words[2] in {"j", "gì"}
    assert words != ["không", "được", "gì"]


@pytest.mark.parametrize("seed", SEEDS)
def test_teencode_respells_keywords(seed: int) -> None:
    first, second = run("teencode", "Giải quẻ", seed).split()
    assert first in {"Jảj", "Zảj"}
    assert second in {"wẻ", "qwẻ"}


@pytest.mark.parametrize("seed", SEEDS)
def test_punctuation_puts_one_separator_between_every_letter(seed: int) -> None:
    out = run("punctuation", "xem bói", seed)
    assert re.fullmatch(r"x([.\-_*])e\1m b([.\-_*])ó\2i", out), out


@pytest.mark.parametrize("seed", SEEDS)
def test_mixed_language_swaps_domain_phrases(seed: int) -> None:
    out = run("mixed_language", "Xem bói giải hạn", seed)
    first = ("Fortune reading", "Fortune telling")
    second = ("remove bad luck", "bad luck removal")
    assert out in {f"{a} {b}" for a in first for b in second}


@pytest.mark.parametrize("seed", SEEDS)
def test_homoglyphs_swap_letters_for_look_alikes(seed: int) -> None:
    out = run("homoglyphs", "xem bói", seed)
    changed = [b for a, b in zip("xem bói", out, strict=True) if a != b]
    assert changed
    assert set(changed) <= HOMOGLYPH_CHARS


@pytest.mark.parametrize("seed", SEEDS)
def test_zero_width_hides_characters_inside_each_keyword(seed: int) -> None:
    out = run("zero_width", "xem bói", seed)
    for word in out.split(" "):
        assert set(word) & set(ZERO_WIDTH_CHARS)
        assert word[0] not in ZERO_WIDTH_CHARS
        assert word[-1] not in ZERO_WIDTH_CHARS


@pytest.mark.parametrize("seed", SEEDS)
def test_emoji_goes_between_two_letters_of_each_keyword(seed: int) -> None:
    out = run("emoji", "xem bói", seed)
    for word in out.split(" "):
        spots = [i for i, char in enumerate(word) if char in EMOJI]
        assert len(spots) == 1
        assert 0 < spots[0] < len(word) - 1


# --- properties for every variant -------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@given(text=domain_text(), seed=st.integers())
def test_deterministic(name: str, text: str, seed: int) -> None:
    assert run(name, text, seed) == run(name, text, seed)
    assert VARIANTS[name].apply(text, variant_rng(seed, name)) == run(name, text, seed)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed", [0, 1, -5, 2**64])
def test_empty_text_stays_empty(name: str, seed: int) -> None:
    assert run(name, "", seed) == ""


@pytest.mark.parametrize("name", ALL)
@given(text=domain_text(), seed=st.integers())
def test_output_length_is_within_the_readability_bound(name: str, text: str, seed: int) -> None:
    assert len(run(name, text, seed)) <= GROWTH[name] * len(text)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("sample", SAMPLES)
def test_every_variant_changes_every_sample(name: str, sample: str) -> None:
    outputs = {run(name, sample, seed) for seed in SEEDS}
    assert sample not in outputs
    assert all(len(out) <= GROWTH[name] * len(sample) for out in outputs)


@pytest.mark.parametrize("name", LETTER_LEVEL)
def test_letter_level_variants_change_english_too(name: str) -> None:
    assert len({run(name, ENGLISH, seed) for seed in SEEDS} - {ENGLISH}) >= 15


@pytest.mark.parametrize("name", ["strip_diacritics", "mixed_language"])
def test_vietnamese_only_variants_leave_english_alone(name: str) -> None:
    assert run(name, ENGLISH, 4) == ENGLISH


@pytest.mark.parametrize("name", ALL)
def test_different_seeds_usually_differ(name: str) -> None:
    """Over the fixed samples, 20 seeds give at least 10 distinct outputs per sample, except
    for a variant declared unseeded, which gives exactly one."""
    for sample in SAMPLES:
        distinct = len({run(name, sample, seed) for seed in SEEDS})
        if VARIANTS[name].seeded:
            assert distinct >= 10, (sample, distinct)
        else:
            assert distinct == 1


@given(text=domain_text())
def test_strip_diacritics_gives_ascii_for_vietnamese_text(text: str) -> None:
    assert run("strip_diacritics", text, 0).isascii()


@given(text=any_text())
def test_strip_diacritics_leaves_ascii_alone_and_is_idempotent(text: str) -> None:
    once = strip_diacritics(text)
    assert strip_diacritics(once) == once
    ascii_only = "".join(char for char in text if char.isascii())
    assert strip_diacritics(ascii_only) == ascii_only


@pytest.mark.parametrize("name", INVERTIBLE)
@given(data=st.data(), seed=st.integers())
def test_round_trip_on_domain_text(name: str, data: st.DataObject, seed: int) -> None:
    text = data.draw(domain_text(exclude=INSERTED[name]))
    normalise = normaliser(name).normalise
    assert normalise is not None
    assert normalise(run(name, text, seed)) == text


@pytest.mark.parametrize("name", INVERTIBLE)
@given(data=st.data(), seed=st.integers())
def test_round_trip_on_any_unicode(name: str, data: st.DataObject, seed: int) -> None:
    text = data.draw(any_text(exclude=INSERTED[name]))
    normalise = normaliser(name).normalise
    assert normalise is not None
    assert normalise(run(name, text, seed)) == text


@given(text=domain_text())
def test_spacing_survives_collapsed_whitespace_up_to_spaces(text: str) -> None:
    """The weaker property that holds even when a platform collapses runs of spaces."""
    collapsed = re.sub(" +", " ", run("spacing", text, 3))
    assert collapsed.replace(" ", "") == text.replace(" ", "")


@given(
    text=domain_text(exclude="".join(SEPARATORS)),
    order=st.permutations(INVERTIBLE),
    seed=st.integers(),
)
def test_invertible_variants_compose_and_undo_in_reverse(
    text: str, order: list[str], seed: int
) -> None:
    out = apply_variants(text, order, seed)
    for name in reversed(order):
        normalise = normaliser(name).normalise
        assert normalise is not None
        out = normalise(out)
    assert out == text


@pytest.mark.parametrize("pair", list(itertools.permutations(ALL, 2)))
def test_composition_applies_in_order_with_per_name_generators(pair: tuple[str, str]) -> None:
    first, second = pair
    text = SAMPLES[0]
    by_hand = VARIANTS[first].apply(text, variant_rng(9, first))
    by_hand = VARIANTS[second].apply(by_hand, variant_rng(9, second))
    assert apply_variants(text, [first, second], 9) == by_hand
