"""A platform shaped unlike the reference sandbox, audited through a YAML profile alone.

``AcmeSocial`` is an in-process Starlette app (reached through httpx.ASGITransport) with OAuth2
client credentials and expiring tokens, 201 + a nested id, 422 with a policy code at upload, a
``status`` field for removal, 404 after the author's own delete and 429 with Retry-After. It
shares the test's virtual clock, so a 24 h deadline passes in a moment. The profile is
examples/profiles/acme-oauth.yaml; no Python was written for this API.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audit.clock import VirtualClock
from audit.errors import TargetUnreachable
from audit.plan import Plan, Sample, Schedule, SecretRef, Target
from audit.runner import create_runs, execute_run
from audit.store import Store

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "profiles" / "acme-oauth.yaml"
CLIENT_ID_ENV, CLIENT_SECRET_ENV = "ACME_TEST_CLIENT_ID", "ACME_TEST_CLIENT_SECRET"
TOKEN_LIFETIME = 3600  # seconds of platform (virtual) time
REMOVAL_AFTER = 2 * 3600
RETRY_AFTER = 120
BUSY_AT_STATUS_REQUEST = 5  # the 5th look is answered 429
REVOKE_AT_REQUEST = 40  # the platform rotates its keys: every token issued so far is revoked


def decision(text: str) -> str:
    """The platform's moderation, by a hash of the content: reject, remove later, or keep."""
    return ("reject", "remove", "keep")[hashlib.sha256(text.encode()).digest()[0] % 3]


def _errors(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"errors": [{"code": code, "detail": detail}]}, status_code=status)


@dataclass
class AcmeSocial:
    clock: VirtualClock
    client_id: str
    client_secret: str
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry
    issued: list[str] = field(default_factory=list)
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)  # texts refused at upload
    flags: list[str] = field(default_factory=list)
    unauthorised: int = 0
    expired_uses: int = 0
    requests: int = 0
    status_requests: int = 0
    busy_at: float | None = None
    after_busy: float | None = None

    # auth ---------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        if (
            self.client(request) != (self.client_id, self.client_secret)
            or form.get("grant_type") != "client_credentials"
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = "acme-at-" + secrets.token_hex(16)
        self.tokens[token] = self.clock.now() + TOKEN_LIFETIME
        self.issued.append(token)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME}
        return JSONResponse(body)

    @staticmethod
    def client(request: Request) -> tuple[str, str] | None:
        """HTTP Basic client authentication, form-decoded as RFC 6749 section 2.3.1 says."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme != "Basic":
            return None
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return unquote_plus(user), unquote_plus(password)

    def authorised(self, request: Request) -> bool:
        self.requests += 1
        if self.requests == REVOKE_AT_REQUEST:
            self.tokens.clear()
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expiry = self.tokens.get(token)
        ok = expiry is not None and self.clock.now() < expiry
        if not ok:
            self.unauthorised += 1
            self.expired_uses += int(token in self.issued and expiry is not None)
        return ok

    # posts --------------------------------------------------------------------------------
    async def create(self, request: Request) -> Response:
        if not self.authorised(request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        body = await request.json()
        text = body["content"]["text"]
        key = request.headers.get("idempotency-key", "")
        if key in self.keys:
            return JSONResponse(self._view(self.keys[key]), status_code=200)
        if decision(text) == "reject":
            self.rejected.append(text)
            return _errors(422, "POLICY_VIOLATION", "This content is not allowed on Acme.")
        post_id = f"p_{len(self.posts) + 1:05d}"
        now = self.clock.now()
        removal = now + REMOVAL_AFTER if decision(text) == "remove" else None
        self.posts[post_id] = {"text": text, "key": key, "removal_at": removal, "deleted": None}
        self.keys[key] = post_id
        return JSONResponse(self._view(post_id), status_code=201)

    def _view(self, post_id: str) -> dict[str, Any]:
        post = self.posts[post_id]
        removed = post["removal_at"] is not None and self.clock.now() >= post["removal_at"]
        view: dict[str, Any] = {"id": post_id, "status": "removed" if removed else "published"}
        if removed:
            view["removal"] = {"reason": "community_standards"}
        return {"data": {"post": view}}

    async def show(self, request: Request) -> Response:
        if not self.authorised(request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        self.status_requests += 1
        if self.status_requests == BUSY_AT_STATUS_REQUEST:
            self.busy_at = self.clock.now()
            return JSONResponse(
                {"error": "busy"}, status_code=429, headers={"Retry-After": str(RETRY_AFTER)}
            )
        if self.busy_at is not None and self.after_busy is None:
            self.after_busy = self.clock.now()
        post = self.posts.get(request.path_params["post_id"])
        if post is None or post["deleted"] is not None:
            return _errors(404, "NOT_FOUND", "No such post.")
        view = self._view(request.path_params["post_id"])
        # a careless API that echoes the caller's credentials back: they must not be recorded
        view["meta"] = {"authorization": request.headers.get("authorization")}
        return JSONResponse(view)

    async def flag(self, request: Request) -> Response:
        if not self.authorised(request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        self.flags.append(request.path_params["post_id"])
        return JSONResponse({"data": {"flag": {"id": f"f_{len(self.flags)}"}}}, status_code=202)

    async def delete(self, request: Request) -> Response:
        if not self.authorised(request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        post = self.posts.get(request.path_params["post_id"])
        if post is None or post["deleted"] is not None:
            return _errors(404, "NOT_FOUND", "No such post.")
        post["deleted"] = self.clock.now()
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/v2/posts", self.create, methods=["POST"]),
                Route("/v2/posts/{post_id}", self.show, methods=["GET"]),
                Route("/v2/posts/{post_id}", self.delete, methods=["DELETE"]),
                Route("/v2/posts/{post_id}/flags", self.flag, methods=["POST"]),
            ]
        )


@dataclass
class AcmeAudit:
    platform: AcmeSocial
    store: Store
    run_id: str
    workspace: Path
    started: float


def acme_plan() -> Plan:
    target = Target(
        name="acme",
        base_url="https://acme.test",
        profile=str(EXAMPLE),
        secrets={
            "client_id": SecretRef(env=CLIENT_ID_ENV),
            "client_secret": SecretRef(env=CLIENT_SECRET_ENV),
        },
        rate_limit=None,
    )
    return Plan(
        name="acme",
        packs=["vn-superstition"],
        targets=[target],
        seed=3,
        sample=Sample(violating_per_criterion=6, controls_per_criterion=2),
        schedule=Schedule(submission_window="PT1H"),
    )


def run_acme_audit(
    workspace: Path, client_id: str, client_secret: str, *, ends: bool = False
) -> AcmeAudit:
    """The audit to its end; with ``ends``, a run the dead-target rule must end (failed)."""
    clock = VirtualClock()
    platform = AcmeSocial(clock, client_id, client_secret)
    workspace.mkdir(parents=True, exist_ok=True)
    store = Store(workspace / "audit.sqlite")
    started = clock.now()
    (prepared,) = create_runs(store, acme_plan(), None, clock)
    transport = httpx.ASGITransport(platform.app())
    if ends:
        with pytest.raises(TargetUnreachable, match="refuses the tool's credentials"):
            asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport))
    else:
        asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport))
    return AcmeAudit(platform, store, prepared.run_id, workspace, started)


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    pair = ("acme-client-" + secrets.token_hex(6), "acme-secret-" + secrets.token_hex(16))
    monkeypatch.setenv(CLIENT_ID_ENV, pair[0])
    monkeypatch.setenv(CLIENT_SECRET_ENV, pair[1])
    return pair


@pytest.fixture
def acme(tmp_path: Path, credentials: tuple[str, str]) -> Iterator[AcmeAudit]:
    audit = run_acme_audit(tmp_path / "workspace", *credentials)
    yield audit
    audit.store.close()


def expected_outcome(text: str, expectation: str) -> str:
    kept = "kept" if expectation == "control" else "survived"
    removed = "over_removed" if expectation == "control" else "removed_in_time"
    rejected = "over_removed" if expectation == "control" else "rejected_at_submission"
    return {"reject": rejected, "remove": removed, "keep": kept}[decision(text)]


def test_outcomes_agree_with_the_platform(acme: AcmeAudit) -> None:
    rows = acme.store.probes(acme.run_id)
    assert len(rows) == 24
    for row in rows:
        text = row.probe["text"]
        assert row.outcome == expected_outcome(text, row.expectation), (row.probe_id, row.note)
        if decision(text) != "reject":
            post_id = acme.platform.keys[row.probe_id]  # the nested id was read back
            assert row.post_id == post_id and row.withdrawn_at is not None
    assert {decision(r.probe["text"]) for r in rows} == {"reject", "remove", "keep"}
    # every post was posted once and deleted by its author; nothing was left up
    assert len(acme.platform.posts) == len({r.post_id for r in rows if r.post_id})
    assert all(post["deleted"] is not None for post in acme.platform.posts.values())
    noticed = [r for r in rows if r.trigger in ("notice", "order") and r.post_id]
    assert sorted(acme.platform.flags) == sorted(r.post_id for r in noticed)


def test_tokens_are_refreshed_on_expiry_and_after_revocation(acme: AcmeAudit) -> None:
    elapsed = acme.platform.clock.now() - acme.started
    assert elapsed > 24 * 3600  # the audit spanned many token lifetimes,
    assert len(acme.platform.issued) >= 3  # fetched new tokens as they ran out,
    assert acme.platform.expired_uses == 0  # before they expired, never after;
    assert acme.platform.unauthorised == 1  # the revocation was felt once
    assert all(r.outcome != "inconclusive" for r in acme.store.probes(acme.run_id))  # and healed
    auth_entries = [
        r.entry for r in acme.store.exchanges(acme.run_id) if r.entry["action"] == "auth"
    ]
    assert len(auth_entries) == len(acme.platform.issued)
    assert all("withheld" in e["response_body"] for e in auth_entries)


def test_retry_after_is_honoured_on_the_virtual_clock(acme: AcmeAudit) -> None:
    platform = acme.platform
    assert platform.busy_at is not None and platform.after_busy is not None
    assert platform.after_busy - platform.busy_at >= RETRY_AFTER
    busy = [r.entry for r in acme.store.exchanges(acme.run_id) if r.entry["status"] == 429]
    assert len(busy) == 1 and busy[0]["headers"]["retry-after"] == str(RETRY_AFTER)


def test_wrong_client_secret_measures_nothing(
    tmp_path: Path, credentials: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id, _ = credentials
    monkeypatch.setenv(CLIENT_SECRET_ENV, "not-the-secret-" + secrets.token_hex(8))
    secret = "the-real-secret-" + secrets.token_hex(8)
    # the token request keeps being refused: the run ends, failed, naming the credentials
    audit = run_acme_audit(tmp_path / "ws", client_id, secret, ends=True)
    rows = audit.store.probes(audit.run_id)
    assert audit.store.run(audit.run_id).status == "failed"
    # never a low score, never a removal: nothing measured, nothing posted
    assert {r.outcome for r in rows} <= {None, "inconclusive"}
    assert not audit.platform.posts
    audit.store.close()
