"""The built-in `mastodon` profile against an in-process stand-in for Mastodon's REST API.

No Mastodon server can run here (it needs PostgreSQL, Redis and Sidekiq), so ``FakeMastodon``
reproduces the documented answers (docs.joinmastodon.org: statuses, reports, accounts, rate
limits): 200 Status on POST/GET/DELETE /api/v1/statuses, the Idempotency-Key replay, 404
"Record not found" after a moderator's or the author's delete, 200 Report on POST
/api/v1/reports, 401 for a bad token, and 429 with X-RateLimit-Reset (no Retry-After).
A moderator deletes some statuses an hour after they are reported or posted.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import math
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audit.adapters.profile_load import BUILTIN_PROFILES_DIR
from audit.clock import VirtualClock, utc_iso
from audit.errors import InputError, TargetUnreachable
from audit.evidence.rederive import check_derivation
from audit.plan import Observer, Plan, Sample, Schedule, SecretRef, Target
from audit.runner import create_runs, execute_run
from audit.store import Store
from audit.workspace import scorecard_for

AUTHOR_TOKEN, NOTIFIER_TOKEN = "mastodon-author-token-0001", "mastodon-notifier-token-0002"
ACCOUNTS = {AUTHOR_TOKEN: "109001", NOTIFIER_TOKEN: "109002"}
MODERATION_DELAY = 3600.0
PROCESSING_DELAY = 7.0  # an upload answered 202 is ready this long after
RESET_AFTER = 300.0


def moderated(text: str) -> bool:
    return hashlib.sha256(text.encode()).digest()[0] % 2 == 0


def not_found() -> JSONResponse:
    return JSONResponse({"error": "Record not found"}, status_code=404)


def file_part(content_type: str, body: bytes) -> tuple[str, str, bytes] | None:
    """The multipart body's `file` part: (file name, type, bytes), read with the standard
    library's MIME parser."""
    header = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.default).parsebytes(header + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            return part.get_filename() or "", part.get_content_type(), data
    return None


@dataclass
class FakeMastodon:
    clock: VirtualClock
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[tuple[str, str], str] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[float] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)  # AccountWarning entities
    throttled_at: float | None = None
    retried_at: float | None = None
    # a moderator's removal still shown to its author (others get the 404)
    author_keeps_removed: bool = False
    anonymous_gets: int = 0
    next_id: int = 110_000_000_000_000_000
    media: dict[str, dict[str, Any]] = field(default_factory=dict)  # uploaded attachments
    media_looks: int = 0  # GET /api/v1/media/:id answered
    upload_outage_until: float = 0.0  # uploads answer 503 before this time
    never_processed: bool = False  # an upload answered 202 is never ready
    upload_answers: list[int] = field(default_factory=list)

    def account(self, request: Request) -> str | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return ACCOUNTS.get(token)

    def sweep(self) -> None:
        """The moderator deletes moderated statuses an hour after posting (a strike)."""
        now = self.clock.now()
        for status_id, status in self.statuses.items():
            due = status["created"] + MODERATION_DELAY
            if moderated(status["text"]) and status["deleted"] is None and now >= due:
                status["deleted"], status["deleted_by"] = due, "moderator"
                self.warnings.append({"action": "delete_statuses", "status_ids": [status_id]})

    def attachment(self, media_id: str) -> dict[str, Any]:
        media = self.media[media_id]
        ready = self.clock.now() >= media["ready_at"]
        return {
            "id": media_id,
            "type": media["type"].partition("/")[0].replace("audio", "audio"),
            "url": f"https://files.mastodon.test/{media_id}" if ready else None,
        }

    def view(self, status_id: str) -> dict[str, Any]:
        status = self.statuses[status_id]
        return {
            "media_attachments": [self.attachment(i) for i in status.get("media_ids", [])],
            "id": status_id,
            "created_at": utc_iso(status["created"]),
            "content": f"<p>{status['text']}</p>",
            "visibility": status["visibility"],
            "language": status["language"],
            "sensitive": False,
            "account": {"id": status["account"], "username": "author"},
        }

    async def verify(self, request: Request) -> Response:
        account = self.account(request)
        if account is None:
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        return JSONResponse({"id": account, "username": "author", "acct": "author"})

    async def post_status(self, request: Request) -> Response:
        account = self.account(request)
        if account is None:
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        body = await request.json()
        media_ids = [str(i) for i in body.get("media_ids") or []]
        if any(i not in self.media or self.media[i]["account"] != account for i in media_ids):
            return JSONResponse({"error": "Validation failed: media not found"}, 422)
        if any(self.clock.now() < self.media[i]["ready_at"] for i in media_ids):
            return JSONResponse(
                {"error": "Cannot attach files that have not finished processing"}, 422
            )
        if not body.get("status") and not media_ids:
            return JSONResponse({"error": "Validation failed: Text can't be blank"}, 422)
        key = (account, request.headers.get("idempotency-key", ""))
        if key[1] and key in self.keys:
            return JSONResponse(self.view(self.keys[key]))
        self.next_id += 1
        status_id = str(self.next_id)
        self.statuses[status_id] = {
            # a media status is moderated on its file, as the platform's classifier would
            "text": body.get("status") or "".join(self.media[i]["sha256"] for i in media_ids),
            "media_ids": media_ids,
            "language": body.get("language"),
            "visibility": body.get("visibility", "public"),
            "account": account,
            "created": self.clock.now(),
            "deleted": None,
            "deleted_by": None,
        }
        if key[1]:
            self.keys[key] = status_id
        return JSONResponse(self.view(status_id))

    def shown_to_author(self, status: dict[str, Any], account: str | None) -> bool:
        """A status a moderator removed that its author is still shown."""
        return (
            self.author_keeps_removed
            and status["deleted_by"] == "moderator"
            and account == status["account"]
        )

    async def get_status(self, request: Request) -> Response:
        self.sweep()
        if "authorization" not in request.headers:
            self.anonymous_gets += 1
        account = self.account(request)
        status = self.statuses.get(request.path_params["id"])
        if status is None:
            return not_found()
        if status["deleted"] is not None and not self.shown_to_author(status, account):
            return not_found()
        return JSONResponse(self.view(request.path_params["id"]))

    async def delete_status(self, request: Request) -> Response:
        self.sweep()
        account = self.account(request)
        status = self.statuses.get(request.path_params["id"])
        if status is None or status["account"] != account:
            return not_found()
        if status["deleted"] is not None and not self.shown_to_author(status, account):
            return not_found()
        status["deleted"], status["deleted_by"] = self.clock.now(), "author"
        self.deletes.append(self.clock.now())
        return JSONResponse({**self.view(request.path_params["id"]), "text": status["text"]})

    async def report(self, request: Request) -> Response:
        account = self.account(request)
        if account is None:
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        if self.throttled_at is None:  # the first report meets the rate limit
            self.throttled_at = self.clock.now()
            reset = datetime.fromtimestamp(self.throttled_at + RESET_AFTER, tz=UTC)
            headers = {"X-RateLimit-Reset": reset.isoformat(timespec="microseconds")}
            return JSONResponse({"error": "Too many requests"}, status_code=429, headers=headers)
        self.retried_at = self.retried_at or self.clock.now()
        body = await request.json()
        if body.get("account_id") not in ACCOUNTS.values():
            return not_found()
        report = {
            "id": str(len(self.reports) + 48914),
            "action_taken": False,
            "category": body.get("category", "other"),
            "comment": body.get("comment", ""),
            "status_ids": body.get("status_ids"),
            "target_account": {"id": body["account_id"]},
            "by": account,
        }
        self.reports.append(report)
        return JSONResponse({k: v for k, v in report.items() if k != "by"})

    async def upload(self, request: Request) -> Response:
        """POST /api/v2/media: 200 when processed at once (every other upload here), else 202
        with url null, processed PROCESSING_DELAY later."""
        account = self.account(request)
        if account is None:
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        if self.clock.now() < self.upload_outage_until:
            self.upload_answers.append(503)
            return JSONResponse({"error": "Service Unavailable"}, status_code=503)
        self.upload_answers.append(200)
        upload = file_part(request.headers.get("content-type", ""), await request.body())
        if upload is None:
            return JSONResponse({"error": "Validation failed: File can't be blank"}, 422)
        filename, content_type, data = upload
        self.next_id += 1
        media_id = str(self.next_id)
        later = self.never_processed or len(self.media) % 2 == 1
        self.media[media_id] = {
            "account": account,
            "data": data,
            "sha256": hashlib.sha256(data).hexdigest(),
            "type": content_type,
            "filename": filename,
            "ready_at": (math.inf if self.never_processed else self.clock.now() + PROCESSING_DELAY)
            if later
            else self.clock.now(),
        }
        return JSONResponse(self.attachment(media_id), status_code=202 if later else 200)

    async def get_media(self, request: Request) -> Response:
        media_id = request.path_params["id"]
        if self.account(request) is None or media_id not in self.media:
            return not_found()
        self.media_looks += 1
        view = self.attachment(media_id)
        return JSONResponse(view, status_code=200 if view["url"] else 206)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v2/media", self.upload, methods=["POST"]),
                Route("/api/v1/media/{id}", self.get_media, methods=["GET"]),
                Route("/api/v1/accounts/verify_credentials", self.verify, methods=["GET"]),
                Route("/api/v1/statuses", self.post_status, methods=["POST"]),
                Route("/api/v1/statuses/{id}", self.get_status, methods=["GET"]),
                Route("/api/v1/statuses/{id}", self.delete_status, methods=["DELETE"]),
                Route("/api/v1/reports", self.report, methods=["POST"]),
            ]
        )


def mastodon_plan(
    profile: str, secrets: dict[str, SecretRef], observer: Observer | None = None
) -> Plan:
    target = Target(
        name="mastodon",
        base_url="https://mastodon.test",
        profile=profile,
        secrets=secrets,
        rate_limit=None,
        observer=observer,
    )
    return Plan(
        name="mastodon",
        packs=["vn-superstition"],
        targets=[target],
        seed=5,
        sample=Sample(violating_per_criterion=4, controls_per_criterion=1),
        schedule=Schedule(submission_window="PT30M"),
    )


def run(
    tmp_path: Path, plan: Plan, *, author_keeps_removed: bool = False, **behaviour: Any
) -> tuple[FakeMastodon, Store, str]:
    clock = VirtualClock()
    server = FakeMastodon(clock, author_keeps_removed=author_keeps_removed, **behaviour)
    store = Store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    transport = httpx.ASGITransport(server.app())
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport))
    return server, store, prepared.run_id


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> dict[str, SecretRef]:
    monkeypatch.setenv("MASTODON_TEST_TOKEN", AUTHOR_TOKEN)
    monkeypatch.setenv("MASTODON_TEST_NOTIFIER", NOTIFIER_TOKEN)
    return {"token": SecretRef(env="MASTODON_TEST_TOKEN")}


def expected(row_text: str, expectation: str, trigger: str) -> str:
    if not moderated(row_text):
        return "kept" if expectation == "control" else "survived"
    return "over_removed" if expectation == "control" else "removed_in_time"


def test_mastodon_profile_audit(tmp_path: Path, tokens: dict[str, SecretRef]) -> None:
    server, store, run_id = run(tmp_path, mastodon_plan("mastodon", tokens))
    rows = store.probes(run_id)
    observations = store.observations(run_id)
    for row in rows:
        assert row.outcome == expected(row.probe["text"], row.expectation, row.trigger), row
        status = server.statuses[str(row.post_id)]
        assert status["text"] == row.probe["text"] and status["visibility"] == "unlisted"
        assert status["deleted"] is not None  # by the moderator or, at the end, the author
        down = [
            o for o in observations[row.probe_id] if o.action == "status" and o.result != "visible"
        ]
        assert all(o.result == "gone" for o in down)  # a 404 is `gone`, never `removed`
    assert len(server.statuses) == len(rows)  # no status posted twice
    # every report names the author's account (read by the setup step) and the status
    noticed = {str(r.post_id) for r in rows if r.trigger in ("notice", "order")}
    assert {tuple(r["status_ids"]) for r in server.reports} == {(i,) for i in noticed}
    assert all(r["target_account"]["id"] == ACCOUNTS[AUTHOR_TOKEN] for r in server.reports)
    # X-RateLimit-Reset honoured; deletes spaced at 30 per 30 minutes
    assert server.throttled_at is not None and server.retried_at is not None
    assert server.retried_at - server.throttled_at >= RESET_AFTER - 1e-6
    gaps = [b - a for a, b in zip(server.deletes, server.deletes[1:], strict=False)]
    assert gaps and min(gaps) >= 60.0 - 1e-6


def test_reports_can_come_from_a_separate_reporter(
    tmp_path: Path, tokens: dict[str, SecretRef]
) -> None:
    data = yaml.safe_load((BUILTIN_PROFILES_DIR / "mastodon.yaml").read_text(encoding="utf-8"))
    data["secrets"]["notifier_token"] = {"description": "reporter account's token"}
    data["notifier_auth"] = {"kind": "bearer", "token": "{secrets.notifier_token}"}
    data["notice"]["request"]["auth"] = "notifier"
    profile = tmp_path / "mastodon-reporter.yaml"
    profile.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    secrets = {**tokens, "notifier_token": SecretRef(env="MASTODON_TEST_NOTIFIER")}
    server, store, run_id = run(tmp_path, mastodon_plan(str(profile), secrets))
    assert server.reports
    assert {r["by"] for r in server.reports} == {ACCOUNTS[NOTIFIER_TOKEN]}
    assert all(r["target_account"]["id"] == ACCOUNTS[AUTHOR_TOKEN] for r in server.reports)
    assert all(r.outcome != "inconclusive" for r in store.probes(run_id))


def test_a_bad_token_measures_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTODON_TEST_TOKEN", "revoked-token-value")
    plan = mastodon_plan("mastodon", {"token": SecretRef(env="MASTODON_TEST_TOKEN")})
    clock = VirtualClock()
    server = FakeMastodon(clock)
    store = Store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    transport = httpx.ASGITransport(server.app())
    # the preflight check (verify_credentials) refuses the token before anything is posted
    with pytest.raises(TargetUnreachable, match="HTTP 401"):
        asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport))
    rows = store.probes(prepared.run_id)
    assert store.run(prepared.run_id).status == "failed"
    assert all(r.post_id is None and r.outcome is None for r in rows)
    assert not server.statuses


def test_media_reach_mastodon_through_v2_media(
    tmp_path: Path, tokens: dict[str, SecretRef]
) -> None:
    """Image (and, with espeak-ng, speech) probes: each file goes up through /api/v2/media,
    the ones answered 202 are polled until processed, and the status carries them by id; the
    files the stand-in received are the probes' own media."""
    from audit.media_file import media_file
    from audit.probe import Probe

    shares = {"image_share": 0.5, "speech_share": 0.5 if shutil.which("espeak-ng") else 0.0}
    plan = mastodon_plan("mastodon", tokens)
    plan = plan.model_copy(update={"sample": plan.sample.model_copy(update=shares)})
    server, store, run_id = run(tmp_path, plan)
    rows = [r for r in store.probes(run_id) if r.probe["modality"] != "text"]
    assert rows and len(server.media) == len(rows)  # one upload per media probe
    assert any(m["ready_at"] > 0 for m in server.media.values()) and server.media_looks
    for row in rows:
        made = media_file(Probe.model_validate(row.probe))
        assert made is not None
        status = server.statuses[str(row.post_id)]
        (attached,) = (server.media[i] for i in status["media_ids"])
        assert attached["sha256"] == made.sha256 and attached["type"] == made.media_type
        assert "audit" not in attached["filename"].lower()
        wanted = expected(made.sha256, row.expectation, row.trigger)
        assert row.outcome == wanted, row
    groups = {
        g.value
        for c in scorecard_for(store, run_id).criteria
        for g in c.breakdowns
        if g.dimension == "modality"
    }
    assert "image" in groups and not any("not shown delivered" in g for g in groups)


def media_plan(tokens: dict[str, SecretRef]) -> Plan:
    plan = mastodon_plan("mastodon", tokens)
    return plan.model_copy(update={"sample": plan.sample.model_copy(update={"image_share": 1.0})})


def test_an_upload_outage_delays_media_probes_but_loses_none(
    tmp_path: Path, tokens: dict[str, SecretRef]
) -> None:
    """Uploads answer 503 for the first 20 minutes (longer than a request's retries): each
    media probe is tried again later, reaches the platform once it is back, and is measured;
    nothing counts as a refusal and no status is posted twice."""
    plan = media_plan(tokens)
    start = VirtualClock().now()
    server, store, run_id = run(tmp_path, plan, upload_outage_until=start + 1200.0)
    rows = [r for r in store.probes(run_id) if r.probe["modality"] == "image"]
    assert 503 in server.upload_answers and 200 in server.upload_answers
    assert rows and all(r.outcome not in ("rejected_at_submission", "inconclusive") for r in rows)
    posted = [s for s in server.statuses.values() if s["media_ids"]]
    assert len(posted) == len(rows)  # one status per media probe
    observations = store.observations(run_id)
    later = [r for r in rows if any(o.result == "error" for o in observations[r.probe_id])]
    assert later  # some were tried again after the outage
    for row in rows:
        assert row.outcome == expected(
            server.media[server.statuses[str(row.post_id)]["media_ids"][0]]["sha256"],
            row.expectation,
            row.trigger,
        )


def test_media_the_platform_never_processes_are_never_counted_as_removed(
    tmp_path: Path, tokens: dict[str, SecretRef]
) -> None:
    """Every upload answers 202 and never becomes ready: no status can be posted, so no media
    probe is measured; they are inconclusive (never refused, never removed), the criterion is
    not COMPLIANT and the modality's figures claim nothing was delivered."""
    data = yaml.safe_load((BUILTIN_PROFILES_DIR / "mastodon.yaml").read_text(encoding="utf-8"))
    data["media"]["image"]["upload"]["ready"].update(every="PT30S", within="PT2M")  # fewer looks
    profile = tmp_path / "mastodon-quick.yaml"
    profile.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    # deadlines of 1 h: later tries stop after one deadline, so the run ends sooner
    plan = media_plan(tokens).model_copy(
        update={"targets": [mastodon_plan(str(profile), tokens).targets[0]], "time_scale": 24.0}
    )
    server, store, run_id = run(tmp_path, plan, never_processed=True)
    rows = [r for r in store.probes(run_id) if r.probe["modality"] == "image"]
    assert rows and all(r.outcome == "inconclusive" for r in rows), [r.outcome for r in rows]
    assert not any(s["media_ids"] for s in server.statuses.values())
    card = scorecard_for(store, run_id)
    assert all(c.verdict != "COMPLIANT" for c in card.criteria)
    detail = " ".join(o.detail for r in rows for o in store.observations(run_id)[r.probe_id])
    assert "had not processed the media" in detail


def test_an_anonymous_observer_sees_the_removal_the_author_is_not_shown(
    tmp_path: Path, tokens: dict[str, SecretRef]
) -> None:
    """A moderator's removal the author is still shown: looks with the author's token count
    every probe up; logged-out looks (the profile's observer_status) count the removals."""
    observer = Observer(kind="anonymous")
    server, store, run_id = run(
        tmp_path / "observer",
        mastodon_plan("mastodon", tokens, observer),
        author_keeps_removed=True,
    )
    rows = store.probes(run_id)
    for row in rows:
        assert row.outcome == expected(row.probe["text"], row.expectation, row.trigger), row
    looks = [o for rows_of in store.observations(run_id).values() for o in rows_of]
    looks = [o for o in looks if o.action == "status" and o.result != "error"]
    assert looks and {o.view for o in looks} == {"observer"}
    assert server.anonymous_gets == len(looks)  # every look was made logged out, once
    disagreeing = [o for o in looks if o.result == "gone" and o.author_result == "visible"]
    assert disagreeing  # the author's own view was still shown the removed statuses
    assert all(s["deleted_by"] is not None for s in server.statuses.values())
    # verify reads each view's answers again with the profile's own rules
    derived = check_derivation(
        store.run(run_id),
        rows,
        store.observations(run_id),
        list(store.exchanges(run_id)),
    )
    assert derived.problems == [] and derived.reread > len(looks)

    _, store, run_id = run(
        tmp_path / "author", mastodon_plan("mastodon", tokens), author_keeps_removed=True
    )
    assert {r.outcome for r in store.probes(run_id)} <= {"survived", "kept"}


def test_an_account_observer_does_not_fit_the_anonymous_mastodon_profile(
    tmp_path: Path, tokens: dict[str, SecretRef]
) -> None:
    observer = Observer(kind="account", token=SecretRef(env="MASTODON_TEST_NOTIFIER"))
    plan = mastodon_plan("mastodon", tokens, observer)
    with pytest.raises(InputError, match=r"'observer\.kind' must be anonymous"):
        run(tmp_path, plan)
