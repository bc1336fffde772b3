"""The built-in `sandbox` profile speaks the reference sandbox's API exactly as the hand-written
sandbox adapter does: the same plan, run both ways on the virtual clock, gives the same record
(the scorecard is a pure function of that record)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from audit.clock import VirtualClock
from audit.plan import Plan, Target
from audit.runner import create_runs, execute_run
from audit.sandbox.app import SandboxPlatform, create_app
from audit.sandbox.moderation import SandboxConfig, default_config_path, load_sandbox_config
from audit.store import Store
from tests.conftest import virtual_plan


def blocking_config() -> SandboxConfig:
    """The default sandbox, with paid rituals blocked at upload when detected."""
    config = load_sandbox_config(default_config_path())
    rules = [
        r.model_copy(update={"action": "block"}) if r.id == "paid-ritual" else r
        for r in config.rules
    ]
    return config.model_copy(update={"rules": rules})


def run(tmp_path: Path, plan: Plan) -> tuple[Store, str, SandboxPlatform]:
    clock = VirtualClock()
    app = create_app(blocking_config(), clock)
    store = Store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=httpx.ASGITransport(app)))
    return store, prepared.run_id, app.state.platform


def record(store: Store, run_id: str) -> dict[str, tuple[object, ...]]:
    """Per probe: outcome, post id, withdrawal, and every observation with its times."""
    observations = store.observations(run_id)
    result = {}
    for row in store.probes(run_id):
        looks = tuple(
            (o.action, o.result, round(o.started_at, 6), round(o.ended_at, 6))
            for o in observations.get(row.probe_id, [])
        )
        result[row.probe_id] = (row.outcome, row.post_id, row.withdrawn_at, looks)
    return result


def test_sandbox_profile_matches_the_sandbox_adapter(tmp_path: Path) -> None:
    plan = virtual_plan(violating=20, controls=5)
    (reference,) = plan.targets
    profiled = Target(
        name=reference.name,  # same name: same run id, same probe ids, same drawn fates
        base_url=reference.base_url,
        profile="sandbox",
        rate_limit=None,
        concurrency=reference.concurrency,
    )
    assert profiled.adapter == "profile"
    store_a, run_a, platform_a = run(tmp_path / "adapter", plan)
    store_p, run_p, platform_p = run(
        tmp_path / "profile", plan.model_copy(update={"targets": [profiled]})
    )
    assert run_a == run_p
    expected = record(store_a, run_a)
    assert record(store_p, run_p) == expected
    outcomes = {outcome for outcome, *_ in expected.values()}
    assert {"removed_in_time", "rejected_at_submission", "kept"} <= outcomes
    assert store_p.run(run_p).target["adapter"] == "profile"
    assert platform_p.requests == platform_a.requests  # the platform saw the same traffic
