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
from audit.store_protocol import RunStore
from tests import store_backends
from tests.pg_server import PgServer, start_server
from tests.store_backends import STORE_KINDS, open_store


@dataclass
class VirtualAudit:
    store: RunStore
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
    store = open_store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=httpx.ASGITransport(app)))
    return VirtualAudit(store, prepared.run_id, clock, app.state.platform)


@pytest.fixture
def virtual_audit(tmp_path: Path) -> Iterator[VirtualAudit]:
    audit = run_virtual_audit(tmp_path, virtual_plan())
    yield audit
    audit.store.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server for the session (a fresh database per store)."""
    server = start_server()
    yield server
    server.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test of a module marked ``both_stores`` runs once per store (module by module, so
    a module's shared audit is made once per store), unless marked ``sqlite_store``."""
    if metafunc.definition.get_closest_marker(
        "both_stores"
    ) is not None and not metafunc.definition.get_closest_marker("sqlite_store"):
        metafunc.parametrize("store_kind", STORE_KINDS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = getattr(request, "param", "sqlite")
    return kind


@pytest.fixture(scope="module", autouse=True)
def _store_backend(store_kind: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """The module's stores (tests.store_backends.open_store) live in ``store_kind``."""
    if store_kind == "postgresql":
        store_backends.use(store_kind, request.getfixturevalue("pg_server"))
    try:
        yield
    finally:
        store_backends.reset()


@pytest.fixture(autouse=True)
def _stores_closed(_store_backend: None) -> Iterator[None]:
    """The PostgreSQL stores a test opened are closed when it ends."""
    mark = store_backends.opened_count()
    yield
    store_backends.close_since(mark)


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
