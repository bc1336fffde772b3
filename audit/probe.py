"""A probe: one synthetic post made for one criterion, with its expectation.

A probe records everything needed to post it again identically: its text, the variants applied
to that text, its modality and, for media, how to obtain the bytes. Generated media are never
kept in the probe (a large run would hold gigabytes): a banner is re-rendered from
``(text, media_style, media_seed)``, speech from ``(text, language, media_style, media_seed)``
and a video from ``(text, language, media_style, media_seed)`` at submission, and a corpus file
is read from ``corpus_file``. ``content_hash`` pins the content.
"""

from __future__ import annotations

import hashlib
import random
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from audit.packs import Modality

__all__ = ["Expectation", "Probe", "content_hash", "derive_rng", "media_recipe", "probe_id"]


_MEDIA_PREFIXES = ("image_", "speech_", "video_")


class Expectation(StrEnum):
    VIOLATING = "violating"  # must be removed within the deadline
    CONTROL = "control"  # benign look-alike that must stay up


def derive_rng(*parts: object) -> random.Random:
    """A random generator that is a function of ``parts`` only."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def probe_id(run_key: str, criterion_id: str, kind: str, index: int) -> str:
    """An opaque id, unique per run: it says nothing about the probe's content or expectation."""
    digest = hashlib.sha256(f"{run_key}\x00{criterion_id}\x00{kind}\x00{index}".encode())
    return digest.hexdigest()[:24]


def content_hash(text: str, media: bytes | None = None) -> str:
    digest = hashlib.sha256(text.encode("utf-8"))
    if media:
        digest.update(b"\x00")
        digest.update(media)
    return "sha256:" + digest.hexdigest()


def media_recipe(modality: Modality, style: str | None, seed: int | None, language: str) -> bytes:
    """What determines generated media besides the text (hashed in place of the bytes)."""
    return f"{modality.value}\x00{style or ''}\x00{seed}\x00{language}".encode()


class Probe(BaseModel):
    """What is posted. ``probe_id`` never appears in the content; platforms see only the text.

    ``variants`` names the evasion transforms applied to the text (in order) and, for an image
    ``variants`` names the evasion transforms applied to the text (in order) and, for an image,
    a recording or a video, its style or variant when that is not the plain one. ``corpus_file``
    is set for probes taken verbatim from a regulator-supplied corpus, which are never generated.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    probe_id: str
    criterion_id: str
    expectation: Expectation
    template_id: str
    slots: dict[str, str]
    language: str
    modality: Modality = Modality.TEXT
    variants: tuple[str, ...] = ()
    text: str
    media_type: str | None = None
    media_style: str | None = None
    media_seed: int | None = None
    corpus_file: str | None = None
    content_hash: str

    @property
    def text_variants(self) -> tuple[str, ...]:
        """The variants applied to the text (media styles and video variants left out)."""
        return tuple(v for v in self.variants if not v.startswith(_MEDIA_PREFIXES))

    @property
    def media_variants(self) -> tuple[str, ...]:
        """The variants of the media (an image's or a recording's style, a video's variant)."""
        return tuple(v for v in self.variants if v.startswith(_MEDIA_PREFIXES))
