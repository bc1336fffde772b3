"""The reference sandbox survives restarts: its state file, and a real ``sandbox serve`` killed
with SIGKILL and restarted on the same file."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.clock import VirtualClock
from audit.errors import InputError
from audit.sandbox.app import create_app
from audit.sandbox.moderation import Media, PostRecord, SandboxConfig, load_sandbox_config
from audit.sandbox.server import free_port
from audit.sandbox.state import record_from_json, record_json

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
seed: 5
false_positive_notice: 0.0
rules:
  - id: fast
    patterns: [fastremove]
    proactive: 1.0
    latency: {median: PT0.5S, spread: 0}
  - id: slow
    patterns: [slowremove]
    proactive: 0.0
    notice: 1.0
    notice_latency: {median: PT1H, spread: 0}
"""
POSTS = [f"hello neighbour {i}" for i in range(4)]
POSTS += [f"fastremove offer {i}" for i in range(3)]
POSTS += [f"slowremove offer {i}" for i in range(3)]


@contextmanager
def served(state: Path, config: Path, *extra: str) -> Iterator[str]:
    """``platform-audit sandbox serve --state STATE`` on a free port; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "audit", "sandbox", "serve", "--port", str(port)]
    command += ["--config", str(config), "--state", str(state), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base_url)
        yield base_url
    finally:
        kill(process)


def wait_healthy(process: subprocess.Popen[bytes], base_url: str, timeout: float = 30) -> None:
    give_up = time.monotonic() + timeout
    with httpx.Client(timeout=1) as client:
        while time.monotonic() < give_up:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"sandbox exited: {stderr}")
            try:
                if client.get(f"{base_url}/_sandbox/health").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
    raise RuntimeError(f"sandbox at {base_url} not healthy after {timeout} s")


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no chance to flush or close anything."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    if process.stderr is not None:
        process.stderr.close()


def answers(client: httpx.Client, ids: list[str]) -> dict[str, tuple[int, Any]]:
    return {i: (r.status_code, r.json()) for i in ids for r in [client.get(f"/api/v1/posts/{i}")]}


def submit(client: httpx.Client, text: str, key: str) -> httpx.Response:
    return client.post("/api/v1/posts", json={"text": text}, headers={"Idempotency-Key": key})


def wait_removed(client: httpx.Client, ids: list[str], timeout: float = 20) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if all(client.get(f"/api/v1/posts/{i}").status_code == 410 for i in ids):
            return
        time.sleep(0.05)
    raise AssertionError(f"posts {ids} were never removed")


def populate(base_url: str) -> tuple[list[str], dict[str, Any]]:
    """Post, notice, withdraw; wait for the fast removals; return ids and the truth."""
    with httpx.Client(base_url=base_url, timeout=5) as client:
        ids = [submit(client, text, f"key-{n}").json()["id"] for n, text in enumerate(POSTS)]
        assert client.post(f"/api/v1/posts/{ids[7]}/reports", json={"kind": "notice"}).status_code
        assert client.delete(f"/api/v1/posts/{ids[3]}").status_code == 204
        wait_removed(client, ids[4:7])
        truth: dict[str, Any] = client.get("/_sandbox/truth").json()
    return ids, truth


def test_a_killed_sandbox_restarted_on_its_state_file_answers_as_before(tmp_path: Path) -> None:
    config, state = tmp_path / "moderation.yaml", tmp_path / "state.sqlite"
    config.write_text(CONFIG)
    with served(state, config) as base_url:
        ids, before_truth = populate(base_url)
        with httpx.Client(base_url=base_url, timeout=5) as client:
            before = answers(client, ids)
    assert [before[i][0] for i in ids] == [200, 200, 200, 404, 410, 410, 410, 200, 200, 200]
    with served(state, config) as base_url, httpx.Client(base_url=base_url, timeout=5) as client:
        assert answers(client, ids) == before  # 0 false removals, 0 posts forgotten
        again = submit(client, POSTS[0], "key-0")
        assert (again.status_code, again.json()["id"]) == (200, ids[0])  # deduped after restart
        fresh = [submit(client, f"hello again {n}", f"new-{n}").json()["id"] for n in range(3)]
        truth = client.get("/_sandbox/truth").json()
    assert not set(fresh) & set(ids) and len(set(fresh)) == 3
    assert min(fresh) > max(ids)
    assert_truth_carried(before_truth, truth, ids + fresh)


def assert_truth_carried(before: dict[str, Any], after: dict[str, Any], ids: list[str]) -> None:
    assert [p["id"] for p in after["posts"]] == ids
    assert after["epoch"] == before["epoch"] and len(after["openings"]) == 2
    fixed = ("created_at", "removal_at", "notices", "withdrawn_at", "rule", "detected")
    for old, new in zip(before["posts"], after["posts"], strict=False):
        assert {k: old[k] for k in fixed} == {k: new[k] for k in fixed}
    assert after["posts"][0]["submissions"] == 2


def test_a_state_file_refuses_another_seed_through_the_cli(tmp_path: Path) -> None:
    config, state = tmp_path / "moderation.yaml", tmp_path / "state.sqlite"
    config.write_text(CONFIG)
    app = create_app(load_sandbox_config(config), VirtualClock(start=time.time() - 60), state)
    app.state.platform.state.close()
    command = [sys.executable, "-m", "audit", "sandbox", "serve", "--port", str(free_port())]
    command += ["--config", str(config), "--state", str(state), "--seed", "6"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "created with seed 5 (got 6): restart with --seed 5" in done.stderr
    assert str(state) in done.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"time_scale": 60.0}, "restart with --time-scale 1.0"),
        ({"false_positive_notice": 0.5}, "other moderation rules"),
    ],
)
def test_a_state_file_refuses_another_time_base(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    config, clock = SandboxConfig(seed=1), VirtualClock()
    create_app(config, clock, tmp_path / "state.sqlite").state.platform.state.close()
    changed = config.model_copy(update=change)
    with pytest.raises(InputError, match=message):
        create_app(changed, clock, tmp_path / "state.sqlite")
    create_app(config.model_copy(update={"token": "t"}), clock, tmp_path / "state.sqlite")


def test_a_file_that_is_not_a_state_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database, but long enough to be read as one" * 40)
    with pytest.raises(InputError, match=r"cannot open .*notes\.txt as a sandbox state file"):
        create_app(SandboxConfig(), VirtualClock(), tmp_path / "notes.txt")


def test_serve_without_state_names_the_file_it_keeps(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "audit", "sandbox", "serve", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}")
        truth = httpx.get(f"http://127.0.0.1:{port}/_sandbox/truth", timeout=5).json()
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert process.stderr is not None
    with process.stderr:
        stderr = process.stderr.read().decode()
    state = Path(truth["state_file"])
    assert f"--state {state}" in stderr and state.exists()
    assert state.parent.name.startswith("platform-audit-sandbox-")
    shutil.rmtree(state.parent)


def test_a_post_record_round_trips_through_the_file_format() -> None:
    record = PostRecord(
        post_id="0000007",
        idempotency_key="k",
        text="caption",
        modality="image",
        created_at=1.5,
        rule="fast",
        detected=True,
        proactive_removal_at=3.25,
        notice_draw=0.125,
        notice_latency_s=60.0,
        submissions=2,
        notices=[("notice", 2.0), ("order", 2.5)],
        withdrawn_at=None,
        media=Media("image/png", "ab" * 32, 120, "what it shows"),
    )
    assert record_from_json(record_json(record)) == record


def test_a_clock_behind_the_state_file_is_refused(tmp_path: Path) -> None:
    config, state = SandboxConfig(seed=1), tmp_path / "state.sqlite"
    app = create_app(config, VirtualClock(start=2_000_000_000.0), state)

    async def post() -> int:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as c:
            return (await c.post("/api/v1/posts", json={"text": "hello"})).status_code

    assert asyncio.run(post()) == 201
    app.state.platform.state.close()
    with pytest.raises(InputError, match="after this clock's now"):
        create_app(config, VirtualClock(start=1_000_000_000.0), state)
    reopened = create_app(config, VirtualClock(start=2_000_000_100.0), state).state.platform
    assert list(reopened.posts) == ["0000001"] and reopened.next_post_id() == "0000002"
