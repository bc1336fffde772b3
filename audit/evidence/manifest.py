"""The signed run manifest: what a run was, and the digest of every file of its evidence.

``manifest.json`` holds two objects: ``signed`` (format, tool and version, run id, plan, pack,
target and profile digests, seed, time range, ledger head and length, the SHA-256 of every other
file of the bundle, the public key) and ``signature`` (Ed25519 over the canonical JSON of
``signed``: sorted keys, no spaces, UTF-8). The public key travels inside the manifest, so a bundle
verifies anywhere with nothing else; whose key it is must be checked against its published
fingerprint (``verify --key``).

The file itself is written in one canonical layout (two-space indent, sorted keys) and a reader
refuses any other, so no byte of it can change without the change being found.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit.evidence.keys import ALGORITHM, SigningKey, fingerprint, signature_valid
from audit.evidence.ledger import canonical_json, pretty_json

__all__ = [
    "FORMAT",
    "MANIFEST_FILE",
    "ManifestBody",
    "ManifestCheck",
    "ManifestDoc",
    "file_digest",
    "read_manifest",
    "write_manifest",
]

#: the bundle format this version writes; 2: a submission's ledger entry may refer to its probe's
#: text (in probes.jsonl) by digest instead of holding it (docs/evidence.md). Bundles of format 1
#: are read as before
FORMAT = "platform-audit-evidence/2"
MANIFEST_FILE = "manifest.json"
_DIGEST = r"^sha256:[0-9a-f]{64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PublicKey(_Strict):
    algorithm: Literal["ed25519"]
    key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    fingerprint: str


class Signature(_Strict):
    algorithm: Literal["ed25519"]
    value: Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")]


class Period(_Strict):
    created_utc: str | None
    first_exchange_utc: str | None
    last_exchange_utc: str | None
    finished_utc: str | None


class Digests(_Strict):
    plan: Annotated[str, Field(pattern=_DIGEST)]
    pack: str
    target: Annotated[str, Field(pattern=_DIGEST)]
    profile: Annotated[str, Field(pattern=_DIGEST)] | None


class LedgerSummary(_Strict):
    file: str
    entries: int = Field(ge=0)
    head: Annotated[str, Field(pattern=_DIGEST)]


class ManifestBody(_Strict):
    format: Literal["platform-audit-evidence/1", "platform-audit-evidence/2"]
    tool: Literal["platform-audit"]
    tool_version: str
    run_id: str
    plan_name: str
    status: str
    target: dict[str, str]
    pack: dict[str, str]
    seed: int
    time_scale: float | int
    period: Period
    digests: Digests
    ledger: LedgerSummary
    files: dict[str, Annotated[str, Field(pattern=_DIGEST)]]
    exported_utc: str
    public_key: PublicKey


class ManifestDoc(_Strict):
    signed: ManifestBody
    signature: Signature


def file_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_manifest(body: dict[str, Any], key: SigningKey) -> bytes:
    """Sign ``body`` (with the key's public half added) and lay the manifest out as bytes."""
    signed = {
        **body,
        "public_key": {
            "algorithm": ALGORITHM,
            "key": key.public_raw.hex(),
            "fingerprint": key.fingerprint,
        },
    }
    ManifestBody.model_validate(signed)  # never sign what a reader would refuse
    signature = key.sign(canonical_json(signed).encode("utf-8"))
    return pretty_json(
        {"signed": signed, "signature": {"algorithm": ALGORITHM, "value": signature.hex()}}
    )


@dataclass
class ManifestCheck:
    """A read manifest: its content if it could be read, and every problem found."""

    doc: ManifestDoc | None
    problems: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str | None:
        return self.doc.signed.public_key.fingerprint if self.doc else None


def _parse(data: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(data.decode("utf-8")), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (bad byte at offset {exc.start})"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    except (ValueError, RecursionError) as exc:
        return None, f"not valid JSON ({exc})"


def _structure(value: Any) -> tuple[ManifestDoc | None, str | None]:
    try:
        return ManifestDoc.model_validate(value), None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        return None, f"not a platform-audit manifest ('{where}': {error['msg']})"


def _signature_problem(value: dict[str, Any], doc: ManifestDoc) -> str | None:
    key = bytes.fromhex(doc.signed.public_key.key)
    if doc.signed.public_key.fingerprint != fingerprint(key):
        return "the key fingerprint does not belong to the public key"
    message = canonical_json(value["signed"]).encode("utf-8")
    if not signature_valid(key, bytes.fromhex(doc.signature.value), message):
        return "the signature does not match the signed content (the manifest was changed)"
    return None


def read_manifest(data: bytes, expect_key: str | None = None) -> ManifestCheck:
    """Parse and check a manifest: layout, structure, signature, and the expected signer."""
    value, problem = _parse(data)
    if problem is not None:
        return ManifestCheck(None, [f"{MANIFEST_FILE}: {problem}"])
    doc, problem = _structure(value)
    if doc is None:
        return ManifestCheck(None, [f"{MANIFEST_FILE}: {problem}"])
    check = ManifestCheck(doc)
    if pretty_json(value) != data:
        check.problems.append(f"{MANIFEST_FILE}: not in its canonical layout (bytes were changed)")
    problem = _signature_problem(value, doc)
    if problem is not None:
        check.problems.append(f"{MANIFEST_FILE}: {problem}")
    if expect_key is not None and expect_key.strip() != doc.signed.public_key.fingerprint:
        check.problems.append(
            f"{MANIFEST_FILE}: signed by key {doc.signed.public_key.fingerprint}, "
            f"not by the expected {expect_key.strip()}"
        )
    return check
