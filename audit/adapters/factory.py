"""Building the adapter a target names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from audit.adapters.base import Adapter, EvidenceLedgerSink
from audit.adapters.sandbox import SandboxAdapter
from audit.clock import Clock
from audit.http import PlatformClient
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
) -> Adapter:
    """The target's adapter; a profile target reads with ``profile`` (the run's recorded one)
    when given, else with its profile file."""
    if target.adapter == "profile":
        from audit.adapters.profile import build_profile_adapter

        return build_profile_adapter(
            target, clock, ledger, seed=seed, transport=transport, profile=profile
        )
    token = target.token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = PlatformClient(
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
    )
    return SandboxAdapter(client)
