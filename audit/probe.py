"""A probe: one synthetic post made for one criterion, with its expectation."""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from audit.packs import Modality

__all__ = ["Expectation", "Probe", "content_hash"]


class Expectation(StrEnum):
    VIOLATING = "violating"  # must be removed within the deadline
    CONTROL = "control"  # benign look-alike that must stay up


def content_hash(text: str, media: bytes | None = None) -> str:
    digest = hashlib.sha256(text.encode("utf-8"))
    if media:
        digest.update(b"\x00")
        digest.update(media)
    return "sha256:" + digest.hexdigest()


class Probe(BaseModel):
    """What is posted. ``probe_id`` never appears in the content; platforms see only the text."""

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
    content_hash: str
