"""The evidence ledger: an append-only, hash-chained record of every exchange with a platform.

Each entry carries the hash of the previous one, so editing, removing or reordering any entry
breaks the chain from that point on. Secrets are redacted before an entry is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from audit.store import ExchangeRecord, Store

__all__ = ["GENESIS", "EvidenceLedger", "Redactor", "entry_hash", "verify_chain"]

GENESIS = "sha256:" + "0" * 64
REDACTED = "[REDACTED]"


def entry_hash(prev_hash: str, seq: int, entry: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"prev": prev_hash, "seq": seq, "entry": entry},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Redactor:
    """Replaces every known secret value with ``[REDACTED]`` in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if len(secret) >= 4 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def scrub(self, value: Any) -> Any:
        """Redact secrets anywhere inside a JSON-like value."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value


class EvidenceLedger:
    """Appends hash-chained entries for one run to the store."""

    def __init__(self, store: Store, run_id: str, redactor: Redactor) -> None:
        self._store = store
        self._run_id = run_id
        self._redact = redactor
        self._seq, last = store.last_exchange(run_id)
        self._head = last or GENESIS

    @property
    def head(self) -> str:
        return self._head

    def append(self, probe_id: str | None, entry: dict[str, Any]) -> ExchangeRecord:
        clean = self._redact.scrub(entry)
        seq = self._seq + 1
        digest = entry_hash(self._head, seq, clean)
        record = ExchangeRecord(seq, probe_id, clean, self._head, digest)
        self._store.append_exchange(self._run_id, record)
        self._seq, self._head = seq, digest
        return record


def verify_chain(records: Iterable[ExchangeRecord]) -> tuple[bool, str, int | None]:
    """Check a ledger; returns (ok, head hash, first bad sequence number or None)."""
    head = GENESIS
    expected_seq = 1
    for record in records:
        if record.seq != expected_seq or record.prev_hash != head:
            return False, head, record.seq
        if entry_hash(head, record.seq, record.entry) != record.hash:
            return False, head, record.seq
        head = record.hash
        expected_seq += 1
    return True, head, None
