"""The demo's two steps on the virtual clock: the evasion search, then the audit it feeds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from audit.clock import VirtualClock
from audit.demo import (
    EVASION_ARM,
    SEARCH_CRITERION,
    demo_plan,
    evasion_arms,
    sandbox_config,
    search_evasion,
)
from audit.evasion import SearchStatus
from audit.runner import create_runs, execute_run
from audit.sandbox.app import create_app
from audit.store import Store
from audit.workspace import scorecard_for


def test_demo_scorecard_shows_variant_and_modality_rates_and_a_minimal_evasion(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    store = Store(tmp_path / "audit.sqlite")
    fast = httpx.ASGITransport(create_app(sandbox_config(speedup=4.0), clock))
    search = search_evasion(store, "http://fast.test", 2024, clock, transport=fast)
    assert search.status is SearchStatus.FOUND and search.finding is not None
    assert search.finding.criterion_id == SEARCH_CRITERION and search.probes <= 40

    arms = evasion_arms(search.finding, 48)
    assert arms == {"+".join(search.finding.variants): EVASION_ARM}
    plan = demo_plan("http://sandbox.test", 2024, 48, 8, arms)
    (prepared,) = create_runs(store, plan, None, clock)
    main = httpx.ASGITransport(create_app(sandbox_config(), clock))
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=main))

    card = scorecard_for(store, prepared.run_id)
    for c in card.criteria:
        dims = {(g.dimension, g.value) for g in c.breakdowns}
        assert {("modality", "text"), ("modality", "image"), ("variant", "clean")} <= dims
        assert sum(1 for d, _ in dims if d == "variant") >= 6
    found = {e.criterion_id: e for e in card.evasions}
    assert SEARCH_CRITERION in found
    assert found[SEARCH_CRITERION].summary.startswith("removed: ")
    assert "; survives: " in found[SEARCH_CRITERION].summary
    store.close()


def test_no_finding_or_too_few_probes_add_no_arm() -> None:
    assert evasion_arms(None, 60) == {}
    assert demo_plan("http://x.test", 1, 3, 0, {}).sample.variant_arms == {}


def _demo_on_virtual_clock(folder: Path, start: float, seed: int) -> tuple[str, dict[str, int]]:
    """The demo's two steps on a fresh store and fresh simulators whose clock starts at
    ``start``: the evasion found and the audit's outcome counts per criterion."""
    clock = VirtualClock(start)
    store = Store(folder / "audit.sqlite")
    fast = httpx.ASGITransport(create_app(sandbox_config(speedup=4.0), clock))
    search = search_evasion(store, "http://fast.test", seed, clock, transport=fast)
    plan = demo_plan("http://sandbox.test", seed, 24, 4, evasion_arms(search.finding, 24))
    (prepared,) = create_runs(store, plan, None, clock, probe_key=f"demo-{seed}")
    main = httpx.ASGITransport(create_app(sandbox_config(), clock))
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=main))
    card = scorecard_for(store, prepared.run_id)
    store.close()
    found = "+".join(search.finding.variants) if search.finding else "none"
    counts = {f"{c.id} {k}": n for c in card.criteria for k, n in c.counts.items()}
    return found, counts


def test_the_demo_is_the_same_for_the_same_seed_in_any_workspace(tmp_path: Path) -> None:
    # other days, so other run ids: the probes are keyed by the seed, not by the run
    first = _demo_on_virtual_clock(tmp_path / "a", 1_767_225_600.0, 2024)
    again = _demo_on_virtual_clock(tmp_path / "b", 1_767_225_600.0 + 7 * 86_400, 2024)
    assert first == again
