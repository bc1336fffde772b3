"""Shared fixtures: an in-process audit on the virtual clock, and a real sandbox server; and
the rule that no test writes into the repository's reports/ folder."""

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


REPOSITORY_REPORTS = Path(__file__).resolve().parents[1] / "reports"
_BEFORE = pytest.StashKey[set[str]]()


def _reports_listing() -> set[str]:
    return {p.name for p in REPOSITORY_REPORTS.iterdir()} if REPOSITORY_REPORTS.is_dir() else set()


@pytest.fixture(autouse=True)
def _default_reports_outside_the_repository(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A command run without --reports (in-process or in a child process, which inherits the
    environment) writes under the test session's temporary folder, never into reports/."""
    folder = tmp_path_factory.getbasetemp() / "default-reports"
    monkeypatch.setenv("PLATFORM_AUDIT_REPORTS", str(folder))


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _reports_listing()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    written = _reports_listing() - session.config.stash.get(_BEFORE, set())
    if written:
        print(f"\ntests wrote into {REPOSITORY_REPORTS}: {', '.join(sorted(written))}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
