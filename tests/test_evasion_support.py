"""Helpers for the evasion, demo and media tests (this module holds no tests of its own)."""

from __future__ import annotations

import asyncio
import tempfile
from functools import cache
from pathlib import Path

import httpx
import pytest

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


@cache
def runner_passes_sample() -> bool:
    """True once audit.runner hands synthesis the plan's whole sample (arms and shares).

    Until then the runner builds ``SampleSize(violating, controls)`` and every probe of a run is
    clean text; the tests that post variant or media probes through a run wait for that change.
    """
    sample = Sample(
        violating_per_criterion=1, controls_per_criterion=0, variant_arms={"spacing": 1}
    )
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "probe.sqlite")
        try:
            plan = sandbox_plan(sample, criteria=["VN-SUP-01"])
            (prepared,) = create_runs(store, plan, None, VirtualClock())
            rows = store.probes(prepared.run_id)
            return bool(rows and rows[0].probe.get("variants"))
        finally:
            store.close()


needs_runner_sample = pytest.mark.skipif(
    not runner_passes_sample(),
    reason="audit/runner.py does not yet pass plan.sample to synthesis "
    "(SampleSize.from_sample); variant and media probes cannot be planned through a run",
)
