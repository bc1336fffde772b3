"""Adapter for the reference sandbox's API (see :mod:`audit.sandbox.app`).

Text probes are posted as text. Image, speech and video probes are posted as media (base64 in
the JSON body, with its SHA-256), the bytes produced at submission from the probe's recipe or
corpus file, with an empty caption: the content is in the media only.

Simulator affordance: the reference sandbox cannot read pixels or audio, so for generated media
this adapter tells it the text the media was rendered from, in the
``X-Sandbox-Simulated-Content`` header, and the media's variants (an image's or a recording's
style such as ``image_low_contrast``, a video's variant) in ``X-Sandbox-Simulated-Variants``, so
the simulator knows where a video carries its text and can be configured to miss a style. It
does so only after the server has identified itself as the simulator (``GET /_sandbox/health``
answering ``"simulator": true``). Adapters for real platforms never send such headers: a real
platform must find the text in the media itself.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses

from audit.adapters.base import (
    OBSERVE_ACTION,
    NoticeResult,
    PostState,
    StatusResult,
    SubmitKind,
    SubmitResult,
    View,
    WithdrawResult,
    both_views,
    made_media,
    usable_post_id,
)
from audit.adapters.timestamps import platform_timestamp
from audit.http import Exchange, PlatformClient
from audit.media import PLAIN_STYLES
from audit.media_file import MediaFile, media_record
from audit.packs import Modality
from audit.probe import Probe

__all__ = [
    "SIMULATION_HEADER",
    "VARIANTS_HEADER",
    "SandboxAdapter",
    "read_lookup",
    "read_notice",
    "read_status",
    "read_submit",
    "read_withdraw",
    "reported_time_scale",
]

SIMULATION_HEADER = "X-Sandbox-Simulated-Content"
VARIANTS_HEADER = "X-Sandbox-Simulated-Variants"  # the media's variants, comma-separated


def _accepted(exchange: Exchange, body: dict[str, object], sent: bool = True) -> SubmitResult:
    """Accepted: sent when the answered attempt was (unknown to a lookup), created when the
    platform says."""
    return SubmitResult(
        SubmitKind.ACCEPTED,
        post_id=str(body["id"]),
        sent_at=exchange.started_at if sent else None,
        platform_time=platform_timestamp(body.get("created_at")),
    )


def read_submit(exchange: Exchange) -> SubmitResult:
    """What a submission's answer says (live, and again from its ledger entry by verify)."""
    if not exchange.ok:
        return SubmitResult(SubmitKind.ERROR, detail=exchange.describe())
    body = exchange.json()
    if exchange.status in (200, 201) and isinstance(body, dict) and usable_post_id(body.get("id")):
        return _accepted(exchange, body)
    if (
        exchange.status == 422
        and isinstance(body, dict)
        and body.get("error") == "policy_violation"
    ):
        return SubmitResult(SubmitKind.REJECTED, detail=str(body.get("message", "")))
    return SubmitResult(SubmitKind.ERROR, detail=exchange.describe())


def _platform_not_found(body: object) -> bool:
    """The sandbox's own 404 answer; any other 404 (a proxy's HTML page) proves nothing."""
    return isinstance(body, dict) and body.get("error") == "not_found"


# readers: pure functions of one answer, the same for the live adapter and for verify ---------
def read_lookup(exchange: Exchange) -> SubmitResult:
    """What a lookup by idempotency key says; its own send time is never the post's."""
    if exchange.status == 404 and exchange.error is None and _platform_not_found(exchange.json()):
        return SubmitResult(SubmitKind.ERROR, detail="not found: never reached the platform")
    if exchange.status == 410:
        body = exchange.json()
        if isinstance(body, dict) and usable_post_id(body.get("id")):
            return _accepted(exchange, body, sent=False)
    return dataclasses.replace(read_submit(exchange), sent_at=None)


def read_status(exchange: Exchange) -> StatusResult:
    """What a look at a post says: visible, removed, gone, or unknown/error."""
    if not exchange.ok:
        return StatusResult(PostState.ERROR, exchange.describe())
    body = exchange.json()
    state = body.get("state") if isinstance(body, dict) else None
    if exchange.status == 200 and state == "visible":
        return StatusResult(PostState.VISIBLE)
    if exchange.status == 410 and state == "removed":
        return StatusResult(PostState.REMOVED, str(body.get("reason", "")))
    if exchange.status == 404 and _platform_not_found(body):
        return StatusResult(PostState.GONE, "not found")
    return StatusResult(PostState.UNKNOWN, exchange.describe())


def read_notice(exchange: Exchange) -> NoticeResult:
    """Whether a notice or order was filed; the deadline runs from this attempt's send time."""
    body = exchange.json()
    if exchange.ok and exchange.status in (200, 201, 202) and isinstance(body, dict):
        reference = str(body.get("report_id", ""))
        return NoticeResult(
            True,
            reference,
            f"HTTP {exchange.status}",
            sent_at=exchange.started_at,
            platform_time=platform_timestamp(body.get("filed_at")),
        )
    return NoticeResult(False, detail=exchange.describe())


def read_withdraw(exchange: Exchange) -> WithdrawResult:
    """Whether the post is down after a withdrawal (deleted, or already gone)."""
    gone = exchange.status == 404 and _platform_not_found(exchange.json())
    if exchange.ok and (exchange.status in (200, 204, 410) or gone):
        return WithdrawResult(True, f"HTTP {exchange.status}")
    return WithdrawResult(False, exchange.describe())


def reported_time_scale(base_url: str, verify_tls: bool, timeout: float) -> float | None:
    """The time scale the reference sandbox says it runs at (``GET /_sandbox/health``), or None
    when it does not answer or does not say (an older sandbox, another server)."""
    import httpx

    try:
        answer = httpx.get(
            f"{base_url.rstrip('/')}/_sandbox/health", timeout=timeout, verify=verify_tls
        )
        body = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    scale = body.get("time_scale") if isinstance(body, dict) else None
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
        return None
    return float(scale)


class SandboxAdapter:
    name = "sandbox"
    supports_idempotency = True
    withdraw_removed = True  # a removed post stays addressable by its author
    notice_idempotent = True  # a filing's Idempotency-Key: the same key files nothing twice

    def __init__(
        self,
        client: PlatformClient,
        observer: PlatformClient | None = None,
        *,
        author_view: bool = True,
    ) -> None:
        """``observer``: a client with the observer's credentials (or none: logged out), for
        status looks as the public sees them; with ``author_view`` each look is made as the
        author too."""
        self._client = client
        self._observer = observer
        self._author_view = author_view
        self._simulator: bool | None = None

    async def _is_simulator(self) -> bool:
        """Whether the server says it is the reference simulator (asked once)."""
        if self._simulator is None:
            exchange = await self._client.request("GET", "/_sandbox/health", action="identify")
            body = exchange.json()
            self._simulator = (
                exchange.ok
                and exchange.status == 200
                and isinstance(body, dict)
                and body.get("simulator") is True
            )
        return self._simulator

    async def _media_post(
        self, probe: Probe, headers: dict[str, str]
    ) -> tuple[dict[str, object], MediaFile] | SubmitResult:
        media = await made_media(probe)
        if isinstance(media, SubmitResult):
            return media
        if probe.corpus_file is None and await self._is_simulator():
            headers[SIMULATION_HEADER] = base64.b64encode(probe.text.encode()).decode("ascii")
            plain = PLAIN_STYLES.get(probe.modality.value)
            variants = probe.media_variants or ((plain,) if plain else ())
            if variants:
                headers[VARIANTS_HEADER] = ",".join(variants)
        body: dict[str, object] = {
            "text": "",
            "modality": probe.modality.value,
            "media": {
                "type": media.media_type,
                "sha256": media.sha256,
                "data": base64.b64encode(media.data).decode("ascii"),
            },
        }
        return body, media

    async def submit(self, probe: Probe, idempotency_key: str) -> SubmitResult:
        headers = {"Idempotency-Key": idempotency_key}
        body: dict[str, object]
        media: MediaFile | None = None
        if probe.modality is Modality.TEXT:
            body = {"text": probe.text, "modality": probe.modality.value}
        else:
            made = await self._media_post(probe, headers)
            if isinstance(made, SubmitResult):
                return made
            body, media = made
        exchange = await self._client.request(
            "POST",
            "/api/v1/posts",
            action="submit",
            probe_id=probe.probe_id,
            json_body=body,
            headers=headers,
            expect_json=self.supports_idempotency,
            media=None if media is None else media_record(media),
        )
        return read_submit(exchange)

    async def lookup(self, probe: Probe, idempotency_key: str) -> SubmitResult | None:
        exchange = await self._client.request(
            "GET",
            f"/api/v1/posts?idempotency_key={idempotency_key}",
            action="lookup",
            probe_id=probe.probe_id,
            expect_json=True,
        )
        return read_lookup(exchange)

    async def _look(
        self, client: PlatformClient, action: str, post_id: str, probe_id: str
    ) -> StatusResult:
        exchange = await client.request(
            "GET",
            f"/api/v1/posts/{post_id}",
            action=action,
            probe_id=probe_id,
            expect_json=True,
        )
        return read_status(exchange)

    async def status(self, post_id: str, probe_id: str) -> StatusResult:
        if self._observer is None:
            return await self._look(self._client, "status", post_id, probe_id)
        observed = self._look(self._observer, OBSERVE_ACTION, post_id, probe_id)
        if not self._author_view:
            return dataclasses.replace(await observed, view=View.OBSERVER)
        # both views at once, so that a removal between two requests seldom parts them
        seen, author = await asyncio.gather(
            observed, self._look(self._client, "status", post_id, probe_id)
        )
        return both_views(dataclasses.replace(seen, view=View.OBSERVER), author)

    async def notice(self, post_id: str, probe: Probe, reason: str, kind: str) -> NoticeResult:
        exchange = await self._client.request(
            "POST",
            f"/api/v1/posts/{post_id}/reports",
            action=kind,
            probe_id=probe.probe_id,
            json_body={"kind": kind, "reason": reason},
            headers={"Idempotency-Key": f"{probe.probe_id}-{kind}"},
            expect_json=True,
        )
        return read_notice(exchange)

    async def withdraw(self, post_id: str, probe_id: str) -> WithdrawResult:
        exchange = await self._client.request(
            "DELETE", f"/api/v1/posts/{post_id}", action="withdraw", probe_id=probe_id
        )
        return read_withdraw(exchange)

    async def preflight(self) -> str | None:
        """One authorised request before any probe (a lookup of a key no probe has), with
        the request's ordinary retries. What it catches is what never heals by waiting: no
        answer at all (a wrong host or port, nothing listening) and a refusal of the token.
        Any other answer, even an odd one, is left to the run's watch: a platform that
        answers garbage now and then must not lose its audit to one request."""
        exchange = await self._client.request(
            "GET",
            "/api/v1/posts?idempotency_key=preflight",
            action="preflight",
            expect_json=True,
        )
        if exchange.status is None or exchange.status in (401, 403, 407):
            return exchange.describe()
        if self._observer is not None:  # the observer may look: a post no probe has
            seen = await self._observer.request(
                "GET", "/api/v1/posts/preflight", action="preflight", expect_json=True
            )
            if seen.status is None or seen.status in (401, 403, 407):
                return f"the observer cannot look: {seen.describe()}"
        return None

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._observer is not None:
            await self._observer.aclose()
