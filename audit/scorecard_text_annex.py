"""The methodology annex's and the authorities' measures' sentences in the reader's language.

Like :mod:`audit.scorecard_text`: the model keeps them in English (the record); in another
language they are rebuilt here from the figures through the catalogs' messages, which are the
ones the model's English is made from (tests/test_i18n.py compares the English built here with
the model's, word for word). A figure the model keeps only inside a sentence (a duration of
lateness, the end of observation) is read back from that sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from audit.i18n import Language
from audit.report.words import WORDS
from audit.scorecard_annex import (
    INTERRUPTED,
    LATE,
    NOT_COMPLETE,
    SCALED,
    Deviation,
    annex_lines,
)
from audit.scorecard_authority import (
    ENDED,
    IN_DEADLINE,
    SOURCES,
    UNKNOWN,
    AuthorityMeasure,
)
from audit.scorecard_model import Scorecard
from audit.statements.check import MESSAGES

__all__ = [
    "annex_text",
    "authority_text",
    "deviation_text",
    "duration_words",
    "finding_text",
    "match_text",
    "section_filters",
]

_UNIT = re.compile(r"(?P<count>\d+(?:\.\d+)?(?:e[+-]?\d+)?) (?P<unit>d|h|min|s)\b")


def duration_words(lang: Language, text: str) -> str:
    """An English duration as the model writes it (``2 d 6 h``) in the reader's units."""
    if lang.code == "en":
        return text
    return _UNIT.sub(lambda m: lang.unit(lang.significant(float(m["count"])), m["unit"]), text)


def annex_text(lang: Language, card: Scorecard, built: bool = False) -> dict[str, list[str]]:
    """The annex's sampling, procedures and evidence lines (the model's, in English)."""
    annex = card.annex
    if annex is None:
        return {"sampling": [], "procedures": [], "evidence": []}
    if lang.code == "en" and not built:
        return {
            "sampling": annex.sampling,
            "procedures": annex.procedures,
            "evidence": annex.evidence,
        }
    run = (card.run_id, card.seed, card.time_scale)
    return annex_lines(annex, run, (card.ledger_entries, card.ledger_head), lang)


_DETAILS = (
    (
        re.compile(
            r"^posted after the planned submission window closed, up to (?P<late>.+) "
            r"\(platform time\) late$"
        ),
        LATE,
    ),
    (
        re.compile(
            r"^(?P<sent_again>\d+) sent again under the same key after a restart, "
            r"(?P<not_sent_again>\d+) not sent again \(inconclusive\)$"
        ),
        INTERRUPTED,
    ),
    (
        re.compile(
            r"^every deadline and window divided by (?P<scale>\S+): a demonstration, "
            r"not a measurement of legal deadlines$"
        ),
        SCALED,
    ),
    (
        re.compile(r"^the run is (?P<status>\w+): probes without an outcome count as unknown$"),
        NOT_COMPLETE,
    ),
)


def deviation_text(lang: Language, d: Deviation) -> str:
    """What happened, for one deviation from the frozen plan (the model's ``detail``)."""
    if lang.code == "en":
        return d.detail
    for pattern, message in _DETAILS:
        found = pattern.match(d.detail)
        if found:
            values = found.groupdict()
            if "late" in values:
                values["late"] = duration_words(lang, values["late"])
            if "status" in values and values["status"] in WORDS:
                values["status"] = lang.gettext(WORDS[values["status"]])
            return lang.format(message, **values)
    return lang.gettext(d.detail)  # a cause of unknown outcomes (audit.findings)


_ENDED = re.compile(r"; observation ended by (?P<ended>.+?), before this time")


def authority_text(lang: Language, m: AuthorityMeasure, field: str, built: bool = False) -> str:
    """A measure's ``name``, ``source`` or ``note`` in the reader's language (the model's)."""
    english = str(getattr(m, field))
    if (lang.code == "en" and not built) or not english:
        return english
    # a legal deadline as the language writes one: 24 h in English, 24 giờ (not 1 ngày)
    horizon = (
        lang.duration(m.horizon_seconds) if lang.code == "en" else lang.clock(m.horizon_seconds)
    )
    if field == "name" and english.startswith("requests complied with"):
        return lang.format(IN_DEADLINE, deadline=horizon)
    if field == "source" and english in SOURCES.values():
        return lang.gettext(english)
    if field == "note":
        note = lang.format(UNKNOWN, unknown=m.unknown, planned=m.planned, at=horizon)
        ended = _ENDED.search(english)
        if ended:
            note += lang.format(ENDED, ended=duration_words(lang, ended["ended"]))
        return note
    return lang.gettext(english)


def _pattern(message: str) -> re.Pattern[str]:
    """A regular expression reading a message's values back from its English text."""
    parts = re.split(r"%\((\w+)\)s", message)
    body = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
    )
    return re.compile(f"^{body}$", re.S)


_FINDINGS = tuple((_pattern(m), m) for m in MESSAGES)


def finding_text(lang: Language, message: str) -> str:
    """What a statements finding says (the model's ``message``); its values (fields, dates,
    the statement's own values) as recorded."""
    if lang.code == "en":
        return message
    for pattern, msgid in _FINDINGS:
        found = pattern.match(message)
        if found:
            values = found.groupdict()
            if "modality" in values:
                modality = values["modality"]
                values["modality"] = lang.gettext(WORDS.get(modality, modality))
            return lang.format(msgid, **values)
    return message


def match_text(lang: Language, how: str | None) -> str:
    """How a statement was matched: ``puid``, or ``attributes (the fields that agreed)``."""
    if not how or lang.code == "en":
        return how or "–"
    head, bracket, rest = how.partition(" (")
    return lang.gettext(WORDS.get(head, head)) + bracket + rest


def section_filters(lang: Language) -> dict[str, Callable[..., Any]]:
    """The templates' filters for the annex, authority and statements sections in ``lang``."""
    return {
        "msg": lambda v: lang.gettext(str(v)) if v else v,  # a message the model holds
        "deviation": lambda d: deviation_text(lang, d),
        "authority": lambda m, field: authority_text(lang, m, field),
        "annex_lines": lambda card: annex_text(lang, card),
        "finding": lambda message: finding_text(lang, str(message)),
        "matched": lambda how: match_text(lang, how),
    }
