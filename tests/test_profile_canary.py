"""Canary secrets: values planted in a profile target's environment and files, and the tokens the
platform hands out, never appear in any file a run writes (the SQLite store's raw bytes, its
journal, every rendered scorecard), even when the platform echoes credentials back."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from audit.clock import VirtualClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.report.registry import TEXT_FORMATS as FORMATS  # PDF text is compressed: nothing to scan
from audit.runner import create_runs, execute_run
from audit.sandbox.app import create_app
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.store import Store
from audit.workspace import write_reports
from tests.test_profile_oauth_shape import (
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    run_acme_audit,
)


def forms(secret: str) -> set[bytes]:
    """The ways a secret could be written: raw, JSON-escaped, percent-encoded."""
    texts = {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}
    return {t.encode("utf-8") for t in texts}


def files_under(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*") if p.is_file()]


def assert_nowhere(canaries: set[str], *folders: Path) -> int:
    written = files_under(*folders)
    assert written
    for path in written:
        data = path.read_bytes()
        for canary in canaries:
            for form in forms(canary):
                assert form not in data, f"a secret was written to {path}"
    return len(written)


def test_oauth_credentials_and_tokens_are_in_no_written_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id = "canary-id-" + secrets.token_hex(8)
    client_secret = "canary-secret-" + secrets.token_hex(16) + "/+="  # needs escaping in forms
    monkeypatch.setenv(CLIENT_ID_ENV, client_id)
    monkeypatch.setenv(CLIENT_SECRET_ENV, client_secret)
    audit = run_acme_audit(tmp_path / "workspace", client_id, client_secret)
    reports = tmp_path / "reports"
    write_reports(audit.store, audit.run_id, reports, list(FORMATS))
    issued = set(audit.platform.issued)
    assert issued and audit.platform.posts  # the run did authenticate and post
    basic = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode())
    canaries = {client_id, client_secret, basic.decode(), *issued}
    assert_nowhere(canaries, audit.workspace, reports)
    audit.store.close()  # and once SQLite has checkpointed everything into the main file
    assert_nowhere(canaries, audit.workspace, reports)


def test_bearer_token_from_a_file_is_in_no_written_file(tmp_path: Path) -> None:
    token = "canary-token-" + secrets.token_hex(20)
    token_file = tmp_path / "secrets" / "sandbox.token"
    token_file.parent.mkdir()
    token_file.write_text(token + "\n", encoding="utf-8")
    clock = VirtualClock()
    app = create_app(load_sandbox_config(default_config_path(), token=token), clock)
    target = Target(
        name="sandbox",
        base_url="http://sandbox.test",
        profile="sandbox",
        token_file=token_file,
        rate_limit=None,
    )
    plan = Plan(
        name="canary",
        packs=["vn-superstition"],
        targets=[target],
        sample=Sample(violating_per_criterion=4, controls_per_criterion=1),
        schedule=Schedule(submission_window="PT1H"),
    )
    workspace, reports = tmp_path / "workspace", tmp_path / "reports"
    workspace.mkdir()
    store = Store(workspace / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=httpx.ASGITransport(app)))
    write_reports(store, prepared.run_id, reports, list(FORMATS))
    rows = store.probes(prepared.run_id)
    assert all(r.outcome != "inconclusive" for r in rows)  # the token was accepted
    store.close()
    assert assert_nowhere({token}, workspace, reports) >= len(FORMATS) + 1
