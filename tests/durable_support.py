"""Helpers for the durability tests: virtual audits, copied runs, ground truth, real processes.

A *twin* of a run is the same stored run (same run id, so the same probe ids and idempotency
keys) in another workspace: against a fresh sandbox with the same seed, the platform then draws
the same fate for every probe, so two executions can be compared probe by probe.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.clock import VirtualClock
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs
from audit.sandbox.app import create_app
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.sandbox.server import free_port
from audit.store_protocol import RunStore
from tests import store_backends

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def quiet_asgi(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx's ASGI transport probes for trio on every request by importing sniffio; when sniffio
    is not installed that failed import is repeated each time (about a tenth of a millisecond).
    Tell Python once that it is absent, for this test only."""
    try:
        import sniffio  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "sniffio", None)


def plan(
    violating: int = 20,
    controls: int = 5,
    *,
    seed: int = 7,
    base_url: str = "http://sandbox.test",
    window: str = "PT1H",
    rate_limit: float | None = None,
    concurrency: int = 32,
    time_scale: float = 1.0,
) -> Plan:
    return Plan(
        name="durable",
        packs=["vn-superstition"],
        targets=[
            Target(
                name="sandbox", base_url=base_url, rate_limit=rate_limit, concurrency=concurrency
            )
        ],
        seed=seed,
        sample=Sample(violating_per_criterion=violating, controls_per_criterion=controls),
        schedule=Schedule(submission_window=window),
        time_scale=time_scale,
    )


@dataclass
class VirtualPlatform:
    clock: VirtualClock
    app: Any

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=self.app)

    def truth(self) -> dict[str, Any]:
        data: dict[str, Any] = self.app.state.platform.truth()
        return data


def virtual_platform(clock: VirtualClock, seed: int | None = None) -> VirtualPlatform:
    config = load_sandbox_config(default_config_path())
    if seed is not None:
        config = config.model_copy(update={"seed": seed})
    return VirtualPlatform(clock, create_app(config, clock))


def planned_run(store: RunStore, the_plan: Plan, clock: VirtualClock) -> str:
    (prepared,) = create_runs(store, the_plan, None, clock)
    return prepared.run_id


def copy_store(source: Path, destination: Path) -> None:
    """A consistent copy of a store: the twin of every run in it (in the test's store)."""
    store_backends.copy_store(source, destination)


def posts_by_key(truth: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["idempotency_key"]: p for p in truth["posts"]}


def outcomes(store: RunStore, run_id: str) -> dict[str, str | None]:
    return {row.probe_id: row.outcome for row in store.probes(run_id)}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# real processes ---------------------------------------------------------------------------
def audit_command(workspace: Path, *args: str) -> list[str]:
    """The command line of a child process working on the workspace's store (under
    PostgreSQL, ``--store`` names the workspace's database)."""
    store = store_backends.store_args(workspace / "audit.sqlite")
    return [PYTHON, "-m", "audit", "--workspace", str(workspace), *store, *args]


def process_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PLATFORM_AUDIT_WORKSPACE", None)
    return env


@dataclass
class ServedSandbox:
    process: subprocess.Popen[bytes]
    base_url: str

    def truth(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.base_url}/_sandbox/truth", timeout=10).json()
        return data


@contextmanager
def served_sandbox(
    seed: int, time_scale: float, config: Path | None = None
) -> Iterator[ServedSandbox]:
    """``platform-audit sandbox serve`` as a subprocess on a free loopback port (with the
    moderation configuration ``config``, else the bundled one)."""
    port = free_port()
    command = audit_command(Path("unused"), "sandbox", "serve", "--port", str(port))
    command += ["--seed", str(seed), "--time-scale", str(time_scale)]
    command += ["--config", str(config)] if config is not None else []
    process = subprocess.Popen(
        command, env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, base_url)
        yield ServedSandbox(process, base_url)
    finally:
        stop(process)


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, timeout: float = 30) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"sandbox exited: {process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(f"{base_url}/_sandbox/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"sandbox at {base_url} not healthy after {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def write_plan(path: Path, the_plan: Plan) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"plan": json.loads(the_plan.model_dump_json())}))
    return path
