"""A notice or order is filed once, even when the tool dies between sending it and recording it.

The process is "killed" (an exception no code may catch) right after the platform received a
filing and before its answer is recorded. The resumed run must not file it again blindly:

* against the reference sandbox, which de-duplicates filings by their Idempotency-Key, the
  filing is sent again under the same key, the platform answers with the first filing, nothing
  is filed twice, and the deadline clock starts at the platform's time of that first filing;
* through a profile (the built-in sandbox profile: its platform has no way to say the filing was
  already made), nothing is sent again and the probe is inconclusive with the reason.

The scorecard counts filings sent again, cut short, and filed twice (0).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from audit.clock import VirtualClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs, execute_run
from audit.store_protocol import RunStore
from audit.workspace import scorecard_for
from tests.durable_support import virtual_platform
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores


class Killed(BaseException):
    """The process dies: not an Exception, so nothing in the tool handles it."""


class DiesAfterFirstFiling(httpx.AsyncBaseTransport):
    """Delivers requests to the platform; the first filing reaches it, then the tool dies."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.killed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not self.killed and request.url.path.endswith("/reports"):
            self.killed = True
            await response.aread()
            raise Killed
        return response


def _plan(profile: str | None) -> Plan:
    target = Target(name="sandbox", base_url="http://sandbox.test", concurrency=1)
    if profile is not None:
        target = Target(name="sandbox", base_url="http://sandbox.test", profile=profile)
    return Plan(
        name="notice-once",
        packs=["vn-superstition"],
        criteria=["VN-SUP-03"],  # the notice criterion
        targets=[target],
        seed=3,
        sample=Sample(violating_per_criterion=3, controls_per_criterion=0),
        schedule=Schedule(submission_window="PT10M"),
    )


def _killed_then_resumed(tmp_path: Path, profile: str | None) -> tuple[RunStore, str, dict]:  # type: ignore[type-arg]
    clock = VirtualClock()
    platform = virtual_platform(clock, seed=11)
    store = open_store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, _plan(profile), None, clock)
    dying = DiesAfterFirstFiling(platform.transport)
    with pytest.raises(Killed):
        asyncio.run(execute_run(store, prepared.run_id, clock, transport=dying))
    store.close()
    store = open_store(tmp_path / "audit.sqlite")  # a new process
    assert (
        asyncio.run(execute_run(store, prepared.run_id, clock, transport=platform.transport))
        is None
    )
    return store, prepared.run_id, platform.truth()


def test_a_filing_cut_short_is_sent_again_under_its_key_and_filed_once(tmp_path: Path) -> None:
    store, run_id, truth = _killed_then_resumed(tmp_path, None)
    posts = {p["idempotency_key"]: p for p in truth["posts"]}
    assert all(len(p["notices"]) == 1 for p in posts.values()), "a notice filed twice"
    assert sum(p["notice_repeats"] for p in posts.values()) == 1  # the one sent again
    for row in store.probes(run_id):
        post = posts[row.probe_id]
        assert row.clock_start is not None
        # the clock starts when the platform received the first filing (its answer in ms)
        assert abs(row.clock_start - post["notices"][0]["at"]) <= 1e-3
        assert row.outcome not in (None, "inconclusive")
    card = scorecard_for(store, run_id)
    assert card.filings.probes == 3 and card.filings.filed == 3
    assert card.filings.sent_again == 1 and card.filings.duplicates == 0
    assert card.filings.not_sent_again == 0


def test_a_filing_cut_short_is_never_sent_again_where_it_cannot_be_deduplicated(
    tmp_path: Path,
) -> None:
    store, run_id, truth = _killed_then_resumed(tmp_path, "sandbox")
    posts = {p["idempotency_key"]: p for p in truth["posts"]}
    assert all(len(p["notices"]) == 1 for p in posts.values()), "a notice filed twice"
    assert sum(p["notice_repeats"] for p in posts.values()) == 0
    rows = store.probes(run_id)
    cut = [r for r in rows if r.outcome == "inconclusive"]
    assert len(cut) == 1 and "not filed again" in (cut[0].note or "")
    assert cut[0].clock_start is None
    assert all(r.outcome not in (None, "inconclusive") for r in rows if r not in cut)
    card = scorecard_for(store, run_id)
    assert card.filings.filed == 2 and card.filings.not_sent_again == 1
    assert card.filings.duplicates == 0
    assert all(p["withdrawn_at"] is not None for p in truth["posts"])  # withdrawn all the same


def test_a_run_with_a_filing_sent_again_verifies(tmp_path: Path) -> None:
    """verify re-derives the clock of a filing sent again (the platform's time of the first)."""
    from audit.evidence.bundle import verify_store

    store, run_id, _ = _killed_then_resumed(tmp_path, None)
    result = verify_store(store, run_id)
    assert result.ok, result.problems
