"""The signed run manifest and the workspace signing key."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import InputError
from audit.evidence.keys import KEY_FILE, SigningKey, fingerprint, signature_valid, workspace_key
from audit.evidence.manifest import file_digest, read_manifest, write_manifest

KEY = SigningKey.generate()


def body(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "format": "platform-audit-evidence/1",
        "tool": "platform-audit",
        "tool_version": "0.1.0",
        "run_id": "20260101T000000Z-abcdef",
        "plan_name": "plan",
        "status": "complete",
        "target": {"name": "sb", "adapter": "sandbox", "base_url": "http://x", "environment": "s"},
        "pack": {"id": "vn-superstition", "version": "1.0.0"},
        "seed": 7,
        "time_scale": 1.0,
        "period": {
            "created_utc": "2026-01-01T00:00:00.000Z",
            "first_exchange_utc": None,
            "last_exchange_utc": None,
            "finished_utc": "2026-01-02T00:00:00.000Z",
        },
        "digests": {
            "plan": file_digest(b"plan"),
            "pack": "sha256:abc",
            "target": file_digest(b"t"),
            "profile": None,
        },
        "ledger": {"file": "ledger.jsonl", "entries": 0, "head": "sha256:" + "0" * 64},
        "files": {"scorecard.json": file_digest(b"{}"), "ledger.jsonl": file_digest(b"")},
        "exported_utc": "2026-01-03T00:00:00.000Z",
    }
    value.update(changes)
    return value


MANIFEST = write_manifest(body(), KEY)


def test_a_written_manifest_reads_back_and_verifies() -> None:
    check = read_manifest(MANIFEST)
    assert check.problems == []
    assert check.doc is not None and check.doc.signed.run_id == "20260101T000000Z-abcdef"
    assert check.fingerprint == KEY.fingerprint


def test_the_expected_key_is_enforced() -> None:
    assert read_manifest(MANIFEST, expect_key=KEY.fingerprint).problems == []
    other = SigningKey.generate()
    (problem,) = read_manifest(MANIFEST, expect_key=other.fingerprint).problems
    assert "not by the expected" in problem and other.fingerprint in problem


def test_a_manifest_re_signed_with_another_key_fails_the_pin() -> None:
    forged = write_manifest(body(status="forged"), SigningKey.generate())
    assert read_manifest(forged).problems == []  # self-consistent...
    assert read_manifest(forged, expect_key=KEY.fingerprint).problems  # ...but not ours


def test_an_edited_value_breaks_the_signature() -> None:
    doc = json.loads(MANIFEST)
    doc["signed"]["seed"] = 8
    data = (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    (problem,) = read_manifest(data).problems
    assert "signature does not match" in problem


def test_a_reformatted_manifest_is_refused() -> None:
    data = json.dumps(json.loads(MANIFEST), sort_keys=True).encode()
    (problem,) = read_manifest(data).problems
    assert "canonical layout" in problem


@settings(max_examples=400)
@given(offset=st.integers(0, len(MANIFEST) - 1), flip=st.integers(1, 255))
def test_any_changed_byte_of_a_manifest_is_found(offset: int, flip: int) -> None:
    changed = bytearray(MANIFEST)
    changed[offset] ^= flip
    problems = read_manifest(bytes(changed)).problems
    assert problems and all(p.startswith("manifest.json: ") for p in problems)


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b"null", b"\xff\xfe", b'{"signed": {}, "signature": {}}', b"{" * 100_000],
)
def test_garbage_is_a_problem_not_a_crash(data: bytes) -> None:
    problems = read_manifest(data).problems
    assert len(problems) == 1 and problems[0].startswith("manifest.json: ")


def test_a_manifest_a_reader_would_refuse_is_never_signed() -> None:
    with pytest.raises(ValueError, match="seed"):
        write_manifest(body(seed="seven"), KEY)


# keys ----------------------------------------------------------------------------------------
def test_workspace_key_is_created_private_and_reused(tmp_path: Path) -> None:
    key = workspace_key(tmp_path)
    path = tmp_path / "keys" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) & 0o077 == 0
    assert workspace_key(tmp_path).fingerprint == key.fingerprint
    public = (tmp_path / "keys" / "signing-ed25519.pub").read_text()
    assert public.startswith("ssh-ed25519 ") and key.fingerprint in public
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "keys").iterdir())


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    workspace_key(tmp_path)
    path = tmp_path / "keys" / KEY_FILE
    os.chmod(path, 0o644)
    with pytest.raises(InputError, match="chmod 600"):
        workspace_key(tmp_path)


def test_a_broken_key_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir(mode=0o700)
    path = tmp_path / "keys" / KEY_FILE
    path.write_bytes(b"not a key")
    os.chmod(path, 0o600)
    with pytest.raises(InputError, match="cannot be read"):
        workspace_key(tmp_path)


def test_concurrent_first_use_yields_one_key(tmp_path: Path) -> None:
    found: list[str] = []
    threads = [
        threading.Thread(target=lambda: found.append(workspace_key(tmp_path).fingerprint))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and len(found) == 8


def test_fingerprint_and_signature() -> None:
    assert KEY.fingerprint.startswith("SHA256:") and len(KEY.fingerprint) == 7 + 43
    assert fingerprint(KEY.public_raw) == KEY.fingerprint
    signature = KEY.sign(b"message")
    assert signature_valid(KEY.public_raw, signature, b"message")
    assert not signature_valid(KEY.public_raw, signature, b"messagE")
    assert not signature_valid(b"short", signature, b"message")
