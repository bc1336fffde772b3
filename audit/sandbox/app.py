"""The reference sandbox: a small social platform with simulated automated moderation.

It is a simulator, documented as such: it exists so that the audit can be run, demonstrated and
tested end to end against a real HTTP server. API (JSON):

    POST   /api/v1/posts                 {"text", "modality"?, "alt_text"?, "media"?}  201 | 422
    GET    /api/v1/posts?idempotency_key=K                                           200 | 404
    GET    /api/v1/posts/{id}            200 visible | 410 removed | 404 withdrawn/unknown
    POST   /api/v1/posts/{id}/reports    {"kind": "notice"|"order", "reason"}         202
    DELETE /api/v1/posts/{id}            204 (the author withdraws the post)
    GET    /_sandbox/health              200
    GET    /_sandbox/truth               ground truth of every post (for tests and demos)
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audit.clock import Clock, SystemClock, utc_iso
from audit.sandbox.moderation import (
    PostRecord,
    SandboxConfig,
    Submission,
    apply_notice,
    decide_post,
)

__all__ = ["SandboxPlatform", "create_app"]

MAX_TEXT = 20_000


class SandboxPlatform:
    """The platform's state: posts and their drawn fates."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.posts: dict[str, PostRecord] = {}
        self.by_key: dict[str, str] = {}
        self.blocked: list[dict[str, Any]] = []
        self.requests = 0
        self._lock = asyncio.Lock()

    def truth(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "now": now,
            "time_scale": self.config.time_scale,
            "posts": [
                {
                    "id": p.post_id,
                    "idempotency_key": p.idempotency_key,
                    "rule": p.rule,
                    "modality": p.modality,
                    "detected": p.detected,
                    "created_at": p.created_at,
                    "removal_at": p.removal_at,
                    "proactive_removal_at": p.proactive_removal_at,
                    "notice_removal_at": p.notice_removal_at,
                    "notices": [{"kind": k, "at": t} for k, t in p.notices],
                    "withdrawn_at": p.withdrawn_at,
                    "submissions": p.submissions,
                    "state": p.state_at(now),
                }
                for p in self.posts.values()
            ],
            "blocked": self.blocked,
        }


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _post_view(post: PostRecord, now: float) -> tuple[int, dict[str, Any]]:
    state = post.state_at(now)
    if state == "withdrawn":
        return 404, {"error": "not_found", "message": "no such post"}
    if state == "removed":
        return 410, {
            "id": post.post_id,
            "state": "removed",
            "reason": "community_guidelines",
            "removed_at": utc_iso(post.removal_at),
        }
    return 200, {"id": post.post_id, "state": "visible", "created_at": utc_iso(post.created_at)}


def create_app(config: SandboxConfig, clock: Clock | None = None) -> Starlette:
    platform = SandboxPlatform(config, clock or SystemClock())

    def authorised(request: Request) -> bool:
        platform.requests += 1
        if config.token is None:
            return True
        return request.headers.get("authorization") == f"Bearer {config.token}"

    async def create_post(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorised", "missing or wrong bearer token")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "bad_request", "body must be JSON")
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
            return _error(400, "bad_request", "'text' must be a non-empty string")
        modality = body.get("modality", "text")
        seen_text = body.get("alt_text") or text if modality != "text" else text
        key = request.headers.get("idempotency-key")
        async with platform._lock:
            now = platform.clock.now()
            if key and key in platform.by_key:
                post = platform.posts[platform.by_key[key]]
                post.submissions += 1
                return JSONResponse({"id": post.post_id, "state": "visible"}, status_code=200)
            post_id = f"{len(platform.posts) + len(platform.blocked) + 1:07d}"
            record, blocked = decide_post(
                config, post_id, Submission(str(seen_text), str(modality), key), now
            )
            if blocked:
                platform.blocked.append(
                    {"idempotency_key": key, "rule": record.rule, "at": now, "modality": modality}
                )
                return _error(422, "policy_violation", "this content violates community rules")
            platform.posts[post_id] = record
            if key:
                platform.by_key[key] = post_id
        return JSONResponse({"id": post_id, "state": "visible"}, status_code=201)

    async def find_post(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorised", "missing or wrong bearer token")
        key = request.query_params.get("idempotency_key", "")
        post_id = platform.by_key.get(key)
        if post_id is None:
            if any(b["idempotency_key"] == key for b in platform.blocked):
                return _error(422, "policy_violation", "this content violates community rules")
            return _error(404, "not_found", "no post with this idempotency key")
        status, view = _post_view(platform.posts[post_id], platform.clock.now())
        return JSONResponse(view, status_code=status)

    async def get_post(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorised", "missing or wrong bearer token")
        post = platform.posts.get(request.path_params["post_id"])
        if post is None:
            return _error(404, "not_found", "no such post")
        status, view = _post_view(post, platform.clock.now())
        return JSONResponse(view, status_code=status)

    async def report_post(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorised", "missing or wrong bearer token")
        post = platform.posts.get(request.path_params["post_id"])
        if post is None or post.state_at(platform.clock.now()) == "withdrawn":
            return _error(404, "not_found", "no such post")
        try:
            body = await request.json()
        except ValueError:
            body = {}
        kind = body.get("kind", "notice") if isinstance(body, dict) else "notice"
        if kind not in ("notice", "order"):
            return _error(400, "bad_request", "'kind' must be notice or order")
        apply_notice(config, post, kind, platform.clock.now())
        return JSONResponse({"report_id": f"{post.post_id}-{len(post.notices)}"}, status_code=202)

    async def delete_post(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorised", "missing or wrong bearer token")
        post = platform.posts.get(request.path_params["post_id"])
        if post is None or post.withdrawn_at is not None:
            return _error(404, "not_found", "no such post")
        post.withdrawn_at = platform.clock.now()
        return Response(status_code=204)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "simulator": True})

    async def truth(_: Request) -> Response:
        return JSONResponse(platform.truth())

    app = Starlette(
        routes=[
            Route("/api/v1/posts", create_post, methods=["POST"]),
            Route("/api/v1/posts", find_post, methods=["GET"]),
            Route("/api/v1/posts/{post_id}", get_post, methods=["GET"]),
            Route("/api/v1/posts/{post_id}", delete_post, methods=["DELETE"]),
            Route("/api/v1/posts/{post_id}/reports", report_post, methods=["POST"]),
            Route("/_sandbox/health", health, methods=["GET"]),
            Route("/_sandbox/truth", truth, methods=["GET"]),
        ]
    )
    app.state.platform = platform
    return app
