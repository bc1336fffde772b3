"""Shared fixtures: an in-process audit on the virtual clock, and a real sandbox server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from audit.clock import VirtualClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs, execute_run
from audit.sandbox.app import SandboxPlatform, create_app
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.store import Store


@dataclass
class VirtualAudit:
    store: Store
    run_id: str
    clock: VirtualClock
    platform: SandboxPlatform


def virtual_plan(violating: int = 20, controls: int = 5, seed: int = 7) -> Plan:
    return Plan(
        name="virtual",
        packs=["vn-superstition"],
        targets=[
            Target(name="sandbox", base_url="http://sandbox.test", rate_limit=None, concurrency=32)
        ],
        seed=seed,
        sample=Sample(violating_per_criterion=violating, controls_per_criterion=controls),
        schedule=Schedule(submission_window="PT1H"),
    )


def run_virtual_audit(tmp_path: Path, plan: Plan, sandbox_seed: int | None = None) -> VirtualAudit:
    clock = VirtualClock()
    config = load_sandbox_config(default_config_path())
    if sandbox_seed is not None:
        config = config.model_copy(update={"seed": sandbox_seed})
    app = create_app(config, clock)
    store = Store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=httpx.ASGITransport(app)))
    return VirtualAudit(store, prepared.run_id, clock, app.state.platform)


@pytest.fixture
def virtual_audit(tmp_path: Path) -> Iterator[VirtualAudit]:
    audit = run_virtual_audit(tmp_path, virtual_plan())
    yield audit
    audit.store.close()
