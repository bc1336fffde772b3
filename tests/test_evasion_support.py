"""Helpers for the evasion, demo and media tests (this module holds no tests of its own)."""

from __future__ import annotations

import asyncio

import httpx

from audit.clock import VirtualClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs, execute_run
from audit.sandbox.app import SandboxPlatform, create_app
from audit.sandbox.moderation import SandboxConfig, default_config_path, load_sandbox_config
from audit.store import Store


def sandbox_plan(sample: Sample, seed: int = 7, criteria: list[str] | None = None) -> Plan:
    return Plan(
        name="forms",
        packs=["vn-superstition"],
        criteria=criteria,
        targets=[
            Target(name="sandbox", base_url="http://sandbox.test", rate_limit=None, concurrency=32)
        ],
        seed=seed,
        sample=sample,
        schedule=Schedule(submission_window="PT1H"),
    )


def sandbox_config() -> SandboxConfig:
    return load_sandbox_config(default_config_path())


def run_virtual(
    store: Store, plan: Plan, clock: VirtualClock, platform_config: SandboxConfig | None = None
) -> tuple[str, SandboxPlatform]:
    """One run of ``plan`` against an in-process sandbox on the virtual clock."""
    app = create_app(platform_config or sandbox_config(), clock)
    (prepared,) = create_runs(store, plan, None, clock)
    transport = httpx.ASGITransport(app)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport))
    return prepared.run_id, app.state.platform
