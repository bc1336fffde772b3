"""The demo: the bundled pack against the embedded reference sandbox, on a compressed clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

from audit.clock import SystemClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import PreparedRun, create_runs, execute_run
from audit.sandbox.moderation import SandboxConfig, default_config_path, load_sandbox_config
from audit.sandbox.server import SandboxServer
from audit.store import Store
from audit.ui import Progress

__all__ = ["DEMO_TIME_SCALE", "demo_plan", "run_demo"]

DEMO_TIME_SCALE = 3600.0  # one hour of platform time per second: a 24 h deadline lasts 24 s


def demo_plan(base_url: str, seed: int, violating: int, controls: int) -> Plan:
    return Plan(
        name="demo",
        packs=["vn-superstition"],
        targets=[
            Target(
                name="reference-sandbox",
                base_url=base_url,
                environment="sandbox",
                rate_limit=None,
                concurrency=32,
            )
        ],
        seed=seed,
        sample=Sample(violating_per_criterion=violating, controls_per_criterion=controls),
        schedule=Schedule(submission_window="PT2H", jitter=0.5),
        time_scale=DEMO_TIME_SCALE,
    )


def sandbox_config(seed: int | None = None) -> SandboxConfig:
    config = load_sandbox_config(default_config_path())
    update: dict[str, object] = {"time_scale": DEMO_TIME_SCALE}
    if seed is not None:
        update["seed"] = seed
    return config.model_copy(update=update)


def run_demo(store: Store, seed: int, violating: int, controls: int) -> PreparedRun:
    clock = SystemClock()
    with SandboxServer(sandbox_config(), clock) as server:
        plan = demo_plan(server.base_url, seed, violating, controls)
        (prepared,) = create_runs(store, plan, None, clock)
        with Progress(prepared.probes, f"run {prepared.run_id}") as progress:
            asyncio.run(execute_run(store, prepared.run_id, clock, progress=progress.update))
    return prepared


def demo_paths(reports: Path, run_id: str) -> Path:
    return reports / run_id
