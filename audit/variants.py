"""Evasion variants: named, seeded, composable transforms of a probe's text.

A variant rewrites a probe the way a poster who wants to slip past a keyword filter would
("xem bói" -> "xem boi", "x.e.m b.ó.i", "xеm bói" with a Cyrillic "е"...). Each one is a pure
function of the text and a ``random.Random``; :func:`apply_variants` derives that generator from
``(seed, name)``, so a list of variants applied in order is deterministic for a given seed.

Most variants rewrite a seeded subset of the words. Words of the superstition-service domain
("bói", "giải", "hạn", "tử", "vi", ...; matched without diacritics) are always in the subset,
because they are what a filter looks for; at least one word is rewritten whenever any can be.

``normalise`` undoes a variant where that is possible. The exact property, for every text
``x`` that does not already contain the characters the variant inserts:

============  ==============================================================================
variant       ``normalise(apply(x))``
============  ==============================================================================
homoglyphs    ``== x`` (look-alikes mapped back; ``x`` must hold none of the look-alikes)
zero_width    ``== x`` (U+200B, U+200C and U+2060 removed; ``x`` must hold none of them)
spacing       ``== x`` for every ``x``: spaces are inserted only between two letters, one at a
              time, and every space already in ``x`` is doubled, so a lone space is always an
              inserted one. A platform that collapses runs of spaces breaks that; what survives
              even then is ``remove_spaces(apply(x)) == remove_spaces(x)``.
punctuation   ``== x`` when no separator (``. - _ *``) stands between two letters in ``x``
              (so not for "e-mail"); normalise removes a separator between two letters.
emoji         ``== x`` (the inserted emoji removed; ``x`` must hold none of them)
============  ==============================================================================

strip_diacritics, teencode, leetspeak and mixed_language lose information and have no
``normalise``.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "EMOJI",
    "HOMOGLYPH_CHARS",
    "SEPARATORS",
    "VARIANTS",
    "ZERO_WIDTH_CHARS",
    "Variant",
    "apply_variants",
    "strip_diacritics",
    "variant_names",
    "variant_rng",
]

Transform = Callable[[str, random.Random], str]


@dataclass(frozen=True)
class Variant:
    """One named evasion transform.

    ``complexity`` ranks variants from the simplest (1, what anyone types) to the most
    deliberate (4, needs a tool), so a scorecard can name the simplest variant that survives.
    ``seeded`` is False for a variant whose output does not depend on the seed.
    """

    name: str
    description: str
    complexity: int
    invertible: bool
    apply: Transform
    normalise: Callable[[str], str] | None
    seeded: bool = True


# --- strip_diacritics ---------------------------------------------------------------------

_DOTLESS = {"đ": "d", "Đ": "D"}


def strip_diacritics(text: str) -> str:
    """Remove the marks from Latin letters ("xem bói giải hạn, đảm bảo" -> "xem boi giai han,
    dam bao"); other scripts are left alone. Output length <= length of the NFC input."""
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        char = _DOTLESS.get(char, char)
        parts = unicodedata.normalize("NFD", char)
        if parts[0].isascii() and all(unicodedata.combining(c) for c in parts[1:]):
            out.append(parts[0])
        elif not (unicodedata.combining(char) and out and out[-1].isascii()):
            out.append(char)
    return "".join(out)


def _strip_diacritics(text: str, _rng: random.Random) -> str:
    return strip_diacritics(text)


# --- words --------------------------------------------------------------------------------

_SPLIT = re.compile(r"(\s+)")
_EDGES = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)
# Words a superstition-service filter looks for; the ASCII forms catch text already stripped.
_KEYWORDS = frozenset({
    "xem", "bói", "giải", "hạn", "tử", "vi", "phong", "thủy", "thuỷ", "cúng", "bùa", "ngải",
    "linh", "thầy", "tarot", "quẻ", "vận", "tướng",
})  # fmt: skip
_ASCII_KEYWORDS = frozenset(strip_diacritics(word) for word in _KEYWORDS)
_SHARE = 0.5  # chance that a word outside the keywords is rewritten


def _is_keyword(word: str) -> bool:
    """True for a word of the domain vocabulary, in any case, with or without its diacritics."""
    core = unicodedata.normalize("NFC", _core(word)).lower()
    return core in _KEYWORDS or (core.isascii() and core in _ASCII_KEYWORDS)


def _edges(word: str) -> tuple[str, str, str]:
    """``word`` cut into leading punctuation, the word proper, and trailing punctuation."""
    match = _EDGES.match(word)
    assert match is not None  # the pattern matches every string
    head, core, tail = match.groups()
    return head, core, tail


def _core(word: str) -> str:
    """The word without leading and trailing punctuation."""
    return _edges(word)[1]


def _pick(words: Sequence[str], eligible: Callable[[str], bool], rng: random.Random) -> set[int]:
    """Indices of the words to rewrite: keywords, a seeded share of the others, at least one."""
    candidates = [i for i, word in enumerate(words) if eligible(word)]
    picked = {i for i in candidates if _is_keyword(words[i]) or rng.random() < _SHARE}
    if candidates and not picked:
        picked.add(rng.choice(candidates))
    return picked


def _rewrite_words(
    text: str, rng: random.Random, eligible: Callable[[str], bool], change: Transform
) -> str:
    """Apply ``change`` to the picked words of ``text``, keeping the whitespace between them."""
    parts = _SPLIT.split(text)
    words = [part if i % 2 == 0 else "" for i, part in enumerate(parts)]
    for i in sorted(_pick(words, eligible, rng)):
        parts[i] = change(parts[i], rng)
    return "".join(parts)


def _letter_gaps(word: str) -> list[int]:
    """Positions ``i`` with a letter at ``i - 1`` and at ``i``."""
    return [i for i in range(1, len(word)) if word[i - 1].isalpha() and word[i].isalpha()]


def _has_gap(word: str) -> bool:
    return bool(_letter_gaps(word))


def _insert(word: str, inserts: Mapping[int, str]) -> str:
    """``word`` with ``inserts[i]`` placed before position ``i``."""
    return "".join(inserts.get(i, "") + char for i, char in enumerate(word))


def _match_case(source: str, replacement: str) -> str:
    """``replacement`` capitalised like ``source`` (all capitals, initial capital, or as is)."""
    if len(source) > 1 and source.isupper():
        return replacement.upper()
    if source[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


# --- teencode -----------------------------------------------------------------------------

_TEEN_WORDS: Mapping[str, tuple[str, ...]] = {
    "không": ("ko", "k", "hông"),
    "được": ("dc", "đc"),
    "gì": ("j",),
    "vậy": ("v", "zậy"),
    "rồi": ("r",),
    "với": ("vs", "vớj"),
    "biết": ("bít", "bik"),
    "bạn": ("bn", "pạn"),
    "mình": ("mk", "mik"),
    "người": ("ng",),
    "nhiều": ("nhìu",),
    "yêu": ("iu",),
    "trước": ("trc",),
    "cũng": ("cx", "cũg"),
    "thôi": ("thui",),
    "anh": ("a",),
    "em": ("e",),
    "giờ": ("h",),
    "nhé": ("nhe", "nha"),
    "chồng": ("ck",),
    "vợ": ("vk",),
}
# Spelling rules for other words: pattern, and the chat spellings to pick from.
_TEEN_RULES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"ph", re.IGNORECASE), ("f",)),
    (re.compile(r"^qu", re.IGNORECASE), ("w", "qw")),
    (re.compile(r"^gi(?=\w)", re.IGNORECASE), ("j", "z")),
    (re.compile(r"^c(?!h)", re.IGNORECASE), ("k",)),
    (re.compile(r"^d", re.IGNORECASE), ("z",)),
    (re.compile(r"(?<=\w)i$", re.IGNORECASE), ("j",)),
)


def _respell(core: str, rng: random.Random) -> str:
    """``core`` after the spelling rules, each match keeping its capitalisation."""
    for pattern, shorts in _TEEN_RULES:
        core = pattern.sub(_cased(shorts, rng), core)
    return core


def _cased(shorts: tuple[str, ...], rng: random.Random) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return _match_case(match.group(), rng.choice(shorts))

    return replace


def _teen_eligible(word: str) -> bool:
    core = _core(word)
    return core.lower() in _TEEN_WORDS or any(p.search(core) for p, _ in _TEEN_RULES)


def _teen_change(word: str, rng: random.Random) -> str:
    """The chat spelling of one word: a known short form, else the spelling rules."""
    head, core, tail = _edges(word)
    forms = _TEEN_WORDS.get(core.lower())
    short = _match_case(core, rng.choice(forms)) if forms else _respell(core, rng)
    return head + short + tail


def _teencode(text: str, rng: random.Random) -> str:
    return _rewrite_words(text, rng, _teen_eligible, _teen_change)


# --- homoglyphs ---------------------------------------------------------------------------

_LOOKALIKES: Mapping[str, str] = {
    # Latin letter: its Cyrillic and Greek look-alikes
    "a": "а", "c": "с", "e": "е", "i": "і", "j": "ј", "o": "оο", "p": "р", "s": "ѕ",
    "v": "ν", "x": "х", "y": "у", "A": "АΑ", "B": "ВΒ", "C": "С", "E": "ЕΕ", "H": "НΗ",
    "I": "ІΙ", "J": "Ј", "K": "КΚ", "M": "МΜ", "N": "Ν", "O": "ОΟ", "P": "РΡ", "S": "Ѕ",
    "T": "ТΤ", "X": "ХΧ", "Y": "ΥҮ", "Z": "Ζ",
}  # fmt: skip
_UNLOOK = {ord(fake): latin for latin, fakes in _LOOKALIKES.items() for fake in fakes}
HOMOGLYPH_CHARS = frozenset(chr(code) for code in _UNLOOK)


def _homoglyph_change(word: str, rng: random.Random) -> str:
    """Swap about half the swappable letters of ``word``, and at least one."""
    spots = [i for i, char in enumerate(word) if char in _LOOKALIKES]
    chosen = {i for i in spots if rng.random() < 0.5} or {rng.choice(spots)}
    return "".join(
        rng.choice(_LOOKALIKES[char]) if i in chosen else char for i, char in enumerate(word)
    )


def _homoglyph_eligible(word: str) -> bool:
    return any(char in _LOOKALIKES for char in word)


def _homoglyphs(text: str, rng: random.Random) -> str:
    return _rewrite_words(text, rng, _homoglyph_eligible, _homoglyph_change)


def _unhomoglyph(text: str) -> str:
    return text.translate(_UNLOOK)


# --- insertions between letters: zero_width, punctuation, emoji, spacing ------------------

ZERO_WIDTH_CHARS = ("\u200b", "\u200c", "\u2060")
SEPARATORS = (".", "-", "_", "*")
EMOJI = ("🔮", "💰", "✨", "🙏", "🍀", "⭐", "🌙")
_EMOJI_TABLE = dict.fromkeys(map(ord, EMOJI))
_ZERO_WIDTH_TABLE = dict.fromkeys(map(ord, ZERO_WIDTH_CHARS))


def _zero_width_change(word: str, rng: random.Random) -> str:
    gaps = _letter_gaps(word)
    spots = rng.sample(gaps, rng.randint(1, max(1, len(gaps) // 2)))
    return _insert(word, {i: rng.choice(ZERO_WIDTH_CHARS) for i in spots})


def _punctuation_change(word: str, rng: random.Random) -> str:
    separator = rng.choice(SEPARATORS)
    return _insert(word, dict.fromkeys(_letter_gaps(word), separator))


def _emoji_change(word: str, rng: random.Random) -> str:
    return _insert(word, {rng.choice(_letter_gaps(word)): rng.choice(EMOJI)})


def _unpunctuate(text: str) -> str:
    """Remove every separator that stands between two letters."""
    return "".join(
        char
        for i, char in enumerate(text)
        if not (char in SEPARATORS and _between_letters_at(text, i))
    )


def _between_letters_at(text: str, i: int) -> bool:
    """True when ``text[i]`` has a letter on each side."""
    return 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha()


def _spacing_change(word: str, _rng: random.Random) -> str:
    return _insert(word, dict.fromkeys(_letter_gaps(word), " "))


def _spacing(text: str, rng: random.Random) -> str:
    return _rewrite_words(text.replace(" ", "  "), rng, _has_gap, _spacing_change)


def _unspace(text: str) -> str:
    """Drop each lone space and halve every longer run (the inverse of :func:`_spacing`)."""
    return re.sub(r" +", lambda m: " " * (len(m.group()) // 2), text)


def _between_letters(change: Transform) -> Transform:
    def transform(text: str, rng: random.Random) -> str:
        return _rewrite_words(text, rng, _has_gap, change)

    return transform


# --- leetspeak ----------------------------------------------------------------------------

_LEET = {"a": "4", "e": "3", "o": "0", "i": "1"}


def _leet_char(char: str) -> str:
    """The digit for a vowel whatever its marks ("ó" -> "0"), else the character itself."""
    base = unicodedata.normalize("NFD", char)[:1].lower()
    return _LEET.get(base, char)


def _leet_change(word: str, _rng: random.Random) -> str:
    return "".join(map(_leet_char, word))


def _leet_eligible(word: str) -> bool:
    return any(_leet_char(char) != char for char in word)


def _leetspeak(text: str, rng: random.Random) -> str:
    return _rewrite_words(text, rng, _leet_eligible, _leet_change)


# --- mixed_language -----------------------------------------------------------------------

# Domain phrases are always swapped; common ad phrases only on a seeded half.
_DOMAIN_PHRASES: Mapping[str, tuple[str, ...]] = {
    "xem bói": ("fortune reading", "fortune telling"),
    "thầy bói": ("fortune teller", "psychic"),
    "giải hạn": ("remove bad luck", "bad luck removal"),
    "tử vi": ("horoscope", "astrology chart"),
    "phong thủy": ("feng shui",),
    "xem tướng": ("face reading",),
    "xem chỉ tay": ("palm reading",),
    "bùa yêu": ("love spell", "love charm"),
    "cúng": ("ritual", "offering"),
    "tâm linh": ("spiritual",),
    "vận hạn": ("bad luck", "misfortune"),
    "bói bài": ("tarot reading", "card reading"),
}
_COMMON_PHRASES: Mapping[str, tuple[str, ...]] = {
    "đảm bảo": ("guaranteed", "100% sure"),
    "hiệu quả": ("effective", "works"),
    "liên hệ": ("contact", "call"),
    "chuyển khoản": ("bank transfer",),
    "uy tín": ("trusted", "reliable"),
    "may mắn": ("good luck", "luck"),
    "giá rẻ": ("cheap", "low price"),
    "tài lộc": ("wealth", "fortune"),
}
_PHRASES = {**_DOMAIN_PHRASES, **_COMMON_PHRASES}
_PHRASE = re.compile(
    r"(?<!\w)(" + "|".join(map(re.escape, sorted(_PHRASES, key=len, reverse=True))) + r")(?!\w)",
    re.IGNORECASE,
)


def _mixed_language(text: str, rng: random.Random) -> str:
    """Swap known Vietnamese phrases for English ones: domain phrases always, others seeded."""
    matches = list(_PHRASE.finditer(text))
    keep = [m.group().lower() in _DOMAIN_PHRASES or rng.random() < _SHARE for m in matches]
    if matches and not any(keep):
        keep[rng.randrange(len(matches))] = True
    out: list[str] = []
    last = 0
    for match, swap in zip(matches, keep, strict=True):
        if swap:
            english = rng.choice(_PHRASES[match.group().lower()])
            out += [text[last : match.start()], _match_case(match.group(), english)]
            last = match.end()
    return "".join([*out, text[last:]])


# --- registry -----------------------------------------------------------------------------


_REGISTRY = (
    Variant(
        name="strip_diacritics",
        description="Vietnamese typed without accents (bói -> boi, đ -> d)",
        complexity=1,
        invertible=False,
        apply=_strip_diacritics,
        normalise=None,
        seeded=False,
    ),
    Variant(
        name="teencode",
        description="chat spelling on some words (không -> ko, ph -> f, qu -> w)",
        complexity=2,
        invertible=False,
        apply=_teencode,
        normalise=None,
    ),
    Variant(
        name="spacing",
        description="letters of some words spaced out (x e m  b ó i)",
        complexity=2,
        invertible=True,
        apply=_spacing,
        normalise=_unspace,
    ),
    Variant(
        name="punctuation",
        description="dots or dashes between the letters of some words (x.e.m b.ó.i)",
        complexity=2,
        invertible=True,
        apply=_between_letters(_punctuation_change),
        normalise=_unpunctuate,
    ),
    Variant(
        name="leetspeak",
        description="digits for vowels in some words (a -> 4, e -> 3, o -> 0, i -> 1)",
        complexity=3,
        invertible=False,
        apply=_leetspeak,
        normalise=None,
    ),
    Variant(
        name="emoji",
        description="an emoji inside some words (bó🔮i)",
        complexity=3,
        invertible=True,
        apply=_between_letters(_emoji_change),
        normalise=lambda text: text.translate(_EMOJI_TABLE),
    ),
    Variant(
        name="mixed_language",
        description="Vietnamese phrases swapped for English ones (xem bói -> fortune reading)",
        complexity=3,
        invertible=False,
        apply=_mixed_language,
        normalise=None,
    ),
    Variant(
        name="zero_width",
        description="invisible zero-width characters inside some words",
        complexity=4,
        invertible=True,
        apply=_between_letters(_zero_width_change),
        normalise=lambda text: text.translate(_ZERO_WIDTH_TABLE),
    ),
    Variant(
        name="homoglyphs",
        description="Latin letters swapped for Cyrillic or Greek look-alikes",
        complexity=4,
        invertible=True,
        apply=_homoglyphs,
        normalise=_unhomoglyph,
    ),
)

VARIANTS: Mapping[str, Variant] = MappingProxyType({v.name: v for v in _REGISTRY})


def variant_names() -> list[str]:
    """The registered variant names, simplest first (by complexity, then name)."""
    return [v.name for v in sorted(VARIANTS.values(), key=lambda v: (v.complexity, v.name))]


def variant_rng(seed: int, name: str) -> random.Random:
    """The random generator a variant gets in :func:`apply_variants`: a function of both."""
    return random.Random(f"platform-audit/variant/{seed}/{name}")


def apply_variants(text: str, names: Sequence[str], seed: int) -> str:
    """Apply the named variants in the order given; deterministic for (text, names, seed).

    Raises ``KeyError`` naming the unknown variant and the known ones; nothing is applied
    unless every name is known.
    """
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        known = ", ".join(variant_names())
        raise KeyError(f"unknown variant {unknown[0]!r}; known variants: {known}")
    for name in names:
        text = VARIANTS[name].apply(text, variant_rng(seed, name))
    return text
