"""The hash chain of the evidence ledger: the one serialisation of an entry, and its hash.

Kept apart from :mod:`audit.evidence.ledger` so a store can link the ledger records it writes
to the record before them (:class:`audit.store_pg.PostgresStore` does, serialising the
appends of a run's writers: see docs/evidence.md).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["GENESIS", "canonical_json", "entry_hash", "text_hash"]

GENESIS = "sha256:" + "0" * 64


# a string as canonical_json writes it (json.dumps with ensure_ascii=False quotes a string with
# this very function), without setting up an encoder for each of the two in every entry's hash
_json_string = json.encoder.encode_basestring


# what json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")) uses, made
# once instead of for every entry
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_json(value: Any) -> str:
    """The one serialisation of a JSON value that hashes and signatures are computed over."""
    return _CANONICAL.encode(value)


def entry_hash(prev_hash: str, seq: int, entry: dict[str, Any], probe_id: str | None = None) -> str:
    """The hash of one entry: over the previous hash, its number, its probe and its content."""
    return text_hash(prev_hash, seq, canonical_json(entry), probe_id)


def text_hash(prev_hash: str, seq: int, text: str, probe_id: str | None = None) -> str:
    """:func:`entry_hash` from the entry's canonical text, the bytes the store keeps: the
    canonical form of ``{"entry", "prev", "probe", "seq"}`` (keys sorted) is that text with
    the three others around it, so the entry is never serialised again to be hashed."""
    probe = "null" if probe_id is None else _json_string(probe_id)
    canonical = f'{{"entry":{text},"prev":{_json_string(prev_hash)},"probe":{probe},"seq":{seq}}}'
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
