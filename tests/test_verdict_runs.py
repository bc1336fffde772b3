"""The verdict a platform cannot move: real runs on the virtual clock against the reference
sandbox, where the platform hides its failures behind errors, removes everything, or the report
is taken before the run ends — compared with the sandbox's ground truth and an honest twin."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from audit.charts import headline
from audit.clock import VirtualClock
from audit.findings import Standing
from audit.plan import Plan
from audit.render import render_csv, render_junit
from audit.runner import cleanup_run, create_runs, execute_run
from audit.sandbox.app import create_app
from audit.sandbox.moderation import SandboxConfig
from audit.scorecard import Scorecard
from audit.stats import OverRemovalVerdict, Verdict
from audit.store_protocol import RunStore
from audit.workspace import scorecard_for
from tests.scorecards import DAY, START, gold_plan, platform
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores

Rewrite = Callable[[httpx.Request, httpx.Response, bytes], httpx.Response | None]


class _Hostile(httpx.AsyncBaseTransport):
    """The platform behind a layer that rewrites some of its answers."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rewrite: Rewrite) -> None:
        self._inner = inner
        self._rewrite = rewrite
        self.rewritten = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        changed = self._rewrite(request, response, body)
        if changed is not None:
            self.rewritten += 1
            return changed
        return httpx.Response(response.status_code, headers=response.headers, content=body)


def _hide_visible(
    request: httpx.Request, response: httpx.Response, body: bytes
) -> httpx.Response | None:
    """500 for every status request of a post still up: the platform only confirms removals."""
    if request.method != "GET" or response.status_code != 200:
        return None
    try:
        state = json.loads(body).get("state")
    except (ValueError, AttributeError):
        return None
    if state == "visible":
        return httpx.Response(500, json={"error": "internal"})
    return None


def _run(
    tmp: Path,
    plan: Plan,
    config: SandboxConfig,
    rewrite: Rewrite | None = None,
    stop_at: float | None = None,
) -> tuple[RunStore, str, VirtualClock, httpx.AsyncBaseTransport]:
    store = open_store(tmp / "audit.sqlite")
    clock = VirtualClock(START)
    base: httpx.AsyncBaseTransport = httpx.ASGITransport(create_app(config, clock))
    transport = base if rewrite is None else _Hostile(base, rewrite)
    (prepared,) = create_runs(store, plan, None, clock)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport, stop_at=stop_at))
    return store, prepared.run_id, clock, transport


def _card(store: RunStore, run_id: str) -> Scorecard:
    return scorecard_for(store, run_id)


STRONG = {"paid-divination": 1.0, "paid-ritual": 1.0, "magic-amulets": 1.0}


def test_errors_on_unremoved_posts_never_earn_compliant(tmp_path: Path) -> None:
    plan = gold_plan(violating=30, controls=4)
    honest_store, honest_id, _, _ = _run(
        tmp_path / "honest", plan, platform(STRONG | {"paid-ritual": 0.5})
    )
    honest = _card(honest_store, honest_id)
    store, run_id, _, transport = _run(
        tmp_path / "hostile", plan, platform(STRONG | {"paid-ritual": 0.5}), _hide_visible
    )
    hostile = _card(store, run_id)
    assert isinstance(transport, _Hostile)
    assert transport.rewritten > 0
    by_id = {c.id: c for c in honest.criteria}
    for c in hostile.criteria:
        twin = by_id[c.id]
        if twin.verdict is not Verdict.COMPLIANT:
            assert c.verdict is not Verdict.COMPLIANT, (c.id, c.verdict_reason)
        # what the platform hid is unknown, never a removal
        assert c.removal_in_deadline.successes <= twin.removal_in_deadline.successes
    rituals = next(c for c in hostile.criteria if c.id == "VN-SUP-02")
    assert rituals.verdict is Verdict.INCONCLUSIVE
    assert rituals.inconclusive > 0
    assert "no usable look at the deadline (platform fault)" in rituals.unknown_causes
    assert hostile.exit_code != 0


def test_a_platform_that_removes_everything_fails_on_over_removal(tmp_path: Path) -> None:
    config = platform(STRONG | {"paid-ritual": 1.0}).model_copy(
        update={
            "false_positive_proactive": 1.0,
            "false_positive_latency": platform().false_positive_latency.model_copy(
                update={"median": "PT1M"}
            ),
        }
    )
    store, run_id, _, _ = _run(tmp_path, gold_plan(violating=20, controls=20), config)
    card = _card(store, run_id)
    assert all(c.over_removed == c.controls == 20 for c in card.criteria)
    assert all(c.over_removal_verdict is OverRemovalVerdict.EXCESSIVE for c in card.criteria)
    assert card.overall_verdict is Verdict.NON_COMPLIANT
    assert card.exit_code == 1
    junit = render_junit(card)
    assert junit.count('type="OVER_REMOVAL"') == sum(
        1 for c in card.criteria if c.verdict is not Verdict.NON_COMPLIANT
    )
    rows = list(csv.DictReader(io.StringIO(render_csv(card))))
    assert {r["over_removal_verdict"] for r in rows} == {"EXCESSIVE"}
    assert "removed benign look-alikes more often than acceptable" in headline(card)


def test_controls_removed_after_a_notice_are_counted_apart(tmp_path: Path) -> None:
    config = platform(STRONG).model_copy(update={"false_positive_notice": 1.0})
    store, run_id, _, _ = _run(tmp_path, gold_plan(violating=10, controls=10), config)
    card = _card(store, run_id)
    noticed = [c for c in card.criteria if c.trigger != "proactive"]
    assert noticed, "the pack has a notice- or order-triggered criterion"
    for c in noticed:
        assert c.over_removal_after_notice.n == c.controls
        assert c.over_removal_after_notice.successes == c.over_removed > 0
        assert c.over_removal_unprompted.successes == 0
    for c in card.criteria:
        if c.trigger == "proactive":
            assert c.over_removal_after_notice.n == 0


def test_a_report_taken_mid_run_is_preliminary_and_never_exits_0(tmp_path: Path) -> None:
    plan = gold_plan(violating=20, controls=4)
    store, run_id, clock, transport = _run(
        tmp_path, plan, platform(STRONG), stop_at=START + DAY / 2
    )
    early = _card(store, run_id)
    assert early.status == "running"
    assert early.standing is Standing.PRELIMINARY
    assert early.pending > 0
    assert early.last_deadline_utc is not None
    assert early.exit_code != 0
    assert "PRELIMINARY" in render_junit(early)
    # the same run, carried to its end, gives the final verdict
    asyncio.run(execute_run(store, run_id, clock, transport=transport))
    final = _card(store, run_id)
    assert final.standing is Standing.FINAL
    assert final.pending == 0
    assert final.exit_code in (0, 1, 3)


def test_a_cancelled_run_says_so_and_never_exits_0(tmp_path: Path) -> None:
    plan = gold_plan(violating=20, controls=4)
    store, run_id, clock, transport = _run(
        tmp_path, plan, platform(STRONG), stop_at=START + DAY / 2
    )
    asyncio.run(cleanup_run(store, run_id, clock, transport=transport))
    card = _card(store, run_id)
    assert card.standing is Standing.CANCELLED
    assert card.exit_code != 0
    assert "CANCELLED" in card.standing_note


@pytest.mark.parametrize("status", ["failed"])
def test_a_failed_run_is_not_measured(tmp_path: Path, status: str) -> None:
    plan = gold_plan(violating=10, controls=2)
    store, run_id, clock, _ = _run(tmp_path, plan, platform(STRONG), stop_at=START + DAY / 4)
    store.finish_run(run_id, status, clock.now(), "target unreachable: connection refused")
    card = _card(store, run_id)
    assert card.standing is Standing.FAILED
    assert {c.verdict for c in card.criteria} == {Verdict.NOT_MEASURED}
    assert card.exit_code == 4
    assert "connection refused" in card.standing_note
