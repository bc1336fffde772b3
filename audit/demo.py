"""The demo: the bundled pack against the embedded reference sandbox, on a compressed clock.

Two steps, both against the reference sandbox (a simulator) served over real HTTP, and a
cross-check of what the sandbox reported:

1. A small **minimal evasion search** (:mod:`audit.evasion`) for VN-SUP-01, whose clean probes
   the sandbox removes: it screens the simplest text variants in rounds of ordinary runs. The
   search runs against a second instance of the same simulated platform (same moderation and
   seed) whose clock is compressed :data:`SEARCH_SPEEDUP` times more, so each round takes
   seconds.
2. The **audit**: every criterion with clean, variant and banner-image probes, plus an arm of
   probes carrying the evasion the search found. Its scorecard shows removal rates per variant
   and per modality, and the minimal evasion with its evidence from this run.
Then the **statements of reasons** the sandbox published for its decisions (its daily dump,
with a little misreporting configured: :data:`DEMO_MISREPORTING`) are cross-checked against the
run, so the scorecard has its statements section (see docs/statements.md).

Both steps are reproducible for a seed: each starts a fresh simulator (nothing of another demo
is on it), so the probes' ids, which the simulator draws every decision from, are keyed by the
seed instead of the run id (``probe_key`` of :func:`create_runs`). The same seed gives the same
search, the same evasion arm and the same outcomes, in any workspace; only removals within a
fraction of a second of a deadline can fall either side of it, and the looks' times (hence the
time-to-removal figures) follow the run. The search's rounds are stored as runs of plan
``demo-evasion`` and printed as step 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from audit.arms import EvasionFinding
from audit.clock import Clock, SystemClock
from audit.evasion import EvasionSearch, PlanRounds, SearchResult, SearchSettings
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import PreparedRun, create_runs, execute_run
from audit.sandbox.moderation import SandboxConfig, default_config_path, load_sandbox_config
from audit.sandbox.server import SandboxServer
from audit.store_protocol import RunStore
from audit.ui import Progress

__all__ = ["DEMO_TIME_SCALE", "SEARCH_SPEEDUP", "DemoRun", "demo_plan", "run_demo"]

DEMO_TIME_SCALE = 3600.0  # one hour of platform time per second: a 24 h deadline lasts 24 s
SEARCH_SPEEDUP = 4.0  # the search's sandbox runs four times faster still: 6 s per 24 h
SEARCH_CRITERION = "VN-SUP-01"
SEARCH_SETTINGS = SearchSettings(clean=8, screen=4, confirm=0, budget=40)
VARIANT_SHARE = 0.35  # of the text probes outside the evasion arm
IMAGE_SHARE = 0.2
EVASION_ARM = 12  # probes per criterion carrying the evasion the search found
# the demo platform misreports some of its statements of reasons, so the cross-check shows
DEMO_MISREPORTING = {
    "missing": 0.05,
    "wrong_automation": 0.05,
    "wrong_source": 0.05,
    "wrong_category": 0.05,
}


def demo_plan(
    base_url: str,
    seed: int,
    violating: int,
    controls: int,
    arms: dict[str, int] | None = None,
    time_scale: float = DEMO_TIME_SCALE,
) -> Plan:
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
        sample=Sample(
            violating_per_criterion=violating,
            controls_per_criterion=controls,
            variant_share=VARIANT_SHARE,
            image_share=IMAGE_SHARE,
            variant_arms=arms or {},
        ),
        schedule=Schedule(submission_window="PT2H", jitter=0.5),
        time_scale=time_scale,
    )


def sandbox_config(seed: int | None = None, speedup: float = 1.0) -> SandboxConfig:
    config = load_sandbox_config(default_config_path())
    statements = config.statements.model_copy(update=DEMO_MISREPORTING)
    update: dict[str, object] = {"time_scale": DEMO_TIME_SCALE * speedup, "statements": statements}
    if seed is not None:
        update["seed"] = seed
    return config.model_copy(update=update)


def search_evasion(
    store: RunStore,
    base_url: str,
    seed: int,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SearchResult:
    """The demo's evasion search for VN-SUP-01's text variants against a sandbox at the
    search's speed."""
    plan = demo_plan(base_url, seed, 1, 0, time_scale=DEMO_TIME_SCALE * SEARCH_SPEEDUP)
    rounds = PlanRounds(
        store, plan, SEARCH_CRITERION, clock, transport=transport, probe_key=f"demo-{seed}-evasion"
    )
    search = EvasionSearch(rounds.criterion, rounds, SEARCH_SETTINGS, modalities=["text"])
    return asyncio.run(search.run())


def evasion_arms(finding: EvasionFinding | None, violating: int) -> dict[str, int]:
    """The arm the audit adds for a found evasion (a quarter of the probes at most)."""
    size = min(EVASION_ARM, violating // 4)
    if finding is None or size == 0:
        return {}
    return {"+".join(finding.variants): size}


@dataclass(frozen=True)
class DemoRun:
    """What the demo did: the search's result (its rounds are runs too) and the audit's run."""

    search: SearchResult
    audit: PreparedRun


def run_demo(
    store: RunStore, seed: int, violating: int, controls: int, say: Callable[[str], None]
) -> DemoRun:
    """The two steps, each announced through ``say`` as it starts and ends."""
    clock = SystemClock()
    with (
        SandboxServer(sandbox_config(), clock) as server,
        SandboxServer(sandbox_config(speedup=SEARCH_SPEEDUP), clock) as fast,
    ):
        say(
            f"Step 1 of 2: minimal evasion search for {SEARCH_CRITERION}, in rounds stored as "
            f"runs of plan demo-evasion, against a second simulator compressed "
            f"{DEMO_TIME_SCALE * SEARCH_SPEEDUP:g}x"
        )
        search = search_evasion(store, fast.base_url, seed, clock)
        rounds = ", ".join(r.run_id for r in search.rounds) or "none"
        say(f"  {search.describe()}; rounds: {rounds}")
        arms = evasion_arms(search.finding, violating)
        arm = next(iter(arms.items()), None)
        say(
            "Step 2 of 2: the audit"
            + (f", with an arm of {arm[1]} probes a criterion carrying {arm[0]}" if arm else "")
        )
        plan = demo_plan(server.base_url, seed, violating, controls, arms)
        (prepared,) = create_runs(store, plan, None, clock, probe_key=f"demo-{seed}")
        with Progress(prepared.probes, f"run {prepared.run_id}") as progress:
            asyncio.run(execute_run(store, prepared.run_id, clock, progress=progress.update))
        cross_check_statements(store, prepared.run_id, server.base_url)
    return DemoRun(search, prepared)


def cross_check_statements(store: RunStore, run_id: str, base_url: str) -> None:
    """Fetch the sandbox's daily dump of statements of reasons and keep it for the run."""
    from audit.statements.crosscheck import DEFAULT_WINDOW_S, read_file, run_filter, save_stored

    workspace = store.workspace
    dump = workspace / "statements" / f"{run_id}-sor-reference-sandbox-full.zip"
    dump.parent.mkdir(parents=True, exist_ok=True)
    answer = httpx.get(f"{base_url}/api/v1/statements/dump", timeout=30.0)
    answer.raise_for_status()
    dump.write_bytes(answer.content)
    keep = run_filter(store.probes(run_id), store.observations(run_id), "{post_id}", None)
    stored = read_file(dump, "{post_id}", None, DEFAULT_WINDOW_S, keep)
    save_stored(workspace, run_id, stored)
