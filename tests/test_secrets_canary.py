"""A canary secret reaches no file a run writes, and no output of the command line.

The target's bearer token is a unique canary read from an environment variable. Two runs use it:

* in process, against the reference sandbox wrapped so that it echoes the token back in every way a
  careless or hostile platform might: in JSON bodies (plain, as ``access_token``, percent-encoded,
  base64), in HTML error pages, in ``Location`` and other headers, in transport error messages;
* through the real ``platform-audit run`` against the sandbox served over loopback HTTP.

Then every command that reads or writes a run is driven through the real entry point (report in
every format, export to an archive and a folder, verify, evidence-report, runs, key), and every
file under the workspace, the reports folder and the bundles, raw bytes, the SQLite database and
its WAL included, the archive's members and the store's ledger entries decompressed, plus
everything printed, is searched for the canary, its encodings, and its first and last twelve
characters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import sqlite3
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from audit.cli import main
from audit.clock import SystemClock, VirtualClock
from audit.evidence.archive import read_archive
from audit.ledger_codec import decode_entry
from audit.runner import execute_run
from audit.sandbox.app import create_app
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.sandbox.server import SandboxServer
from tests.evidence_support import start_run, tiny_plan

ENV = "PA_CANARY_TOKEN"
CANARY = "cnry" + secrets.token_hex(16)


def canary_forms() -> list[bytes]:
    forms = {
        CANARY,
        quote(CANARY),
        base64.b64encode(CANARY.encode()).decode(),
        CANARY[:12],
        CANARY[-12:],
    }
    return [f.encode() for f in forms]


def leaks(data: bytes) -> list[str]:
    return [form.decode() for form in canary_forms() if form in data]


class EchoingPlatform:
    """The reference sandbox, with the caller's token echoed into every answer."""

    def __init__(self, clock: VirtualClock) -> None:
        config = load_sandbox_config(default_config_path(), token=CANARY)
        self._inner = httpx.ASGITransport(create_app(config, clock))
        self.count = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if self.count % 11 == 0:
            raise httpx.ConnectError(f"proxy refused {auth} for {request.url}?token={token}")
        if self.count % 7 == 0:
            page = f"<html><h1>401</h1><p>bad token {token}</p><script>{auth}</script></html>"
            return httpx.Response(503, text=page, headers={"content-type": "text/html"})
        if request.method == "POST" and self.count % 5 == 0:  # the adapter keeps the message
            message = {"error": "bad_request", "message": f"token {token} may not post"}
            return httpx.Response(400, json=message)
        if request.method == "GET" and self.count % 13 == 0:  # an answer the adapter cannot read
            return httpx.Response(200, json={"state": f"odd ({token})"})
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        return httpx.Response(
            response.status_code,
            content=self._echo(body, token),
            headers={
                "content-type": "application/json",
                "location": f"https://cdn.example/cb?access_token={token}",
                "x-request-id": f"req-{token}",
                "set-cookie": f"session={token}",
            },
        )

    @staticmethod
    def _echo(body: bytes, token: str) -> bytes:
        try:
            value = json.loads(body) if body else {}
        except ValueError:
            value = {}
        if not isinstance(value, dict):
            return body
        value |= {
            "echo": f"Authorization: Bearer {token}",
            "access_token": token,
            "message": f"token {quote(token)} / {base64.b64encode(token.encode()).decode()}",
            "padding": "x" * 4090 + token,  # straddles the ledger's 4 KiB cut
        }
        return json.dumps(value).encode()


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with contextlib.suppress(SystemExit):
        main(args)
    captured = capsys.readouterr()
    return captured.out + captured.err


def files_under(*roots: Path) -> dict[Path, bytes]:
    found: dict[Path, bytes] = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                found[path] = path.read_bytes()
                if path.name.endswith(".tar.gz"):
                    members, problem = read_archive(found[path])
                    assert problem is None, problem
                    found |= {path / name: data for name, data in members.items()}
                if path.name == "audit.sqlite":  # the store keeps its ledger compressed
                    found[path / "ledger entries"] = stored_ledger_text(path)
    return found


def stored_ledger_text(path: Path) -> bytes:
    """Every ledger entry of the store (file and WAL, read through SQLite), decompressed."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        entries = [decode_entry(row[0]) for row in db.execute("SELECT entry FROM exchanges")]
    finally:
        db.close()
    assert entries  # the search below covers the ledger
    return "\n".join(entries).encode("utf-8")


def drive_every_command(
    workspace: Path, reports: Path, run_id: str, capsys: pytest.CaptureFixture[str]
) -> str:
    base = ["--workspace", str(workspace), "--reports", str(reports)]
    archive = reports / run_id / "evidence.tar.gz"
    output = ""
    for args in (
        ["report", run_id, "--format", "html,md,json,junit,csv"],
        ["export", run_id],
        ["export", run_id, "--out", str(reports / "folder-bundle")],
        ["verify", str(archive), "--rebuild"],
        ["verify", str(reports / run_id)],
        ["verify", run_id],
        ["evidence-report", str(archive), "--format", "html,md,json,junit,csv", "--force"],
        ["runs"],
        ["key"],
    ):
        output += run_cli([*base, *args], capsys)
    return output


def test_a_token_echoed_by_the_platform_is_written_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV, CANARY)
    workspace, reports = tmp_path / "ws", tmp_path / "reports"
    clock = VirtualClock()
    platform = EchoingPlatform(clock)
    store, run_id = start_run(workspace, tiny_plan(3, 1, token_env=ENV), clock)
    asyncio.run(execute_run(store, run_id, clock, transport=httpx.MockTransport(platform)))
    store.close()
    output = drive_every_command(workspace, reports, run_id, capsys)
    assert "OK" in output and platform.count > 50
    written = files_under(workspace, reports)
    assert any(p.name == "audit.sqlite" for p in written) and len(written) > 30
    assert {str(p): leaks(data) for p, data in written.items() if leaks(data)} == {}
    assert leaks(output.encode()) == []


def test_the_real_cli_run_writes_the_token_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV, CANARY)
    scale = 86_400.0  # a 24 h deadline lasts one second
    config = load_sandbox_config(default_config_path(), token=CANARY, time_scale=scale)
    workspace, reports = tmp_path / "ws", tmp_path / "reports"
    with SandboxServer(config, SystemClock()) as server:
        plan = tmp_path / "plan.yaml"
        plan.write_text(
            "plan:\n  name: canary\n  packs: [vn-superstition]\n  criteria: [VN-SUP-02]\n"
            f"  time_scale: {scale}\n  schedule: {{submission_window: PT1M}}\n"
            "  sample: {violating_per_criterion: 2, controls_per_criterion: 1}\n"
            f"  targets:\n    - {{name: sb, base_url: '{server.base_url}', token_env: {ENV},"
            " rate_limit: null}\n",
            encoding="utf-8",
        )
        base = ["--workspace", str(workspace), "--reports", str(reports)]
        output = run_cli([*base, "run", "--plan", str(plan)], capsys)
        assert server.platform.requests > 5 and server.platform.posts
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    output += drive_every_command(workspace, reports, run_dir.name, capsys)
    written = files_under(workspace, reports)
    assert {str(p): leaks(data) for p, data in written.items() if leaks(data)} == {}
    assert leaks(output.encode()) == []
