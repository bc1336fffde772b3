"""Building the adapter a target names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from audit.adapters.base import Adapter, EvidenceLedgerSink
from audit.adapters.sandbox import SandboxAdapter
from audit.clock import Clock
from audit.http import PlatformClient, SendGate
from audit.plan import Target

if TYPE_CHECKING:
    from audit.adapters.profile_model import Profile

__all__ = ["build_adapter"]


def build_adapter(
    target: Target,
    clock: Clock,
    ledger: EvidenceLedgerSink,
    *,
    seed: int,
    transport: httpx.AsyncBaseTransport | None = None,
    profile: Profile | None = None,
    gate: SendGate | None = None,
) -> Adapter:
    """The target's adapter; a profile target reads with ``profile`` (the run's recorded one)
    when given, else with its profile file. ``gate``: limits shared with other processes."""
    if target.adapter == "profile":
        from audit.adapters.profile import build_profile_adapter

        return build_profile_adapter(
            target, clock, ledger, seed=seed, transport=transport, profile=profile, gate=gate
        )
    client = _sandbox_client(target, target.token(), clock, ledger, seed, transport, gate)
    if target.observer is None:
        return SandboxAdapter(client)
    token = target.observer_token()
    if token is not None:
        ledger.redactor.add(token)
    # the observer's credentials have their own rate limit, as in a single process
    observer_gate = gate.scoped("observer") if gate is not None else None
    observer = _sandbox_client(target, token, clock, ledger, seed, transport, observer_gate)
    return SandboxAdapter(client, observer, author_view=target.observer.author_view)


def _sandbox_client(
    target: Target,
    token: str | None,
    clock: Clock,
    ledger: EvidenceLedgerSink,
    seed: int,
    transport: httpx.AsyncBaseTransport | None,
    gate: SendGate | None = None,
) -> PlatformClient:
    """A client of the reference sandbox with these credentials (None: logged out)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return PlatformClient(
        target.base_url,
        clock,
        ledger.append,
        headers=headers,
        rate_limit=target.rate_limit,
        timeout=target.timeout,
        verify_tls=target.verify_tls,
        transport=transport,
        seed=seed,
        actions=target.action_limits(),
        gate=gate,
    )
