"""Matching statements of reasons to the run's probes: by puid where it can be known, else by
attributes, with the confidence said and ambiguity reported, never guessed.

By puid (confidence ``puid``): where the target maps a post id to the puid its statements carry
(a template such as ``{post_id}``), a statement belongs to the probe whose post has that puid.
Two statements with the probe's puid make it ambiguous.

By attributes (confidence ``attributes``), for probes the audit saw removed and only then: a
statement is a candidate when its dates fit what the audit saw at day precision (content date
from the day the post was sent to the day of the first look; application date from the day of
the last look that saw it up to the day of the first that saw it down). Candidates are ranked
by how many of content type, category, language and source type agree with the probe; a pair
is matched only when each is the other's single best candidate, and every other tie is
reported as ambiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeVar

from audit.statements.observed import ObservedProbe
from audit.statements.schema import NOTICE_SOURCES, category_value, same_category
from audit.statements.statement import Statement

__all__ = ["CONTENT_TYPE_OF", "Match", "Matching", "day_of", "match_statements"]

K = TypeVar("K")
V = TypeVar("V")

CONTENT_TYPE_OF = {
    "text": "CONTENT_TYPE_TEXT",
    "image": "CONTENT_TYPE_IMAGE",
    "speech": "CONTENT_TYPE_AUDIO",
}


def day_of(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


@dataclass(frozen=True)
class Match:
    statement: Statement
    confidence: str  # puid | attributes
    agreeing: tuple[str, ...] = ()  # attribute matches: the fields that agreed


@dataclass
class Matching:
    matched: dict[str, Match] = field(default_factory=dict)  # by probe id
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # probe id -> statement labels
    unmatched_statements: int = 0
    other_platform: int = 0


def _by_puid(
    probes: Sequence[ObservedProbe], statements: Sequence[Statement], puid_of: Callable[[str], str]
) -> Matching:
    result = Matching()
    index: dict[str, list[Statement]] = {}
    for st in statements:
        if st.puid is not None:
            index.setdefault(st.puid, []).append(st)
    used: set[str] = set()
    for probe in probes:
        if probe.post_id is None:
            continue
        puid = puid_of(probe.post_id)
        found = index.get(puid, [])
        used.add(puid)
        if len(found) == 1:
            result.matched[probe.probe_id] = Match(found[0], "puid")
        elif found:
            result.ambiguous[probe.probe_id] = [s.label for s in found]
    result.unmatched_statements = sum(len(v) for k, v in index.items() if k not in used) + sum(
        1 for s in statements if s.puid is None
    )
    return result


def _fits(probe: ObservedProbe, st: Statement) -> bool:
    assert probe.received_at is not None
    assert probe.first_down is not None
    sent, first_look = day_of(probe.received_at), day_of(probe.last_visible or probe.first_down)
    if st.content_date is not None and not sent <= st.content_date <= first_look:
        return False
    low = day_of(probe.last_visible or probe.received_at)
    return low <= st.application_date <= day_of(probe.first_down)


def _agreeing(probe: ObservedProbe, st: Statement) -> tuple[str, ...]:
    agree = []
    if CONTENT_TYPE_OF.get(probe.modality) in st.content_types:
        agree.append("content_type")
    if any(same_category(c, category_value(probe.dsa_category)) for c in st.categories):
        agree.append("category")
    if st.language is not None and st.language == probe.language.upper():
        agree.append("content_language")
    notice = probe.filing_sent is not None
    if (st.source_type in NOTICE_SOURCES) == notice:
        agree.append("source_type")
    return tuple(agree)


def _by_attributes(probes: Sequence[ObservedProbe], statements: Sequence[Statement]) -> Matching:
    result = Matching()
    removed = [p for p in probes if p.removed and p.received_at is not None]
    scores: dict[tuple[str, int], tuple[str, ...]] = {}
    for probe in removed:
        for number, st in enumerate(statements):
            if _fits(probe, st):
                scores[(probe.probe_id, number)] = _agreeing(probe, st)
    best_of_probe = _tops((p, n, len(a)) for (p, n), a in scores.items())
    best_of_statement = _tops((n, p, len(a)) for (p, n), a in scores.items())
    matched_statements: set[int] = set()
    for probe_id, numbers in best_of_probe.items():
        if len(numbers) == 1 and best_of_statement.get(numbers[0]) == [probe_id]:
            number = numbers[0]
            agree = scores[(probe_id, number)]
            result.matched[probe_id] = Match(statements[number], "attributes", agree)
            matched_statements.add(number)
        else:
            result.ambiguous[probe_id] = [statements[n].label for n in numbers]
    result.unmatched_statements = len(statements) - len(matched_statements)
    return result


def _tops(triples: Iterable[tuple[K, V, int]]) -> dict[K, list[V]]:
    """For each key, the values with its highest score (ties kept)."""
    top: dict[K, tuple[int, list[V]]] = {}
    for key, value, score in triples:
        best, members = top.get(key, (-1, []))
        if score > best:
            top[key] = (score, [value])
        elif score == best:
            members.append(value)
    return {k: members for k, (_, members) in top.items()}


def match_statements(
    probes: Sequence[ObservedProbe],
    statements: Sequence[Statement],
    puid_of: Callable[[str], str] | None,
    platform: str | None = None,
) -> Matching:
    """Match ``statements`` to ``probes`` (only those of ``platform``, when it is named)."""
    mine = [s for s in statements if platform is None or s.platform_name in (None, platform)]
    result = _by_puid(probes, mine, puid_of) if puid_of else _by_attributes(probes, mine)
    result.other_platform = len(statements) - len(mine)
    return result
