"""Outages don't lose probes: a target that refuses connections for 45 minutes (far longer than a
request's retries, shorter than the dead-target give-up time) while probes are being posted and
notices filed. Every submission and filing that used up its retries is tried again later,
durably; none is lost, none is posted or filed twice, and every clock starts when the platform
received the attempt it accepted — checked probe by probe against the platform's ground truth.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from audit.clock import VirtualClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs, execute_run
from tests.durable_support import virtual_platform
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores

START = VirtualClock().now()
OUTAGE = (START + 300.0, START + 3000.0)  # from 5 min to 50 min into the run


class Outage(httpx.AsyncBaseTransport):
    """The platform, unreachable (connection refused) during the outage."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: VirtualClock) -> None:
        self.inner, self.clock = inner, clock
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if OUTAGE[0] <= self.clock.now() < OUTAGE[1]:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


def _profile(tmp_path: Path) -> Path:
    """The built-in sandbox profile, told its platform does not de-duplicate submissions: a
    submission that failed may be sent again only once a lookup says it never arrived."""
    from audit.adapters.profile_load import resolve_profile

    text = resolve_profile("sandbox").read_text()
    path = tmp_path / "no-dedupe.yaml"
    path.write_text(text.replace("idempotent: true", "idempotent: false", 1))
    return path


@pytest.mark.parametrize("adapter", ["sandbox", "profile without de-duplication"])
def test_an_outage_longer_than_the_retries_loses_no_probe(tmp_path: Path, adapter: str) -> None:
    clock = VirtualClock()
    platform = virtual_platform(clock, seed=5)
    target = Target(name="sandbox", base_url="http://sandbox.test", concurrency=4)
    if adapter != "sandbox":
        target = Target(
            name="sandbox", base_url="http://sandbox.test", profile=str(_profile(tmp_path))
        )
    plan = Plan(
        name="outage",
        packs=["vn-superstition"],
        criteria=["VN-SUP-02", "VN-SUP-03"],  # proactive and notice
        targets=[target],
        seed=9,
        sample=Sample(violating_per_criterion=8, controls_per_criterion=2),
        schedule=Schedule(submission_window="PT1H"),
    )
    store = open_store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    outage = Outage(platform.transport, clock)
    assert asyncio.run(execute_run(store, prepared.run_id, clock, transport=outage)) is None
    truth = platform.truth()
    rows = store.probes(prepared.run_id)
    assert outage.refused > 0
    # the outage did hit submissions and filings that then used up their retries
    observations = store.observations(prepared.run_id)
    failed_steps = [
        o
        for obs in observations.values()
        for o in obs
        if o.action in ("submit", "resubmit", "lookup", "notice")
        and o.result in ("error", "failed")
    ]
    assert failed_steps, "the outage never exhausted a request's retries"
    posts = {p["idempotency_key"]: p for p in truth["posts"]}
    blocked = {b["idempotency_key"] for b in truth["blocked"]}
    for row in rows:
        assert row.outcome is not None and row.outcome != "inconclusive", (row.probe_id, row.note)
        if row.outcome in ("rejected_at_submission", "over_removed") and row.probe_id in blocked:
            continue
        post = posts[row.probe_id]
        assert post["submissions"] == 1 or adapter == "sandbox"  # de-duplicated by key
        assert row.clock_start is not None
        if row.trigger == "proactive":
            started = post["created_at"]
        else:
            assert len(post["notices"]) == 1, "a notice filed twice"
            started = post["notices"][0]["at"]
        assert abs(row.clock_start - started) <= 1e-3, (row.probe_id, row.clock_start, started)
    assert len(truth["posts"]) + len(blocked) == len(rows)  # every probe posted, exactly once
    from audit.evidence.bundle import verify_store

    verified = verify_store(store, prepared.run_id)  # every record follows from the ledger
    assert verified.ok, verified.problems
