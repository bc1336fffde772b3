"""Small audits on the virtual clock for the evidence, bundle and hardening tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx

from audit.clock import VirtualClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs, execute_run
from audit.sandbox.app import SandboxPlatform, create_app
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.store_protocol import RunStore
from tests.store_backends import open_store


@dataclass
class SmallAudit:
    root: Path
    store: RunStore
    run_id: str
    clock: VirtualClock
    platform: SandboxPlatform | None = None


def tiny_plan(
    violating: int = 2,
    controls: int = 1,
    *,
    criteria: list[str] | None = None,
    token_env: str | None = None,
    seed: int = 7,
    base_url: str = "http://sandbox.test",
) -> Plan:
    return Plan(
        name="evidence",
        packs=["vn-superstition"],
        criteria=criteria,
        targets=[
            Target(
                name="sandbox",
                base_url=base_url,
                rate_limit=None,
                concurrency=8,
                token_env=token_env,
            )
        ],
        seed=seed,
        sample=Sample(violating_per_criterion=violating, controls_per_criterion=controls),
        schedule=Schedule(submission_window="PT1H"),
    )


def start_run(root: Path, plan: Plan, clock: VirtualClock) -> tuple[RunStore, str]:
    store = open_store(root / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    return store, prepared.run_id


def run_against(
    root: Path, plan: Plan, transport: httpx.AsyncBaseTransport, clock: VirtualClock
) -> SmallAudit:
    store, run_id = start_run(root, plan, clock)
    asyncio.run(execute_run(store, run_id, clock, transport=transport))
    return SmallAudit(root, store, run_id, clock)


def sandbox_audit(root: Path, plan: Plan | None = None, token: str | None = None) -> SmallAudit:
    """A run of ``plan`` against the reference sandbox, in process, on the virtual clock."""
    clock = VirtualClock()
    config = load_sandbox_config(default_config_path(), token=token)
    app = create_app(config, clock)
    audit = run_against(root, plan or tiny_plan(), httpx.ASGITransport(app), clock)
    audit.platform = app.state.platform
    return audit
