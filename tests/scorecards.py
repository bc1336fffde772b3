"""Deterministic scorecards for the renderer, comparison and browser tests.

Runs execute on the virtual clock against the in-process reference sandbox (no sockets, no
waiting), so a fixed seed gives the same store, the same scorecard and the same files every time.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from audit.clock import VirtualClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs, execute_run
from audit.sandbox.app import create_app
from audit.sandbox.moderation import SandboxConfig, default_config_path, load_sandbox_config
from audit.scorecard import Scorecard
from audit.store import Store
from audit.workspace import scorecard_for

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0


def gold_plan(
    name: str = "gold",
    target: str = "sandbox",
    seed: int = 7,
    violating: int = 14,
    controls: int = 4,
) -> Plan:
    """Few probes by default: the bootstrap behind the time figures is the slow part."""
    return Plan(
        name=name,
        packs=["vn-superstition"],
        targets=[
            Target(name=target, base_url="http://sandbox.test", rate_limit=None, concurrency=32)
        ],
        seed=seed,
        sample=Sample(violating_per_criterion=violating, controls_per_criterion=controls),
        schedule=Schedule(submission_window="PT1H"),
    )


def platform(proactive: dict[str, float] | None = None, seed: int | None = None) -> SandboxConfig:
    """The default simulated platform, with the proactive detection rate of some rules (by rule
    id) replaced, so platforms that differ can be compared."""
    config = load_sandbox_config(default_config_path())
    chosen = proactive or {}
    rules = [
        rule.model_copy(update={"proactive": chosen.get(rule.id, rule.proactive)})
        for rule in config.rules
    ]
    update: dict[str, object] = {"rules": rules}
    if seed is not None:
        update["seed"] = seed
    return config.model_copy(update=update)


def run_on_virtual_clock(
    store: Store, plan: Plan, config: SandboxConfig | None = None, start: float = START
) -> str:
    """Create and finish one run of ``plan`` (one pack, one target); returns its id."""
    clock = VirtualClock(start)
    app = create_app(config or platform(), clock)
    (prepared,) = create_runs(store, plan, None, clock)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=httpx.ASGITransport(app)))
    return prepared.run_id


WEAK_RITUALS = {"paid-ritual": 0.3}  # a platform that misses most paid-ritual posts on its own


def gold_scorecard(folder: Path) -> Scorecard:
    store = Store(folder / "audit.sqlite")
    try:
        return scorecard_for(
            store, run_on_virtual_clock(store, gold_plan(), platform(WEAK_RITUALS))
        )
    finally:
        store.close()


_VOLATILE = (
    (re.compile(r"sha256:[0-9a-f]{64}"), "sha256:<digest>"),
    (re.compile(r"SHA256:[A-Za-z0-9+/]{43}"), "SHA256:<key-fingerprint>"),
    (re.compile(r"\b\d{8}T\d{6}Z-[0-9a-f]{6}\b"), "<run-id>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?"), "<timestamp>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "<date>"),
    (re.compile(r"\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?"), "<time>"),
    (re.compile(r"platform-audit \d+\.\d+\.\d+\S*"), "platform-audit <version>"),
    (re.compile(r'"tool_version": "[^"]*"'), '"tool_version": "<version>"'),
    (re.compile(r"Tool [0-9.]+\S* "), "Tool <version> "),
)


def scrub(text: str) -> str:
    """Gold-file text with what changes from run to run or release to release replaced."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text
