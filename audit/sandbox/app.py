"""The reference sandbox: a small social platform with simulated automated moderation.

It is a simulator, documented as such: it exists so that the audit can be run, demonstrated and
tested end to end against a real HTTP server. API (JSON):

    POST   /api/v1/posts                 {"text", "modality"?, "media"?}             201 | 422
    GET    /api/v1/posts?idempotency_key=K                                           200 | 404
    GET    /api/v1/posts/{id}            200 visible | 410 removed | 404 withdrawn/unknown
    POST   /api/v1/posts/{id}/reports    {"kind": "notice"|"order", "reason"}         202
    DELETE /api/v1/posts/{id}            204 (the author withdraws the post)
    GET    /api/v1/statements            200 {"statements": [...]}: statements of reasons issued
    GET    /api/v1/statements/dump       200 zip: a daily dump (?date=YYYY-MM-DD, ?variant=light)
    GET    /_sandbox/health              200 {"status": "ok", "simulator": true, "time_scale": 3600}
    GET    /_sandbox/truth               ground truth of every post (for tests and demos)

State. By default the state lives in memory. With a state file (``create_app(..., state_path=)``,
``platform-audit sandbox serve --state FILE``) every change is written to it before the answer
and read back on start, so the sandbox survives restarts: see :mod:`audit.sandbox.state`.

Media posts. ``modality`` is ``image``, ``speech`` or ``video`` and ``media`` is
``{"type": "image/png", "sha256": "<hex>", "data": "<base64>"}`` (``video/mp4`` for a video);
``text`` is then the caption and may be empty. The sandbox checks the type against the file's
signature and the digest against the bytes, and keeps the digest and size, not the bytes.

Accounts. Without a ``token`` in its configuration the sandbox asks no credentials and tells no
one apart. With one, that bearer token is the author's account, which alone posts, reports and
withdraws; ``observer_tokens`` are other accounts, which may only look at posts
(``GET /api/v1/posts/{id}``), and with ``anonymous_reads`` a logged-out request may look too.
With ``removed_visible_to_author`` a removed post is still answered 200 visible to its author
(as many platforms keep removed content visible to its author), so only another account or a
logged-out reader sees the removal; ``/_sandbox/truth`` says what each saw.

Simulator affordance. The sandbox cannot read pixels or audio. A client may tell it what the
media shows in the ``X-Sandbox-Simulated-Content`` header (base64 of the UTF-8 text the media
was rendered from); the simulated image or speech classifier then matches its rules against that
text, scaled by the rule's ``modality_factor`` (see :mod:`audit.sandbox.moderation`). Without the
header the media is opaque to the simulated classifier. ``X-Sandbox-Simulated-Variants`` names
the media's variants, comma-separated (an image's or a recording's style such as
``image_low_contrast``, a video's ``video_audio_only``...), so the simulator knows where a video
carries its text; the configuration's ``media_variant_detection`` can make the classifier miss
media in a variant. Only the reference sandbox's adapter sends these headers, and only to a
server that identifies itself as this simulator; no adapter for a real platform ever sends them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audit.clock import Clock, SystemClock, utc_iso
from audit.sandbox.moderation import (
    Media,
    PostRecord,
    SandboxConfig,
    Submission,
    apply_notice,
    decide_post,
)
from audit.sandbox.state import SandboxStateFile
from audit.sandbox.statements import issued_statements, statement_truth
from audit.statements.dump import dump_name, dump_zip

__all__ = ["SandboxPlatform", "create_app"]

MAX_TEXT = 20_000
MAX_MEDIA = 10 * 1024 * 1024
MAX_BODY = 16 * 1024 * 1024
SIMULATION_HEADER = "x-sandbox-simulated-content"
VARIANTS_HEADER = "x-sandbox-simulated-variants"
_SIGNATURES: dict[str, tuple[tuple[int, bytes], ...]] = {
    "image/png": ((0, b"\x89PNG\r\n\x1a\n"),),
    "image/jpeg": ((0, b"\xff\xd8\xff"),),
    "image/webp": ((0, b"RIFF"), (8, b"WEBP")),
    "audio/wav": ((0, b"RIFF"), (8, b"WAVE")),
    "audio/mpeg": ((0, b"ID3"),),
    "audio/ogg": ((0, b"OggS"),),
    "video/mp4": ((4, b"ftyp"),),
}
_MODALITY_OF = {"image": "image/", "speech": "audio/", "video": "video/"}
_VARIANT_NAME = re.compile(r"[A-Za-z0-9_+.-]+")


class BadPost(ValueError):
    """A post the sandbox refuses as malformed (HTTP 400)."""


def _decode_simulated(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadPost(f"{SIMULATION_HEADER} must be base64 of UTF-8 text") from None


def _decode_variants(value: str | None) -> tuple[str, ...]:
    names = tuple(name.strip() for name in (value or "").split(",") if name.strip())
    if not all(_VARIANT_NAME.fullmatch(name) for name in names):
        raise BadPost(f"{VARIANTS_HEADER} must be comma-separated variant names (got {value!r})")
    return names


def _media(
    body: dict[str, Any], modality: str, simulated: str | None, variants: tuple[str, ...]
) -> Media:
    media = body.get("media")
    if not isinstance(media, dict):
        raise BadPost(f"a {modality} post needs 'media': {{type, sha256, data}}")
    media_type, data = media.get("type"), media.get("data")
    if media_type not in _SIGNATURES or not str(media_type).startswith(_MODALITY_OF[modality]):
        raise BadPost(f"'media.type' {media_type!r} is not an accepted {modality} type")
    try:
        raw = base64.b64decode(str(data), validate=True)
    except binascii.Error:
        raise BadPost("'media.data' must be base64") from None
    if not raw or len(raw) > MAX_MEDIA:
        raise BadPost(f"'media.data' must hold 1 to {MAX_MEDIA} bytes")
    if not all(raw[at : at + len(sig)] == sig for at, sig in _SIGNATURES[str(media_type)]):
        raise BadPost(f"'media.data' is not a {media_type} file")
    digest = hashlib.sha256(raw).hexdigest()
    if media.get("sha256") not in (None, digest):
        raise BadPost("'media.sha256' does not match the uploaded bytes")
    return Media(str(media_type), digest, len(raw), simulated, variants)


def parse_submission(body: Any, headers: dict[str, str]) -> Submission:
    """A post from a request body and headers; :class:`BadPost` says what is wrong."""
    if not isinstance(body, dict):
        raise BadPost("body must be a JSON object")
    text, modality = body.get("text", ""), body.get("modality", "text")
    if modality not in ("text", *_MODALITY_OF):
        raise BadPost("'modality' must be text, image, speech or video")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise BadPost(f"'text' must be a string of at most {MAX_TEXT} characters")
    key = headers.get("idempotency-key")
    if modality == "text":
        if not text or "media" in body:
            raise BadPost("'text' must be a non-empty string (and a text post has no media)")
        return Submission(text, modality, key)
    simulated = _decode_simulated(headers.get(SIMULATION_HEADER))
    variants = _decode_variants(headers.get(VARIANTS_HEADER))
    return Submission(text, modality, key, _media(body, modality, simulated, variants))


class SandboxPlatform:
    """The platform's state: posts and their drawn fates."""

    def __init__(
        self, config: SandboxConfig, clock: Clock, state: SandboxStateFile | None = None
    ) -> None:
        self.config = config
        self.clock = clock
        self.posts: dict[str, PostRecord] = {}
        self.by_key: dict[str, str] = {}
        self.blocked: list[dict[str, Any]] = []
        self.requests = 0
        self.reads = {"author": 0, "observer": 0, "public": 0}  # looks at posts, by who asked
        self.issued = 0  # ids handed out (posts and blocked uploads)
        self.epoch = clock.now()
        self.openings = [self.epoch]
        self.state = state
        self._lock = asyncio.Lock()
        if state is not None:
            self._load(state)

    def _load(self, state: SandboxStateFile) -> None:
        loaded = state.open(self.config, self.clock.now())
        self.posts, self.blocked = loaded.posts, loaded.blocked
        self.by_key = {p.idempotency_key: i for i, p in self.posts.items() if p.idempotency_key}
        self.issued, self.epoch, self.openings = loaded.issued, loaded.epoch, loaded.openings

    def next_post_id(self) -> str:
        """A new id, never one handed out before (in this state's whole life)."""
        self.issued = max(self.issued, len(self.posts) + len(self.blocked)) + 1
        return f"{self.issued:07d}"

    def changed(self, post: PostRecord, new: bool = False) -> None:
        """Write a created or changed post to the state file, if there is one."""
        if self.state is not None:
            self.state.save_post(post, self.issued if new else None)

    def block(self, entry: dict[str, Any]) -> None:
        self.blocked.append(entry)
        if self.state is not None:
            self.state.save_blocked(entry, self.issued)

    def author_view(self, post: PostRecord, now: float) -> str:
        """The post's state as its author is shown it."""
        state = post.state_at(now)
        if state == "removed" and self.config.removed_visible_to_author:
            return "visible"
        return state

    def truth(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "now": now,
            "time_scale": self.config.time_scale,
            "epoch": self.epoch,
            "openings": self.openings,
            "state_file": str(self.state.path) if self.state is not None else None,
            "removed_visible_to_author": self.config.removed_visible_to_author,
            "reads": dict(self.reads),
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
                    "notice_repeats": p.notice_repeats,
                    "withdrawn_at": p.withdrawn_at,
                    "submissions": p.submissions,
                    "state": p.state_at(now),
                    "author_view": self.author_view(p, now),
                    "media": _media_truth(p),
                }
                for p in self.posts.values()
            ],
            "blocked": self.blocked,
            "statements": statement_truth(self.config, self.posts.values(), now),
        }


def _media_truth(post: PostRecord) -> dict[str, Any] | None:
    if post.media is None:
        return None
    return {
        "type": post.media.media_type,
        "sha256": post.media.sha256,
        "size": post.media.size,
        "simulated": post.media.simulated_content is not None,
        "variants": list(post.media.variants),
    }


def _filing(post: PostRecord, index: int, status: int) -> JSONResponse:
    """A filing's answer: its id and when the platform received it (first time, if repeated)."""
    kind, at = post.notices[index]
    body = {"report_id": f"{post.post_id}-{index + 1}", "kind": kind, "filed_at": utc_iso(at)}
    return JSONResponse(body, status_code=status)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _post_view(
    post: PostRecord, now: float, shown_as: str | None = None
) -> tuple[int, dict[str, Any]]:
    """The answer to a look at the post; ``shown_as``: the state shown instead of its own."""
    state = shown_as or post.state_at(now)
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


def create_app(
    config: SandboxConfig, clock: Clock | None = None, state_path: Path | None = None
) -> Starlette:
    """The sandbox as an ASGI app; with ``state_path`` its state lives in (and is read from) it."""
    state = SandboxStateFile(state_path) if state_path is not None else None
    platform = SandboxPlatform(config, clock or SystemClock(), state)

    def authorised(request: Request) -> bool:
        """Whether the author asks (the only account that posts, reports and withdraws)."""
        return caller(request) == "author"

    def caller(request: Request) -> str | None:
        """Who asks: the author, an observer account, the public (logged out, where looks
        are open to it), or None (refused)."""
        platform.requests += 1
        if config.token is None:
            return "author"
        given = request.headers.get("authorization")
        if given == f"Bearer {config.token}":
            return "author"
        if given is not None and given in {f"Bearer {t}" for t in config.observer_tokens}:
            return "observer"
        return "public" if given is None and config.anonymous_reads else None

    async def create_post(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorised", "missing or wrong bearer token")
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return _error(413, "too_large", f"body larger than {MAX_BODY} bytes")
        try:
            sub = parse_submission(await request.json(), dict(request.headers))
        except ValueError as exc:
            message = str(exc) if isinstance(exc, BadPost) else "body must be JSON"
            return _error(400, "bad_request", message)
        async with platform._lock:
            return _create(sub)

    def _create(sub: Submission) -> Response:
        now, key = platform.clock.now(), sub.idempotency_key
        if key and key in platform.by_key:
            post = platform.posts[platform.by_key[key]]
            post.submissions += 1
            platform.changed(post)
            return JSONResponse({"id": post.post_id, "state": "visible"}, status_code=200)
        post_id = platform.next_post_id()
        record, blocked = decide_post(config, post_id, sub, now)
        if blocked:
            platform.block(
                {"idempotency_key": key, "rule": record.rule, "at": now, "modality": sub.modality}
            )
            return _error(422, "policy_violation", "this content violates community rules")
        platform.posts[post_id] = record
        if key:
            platform.by_key[key] = post_id
        platform.changed(record, new=True)
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
        post, now = platform.posts[post_id], platform.clock.now()
        status, view = _post_view(post, now, platform.author_view(post, now))
        return JSONResponse(view, status_code=status)

    async def get_post(request: Request) -> Response:
        who = caller(request)
        if who is None:
            return _error(401, "unauthorised", "missing or wrong bearer token")
        platform.reads[who] += 1
        post = platform.posts.get(request.path_params["post_id"])
        if post is None:
            return _error(404, "not_found", "no such post")
        now = platform.clock.now()
        shown = platform.author_view(post, now) if who == "author" else None
        status, view = _post_view(post, now, shown)
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
        key = request.headers.get("idempotency-key")
        if key is not None and key in post.notice_keys:  # filed before: the same filing again
            index = post.notice_keys[key]
            post.notice_repeats += 1
            platform.changed(post)
            return _filing(post, index, status=200)
        apply_notice(config, post, kind, platform.clock.now())
        if key is not None:
            post.notice_keys[key] = len(post.notices) - 1
        platform.changed(post)
        return _filing(post, len(post.notices) - 1, status=202)

    async def delete_post(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorised", "missing or wrong bearer token")
        post = platform.posts.get(request.path_params["post_id"])
        if post is None or post.withdrawn_at is not None:
            return _error(404, "not_found", "no such post")
        post.withdrawn_at = platform.clock.now()
        platform.changed(post)
        return Response(status_code=204)

    async def statements(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorised", "missing or wrong bearer token")
        issued = issued_statements(config, platform.posts.values(), platform.clock.now())
        return JSONResponse({"statements": issued})

    async def statements_dump(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorised", "missing or wrong bearer token")
        day = request.query_params.get("date")
        light = request.query_params.get("variant", "full") == "light"
        now = platform.clock.now()
        issued = issued_statements(config, platform.posts.values(), now)
        chosen = [r for r in issued if day is None or str(r["created_at"]).startswith(day)]
        day = day or str(utc_iso(now))[:10]
        name = dump_name(config.statements.platform_name, day, light)
        return Response(
            dump_zip(chosen, config.statements.platform_name, day, light),
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="{name}.zip"'},
        )

    async def health(_: Request) -> Response:
        scale = platform.config.time_scale  # so a client can check its plan compresses alike
        return JSONResponse({"status": "ok", "simulator": True, "time_scale": scale})

    async def truth(_: Request) -> Response:
        return JSONResponse(platform.truth())

    app = Starlette(
        routes=[
            Route("/api/v1/posts", create_post, methods=["POST"]),
            Route("/api/v1/posts", find_post, methods=["GET"]),
            Route("/api/v1/posts/{post_id}", get_post, methods=["GET"]),
            Route("/api/v1/posts/{post_id}", delete_post, methods=["DELETE"]),
            Route("/api/v1/posts/{post_id}/reports", report_post, methods=["POST"]),
            Route("/api/v1/statements", statements, methods=["GET"]),
            Route("/api/v1/statements/dump", statements_dump, methods=["GET"]),
            Route("/_sandbox/health", health, methods=["GET"]),
            Route("/_sandbox/truth", truth, methods=["GET"]),
        ]
    )
    app.state.platform = platform
    return app
