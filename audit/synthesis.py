"""Probe synthesis: deterministic from (pack, seed), diverse across seeds, with no audit marker.

Templates of a criterion are dealt out in a shuffled round so each is used about equally; slot
values are drawn per probe. Probe ids are opaque hashes: the platform sees an id only as an
idempotency key, never in the content.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

from audit.packs import Criterion, Modality, Pack, ProbeTemplate
from audit.probe import Expectation, Probe, content_hash

__all__ = ["SampleSize", "derive_rng", "synthesize"]


@dataclass(frozen=True)
class SampleSize:
    violating: int
    controls: int


def derive_rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _probe_id(run_key: str, criterion_id: str, kind: str, index: int) -> str:
    digest = hashlib.sha256(f"{run_key}\x00{criterion_id}\x00{kind}\x00{index}".encode())
    return digest.hexdigest()[:24]


def _dealt(templates: list[ProbeTemplate], rng: random.Random) -> Iterator[ProbeTemplate]:
    while True:
        round_ = list(templates)
        rng.shuffle(round_)
        yield from round_


def _make(
    criterion: Criterion,
    template: ProbeTemplate,
    expectation: Expectation,
    probe_id: str,
    rng: random.Random,
) -> Probe:
    slots = {name: rng.choice(criterion.slots[name]) for name in template.slot_names()}
    text = template.text.format(**slots)
    return Probe(
        probe_id=probe_id,
        criterion_id=criterion.id,
        expectation=expectation,
        template_id=template.id,
        slots=slots,
        language=template.language,
        modality=Modality.TEXT,
        text=text,
        content_hash=content_hash(text),
    )


def _criterion_probes(
    pack: Pack, criterion: Criterion, seed: int, run_key: str, size: SampleSize
) -> list[Probe]:
    probes: list[Probe] = []
    for expectation, templates, count in (
        (Expectation.VIOLATING, criterion.templates, size.violating),
        (Expectation.CONTROL, criterion.controls, size.controls),
    ):
        if not templates or count <= 0:
            continue
        rng = derive_rng(pack.pack.id, pack.pack.version, seed, criterion.id, expectation.value)
        deck = _dealt(templates, rng)
        for index in range(count):
            probe_id = _probe_id(run_key, criterion.id, expectation.value, index)
            probes.append(_make(criterion, next(deck), expectation, probe_id, rng))
    return probes


def synthesize(
    pack: Pack,
    seed: int,
    size: SampleSize,
    run_key: str,
    criteria: list[str] | None = None,
) -> list[Probe]:
    """Probes for every generated criterion (or the listed ones), violating first then controls.

    ``run_key`` makes probe ids unique per run, so idempotency keys never collide across runs;
    the content depends only on (pack, seed).
    """
    chosen = [c for c in pack.criteria if criteria is None or c.id in criteria]
    probes: list[Probe] = []
    for criterion in chosen:
        if criterion.safe_to_generate:
            probes.extend(_criterion_probes(pack, criterion, seed, run_key, size))
    return probes
