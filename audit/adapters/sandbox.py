"""Adapter for the reference sandbox's API (see :mod:`audit.sandbox.app`)."""

from __future__ import annotations

from audit.adapters.base import (
    NoticeResult,
    PostState,
    StatusResult,
    SubmitKind,
    SubmitResult,
    WithdrawResult,
)
from audit.http import Exchange, PlatformClient
from audit.probe import Probe

__all__ = ["SandboxAdapter"]


def _submit_result(exchange: Exchange) -> SubmitResult:
    if not exchange.ok:
        return SubmitResult(SubmitKind.ERROR, detail=exchange.describe())
    body = exchange.json()
    if exchange.status in (200, 201) and isinstance(body, dict) and isinstance(body.get("id"), str):
        return SubmitResult(SubmitKind.ACCEPTED, post_id=body["id"])
    if exchange.status == 422 and isinstance(body, dict) and body.get("error") == "policy_violation":
        return SubmitResult(SubmitKind.REJECTED, detail=str(body.get("message", "")))
    return SubmitResult(SubmitKind.ERROR, detail=exchange.describe())


class SandboxAdapter:
    name = "sandbox"
    supports_idempotency = True

    def __init__(self, client: PlatformClient) -> None:
        self._client = client

    async def submit(self, probe: Probe, idempotency_key: str) -> SubmitResult:
        body: dict[str, str] = {"text": probe.text, "modality": probe.modality.value}
        exchange = await self._client.request(
            "POST",
            "/api/v1/posts",
            action="submit",
            probe_id=probe.probe_id,
            json_body=body,
            headers={"Idempotency-Key": idempotency_key},
        )
        return _submit_result(exchange)

    async def lookup(self, probe: Probe, idempotency_key: str) -> SubmitResult | None:
        exchange = await self._client.request(
            "GET",
            f"/api/v1/posts?idempotency_key={idempotency_key}",
            action="lookup",
            probe_id=probe.probe_id,
        )
        if exchange.status == 404 and exchange.error is None:
            return SubmitResult(SubmitKind.ERROR, detail="not found: never reached the platform")
        if exchange.status == 410:
            body = exchange.json()
            if isinstance(body, dict) and isinstance(body.get("id"), str):
                return SubmitResult(SubmitKind.ACCEPTED, post_id=body["id"])
        return _submit_result(exchange)

    async def status(self, post_id: str) -> StatusResult:
        exchange = await self._client.request("GET", f"/api/v1/posts/{post_id}", action="status")
        if not exchange.ok:
            return StatusResult(PostState.ERROR, exchange.describe())
        body = exchange.json()
        state = body.get("state") if isinstance(body, dict) else None
        if exchange.status == 200 and state == "visible":
            return StatusResult(PostState.VISIBLE)
        if exchange.status == 410 and state == "removed":
            return StatusResult(PostState.REMOVED, str(body.get("reason", "")))
        if exchange.status == 404:
            return StatusResult(PostState.GONE, "not found")
        return StatusResult(PostState.UNKNOWN, exchange.describe())

    async def notice(self, post_id: str, probe: Probe, reason: str, kind: str) -> NoticeResult:
        exchange = await self._client.request(
            "POST",
            f"/api/v1/posts/{post_id}/reports",
            action=kind,
            probe_id=probe.probe_id,
            json_body={"kind": kind, "reason": reason},
        )
        body = exchange.json()
        if exchange.ok and exchange.status in (200, 201, 202) and isinstance(body, dict):
            return NoticeResult(True, str(body.get("report_id", "")))
        return NoticeResult(False, detail=exchange.describe())

    async def withdraw(self, post_id: str) -> WithdrawResult:
        exchange = await self._client.request(
            "DELETE", f"/api/v1/posts/{post_id}", action="withdraw"
        )
        if exchange.ok and exchange.status in (200, 204, 404, 410):
            return WithdrawResult(True, f"HTTP {exchange.status}")
        return WithdrawResult(False, exchange.describe())

    async def aclose(self) -> None:
        await self._client.aclose()
