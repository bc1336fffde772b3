"""The scorecard's figures agree with the reference sandbox's ground truth.

Two ways: in-process on the virtual clock (exact, fast), and over real HTTP against the sandbox
served by uvicorn on loopback with a compressed clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.clock import SystemClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs, execute_run
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.sandbox.server import SandboxServer
from audit.store import ProbeRow
from audit.store_protocol import RunStore
from audit.workspace import scorecard_for
from tests.conftest import run_virtual_audit, virtual_plan
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores


def expected_outcome(row: ProbeRow, truth: dict[str, Any], blocked: set[str]) -> set[str]:
    """What the platform's ground truth says the outcome must be (a set where a poll margin
    allows two readings)."""
    control = row.expectation == "control"
    if row.probe_id in blocked:
        return {"over_removed" if control else "rejected_at_submission"}
    post = truth[row.probe_id]
    removal = post["removal_at"]
    assert row.deadline_at is not None and row.clock_start is not None and row.offsets is not None
    end = row.clock_start + row.offsets[-1]
    if (
        removal is None
        or removal > end + 1e-9
        or (post["withdrawn_at"] is not None and removal >= post["withdrawn_at"])
    ):
        return {"kept" if control else "survived"}
    if control:
        return {"over_removed"}
    if removal <= row.deadline_at:
        return (
            {"removed_in_time", "inconclusive"}
            if removal > row.deadline_at - 1.0
            else {"removed_in_time"}
        )
    return {"removed_late"}


def check_against_truth(store: RunStore, run_id: str, truth: dict[str, Any]) -> Counter[str]:
    posts = {p["idempotency_key"]: p for p in truth["posts"]}
    blocked = {b["idempotency_key"] for b in truth["blocked"]}
    card = scorecard_for(store, run_id)
    outcomes = {p.probe_id: p.outcome for p in card.probes}
    tally: Counter[str] = Counter()
    for row in store.probes(run_id):
        allowed = expected_outcome(row, posts, blocked)
        assert outcomes[row.probe_id] in allowed, (row.probe_id, outcomes[row.probe_id], allowed)
        tally[outcomes[row.probe_id]] += 1
    # every probe posted exactly once, and none left up
    assert all(p["submissions"] == 1 for p in truth["posts"])
    assert all(p["state"] != "visible" for p in truth["posts"])
    # per-criterion figures in the card equal the per-probe tally
    for c in card.criteria:
        rows = [p for p in card.probes if p.criterion_id == c.id and p.expectation == "violating"]
        in_time = sum(p.outcome in ("removed_in_time", "rejected_at_submission") for p in rows)
        unknown = sum(p.outcome in ("inconclusive", "pending") for p in rows)
        # removed in time out of every planned probe (an unknown is not a removal); the
        # measured ones apart
        assert (c.removal_in_deadline.successes, c.removal_in_deadline.n) == (in_time, len(rows))
        assert (c.planned, c.measured, c.inconclusive) == (len(rows), len(rows) - unknown, unknown)
    return tally


def test_virtual_clock_audit_agrees_with_ground_truth(tmp_path: Path) -> None:
    audit = run_virtual_audit(tmp_path, virtual_plan(violating=40, controls=10))
    tally = check_against_truth(audit.store, audit.run_id, audit.platform.truth())
    # the default sandbox is tuned so that every kind of outcome occurs
    assert tally["removed_in_time"] > 0 and tally["survived"] > 0 and tally["kept"] > 0


def test_virtual_clock_audit_is_deterministic(tmp_path: Path) -> None:
    first = run_virtual_audit(tmp_path / "a", virtual_plan())
    second = run_virtual_audit(tmp_path / "b", virtual_plan())
    card_a, card_b = (scorecard_for(a.store, a.run_id) for a in (first, second))
    assert [c.model_dump() for c in card_a.criteria] == [c.model_dump() for c in card_b.criteria]


@pytest.mark.slow
def test_real_http_audit_agrees_with_ground_truth(tmp_path: Path) -> None:
    scale = 7200.0  # a 24 h deadline lasts 12 s
    config = load_sandbox_config(default_config_path()).model_copy(update={"time_scale": scale})
    with SandboxServer(config, SystemClock()) as server:
        plan = Plan(
            name="http",
            packs=["vn-superstition"],
            targets=[Target(name="sb", base_url=server.base_url, rate_limit=None, concurrency=16)],
            seed=3,
            sample=Sample(violating_per_criterion=12, controls_per_criterion=4),
            schedule=Schedule(submission_window="PT1H"),
            time_scale=scale,
        )
        store = open_store(tmp_path / "audit.sqlite")
        (prepared,) = create_runs(store, plan, None, SystemClock())
        asyncio.run(execute_run(store, prepared.run_id, SystemClock()))
        truth = httpx.get(f"{server.base_url}/_sandbox/truth").json()
    tally = check_against_truth(store, prepared.run_id, truth)
    assert sum(tally.values()) == prepared.probes
