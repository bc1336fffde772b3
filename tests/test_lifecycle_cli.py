"""``poll``, ``status``, ``cleanup`` and ``schedule`` from the command line, against a real
sandbox server on loopback with time compressed 14400x (a 24 h deadline lasts 6 s)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.cli import main
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.sandbox.server import SandboxServer
from tests.durable_support import plan, write_plan

SCALE = 14400.0


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    config = load_sandbox_config(default_config_path(), time_scale=SCALE)
    with SandboxServer(config) as running:
        yield running


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The exit code, standard output and standard error of ``platform-audit ARGS``."""
    try:
        main(args)
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _plan_file(tmp_path: Path, server: SandboxServer, cron: str | None = None) -> Path:
    the_plan = plan(2, 1, base_url=server.base_url, window="PT1H", time_scale=SCALE)
    if cron is not None:
        schedule = the_plan.schedule.model_copy(update={"cron": cron})
        the_plan = the_plan.model_copy(update={"schedule": schedule})
    return write_plan(tmp_path / "plan.yaml", the_plan)


def _detached_run(tmp_path: Path, server: SandboxServer, capsys: pytest.CaptureFixture[str]) -> str:
    plan_file = _plan_file(tmp_path, server)
    code, out, _ = cli(
        ["--workspace", str(tmp_path / "ws"), "run", "--plan", str(plan_file), "--detach"], capsys
    )
    assert code == 0
    return out.split()[1].rstrip(":")


def _ws(tmp_path: Path, *args: str) -> list[str]:
    return ["--workspace", str(tmp_path / "ws"), "--reports", str(tmp_path / "reports"), *args]


def test_poll_on_an_empty_workspace_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(_ws(tmp_path, "poll"), capsys)
    assert code == 0
    assert "no unfinished runs" in out
    assert out.strip().endswith("next: none")


def test_poll_an_unknown_run_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(_ws(tmp_path, "poll", "nope"), capsys)
    assert code == 2
    assert "no run 'nope'" in err


def test_poll_until_the_run_finishes_then_status_and_cleanup(
    tmp_path: Path, server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = _detached_run(tmp_path, server, capsys)

    code, out, _ = cli(_ws(tmp_path, "poll", "--json"), capsys)
    first = json.loads(out)
    assert code == 0
    assert first["runs"][0]["result"] == "pending"
    assert first["next_at"] is not None

    code, out, _ = cli(_ws(tmp_path, "status", run_id, "--json"), capsys)
    status = json.loads(out)
    assert status["probes"] == 9
    assert status["lock"] is None
    assert status["up_on_platform"] >= 1
    assert status["pending"] >= 1
    assert status["last_deadline_utc"] is not None

    code, out, _ = cli(_ws(tmp_path, "poll", run_id, "--for", "30s"), capsys)
    assert code == 0
    assert f"run {run_id}: finished" in out
    assert (tmp_path / "reports" / run_id / "scorecard.json").exists()
    assert out.strip().endswith("next: none")

    code, out, _ = cli(_ws(tmp_path, "cleanup", run_id), capsys)
    assert code == 0
    assert "nothing of the run is left up" in out
    posts = server.platform.truth()["posts"]
    keys = {p["idempotency_key"]: p for p in posts}
    code, out, _ = cli(_ws(tmp_path, "status", run_id), capsys)
    assert "up on the platform: 0" in out
    assert "pending: 0 without an outcome yet" in out
    assert f"run {run_id} (complete)" in out
    assert keys  # the run posted, and every post of it is withdrawn
    assert all(p["withdrawn_at"] is not None for p in keys.values())


def test_cleanup_stops_a_run_midway(
    tmp_path: Path, server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = _detached_run(tmp_path, server, capsys)
    cli(_ws(tmp_path, "poll", "--for", "2s"), capsys)

    code, out, _ = cli(_ws(tmp_path, "cleanup", run_id, "--json"), capsys)

    report = json.loads(out)
    assert code == 0
    assert report["cut_short"] or report["cancelled"]
    code, out, _ = cli(_ws(tmp_path, "status", run_id, "--json"), capsys)
    status = json.loads(out)
    assert status["status"] == "cancelled"
    assert status["up_on_platform"] == 0
    assert status["next_at"] is None


def test_poll_starts_a_recurring_plan_once_per_slot(
    tmp_path: Path, server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # an hourly slot: both polls fall in it however slow this machine is, unless the hour is
    # about to turn, and then the test waits for the turn (a condition, not a guess at speed)
    plan_file = _plan_file(tmp_path, server, cron="0 * * * *")
    while time.time() % 3600 > 3600 - 300:
        time.sleep(1.0)

    code, out, _ = cli(_ws(tmp_path, "schedule", "--plan", str(plan_file)), capsys)
    assert code == 0
    assert "due now" in out

    code, out, _ = cli(_ws(tmp_path, "poll", "--plan", str(plan_file), "--json"), capsys)
    first = json.loads(out)
    assert code == 0
    assert len(first["runs"]) == 1
    code, out, _ = cli(_ws(tmp_path, "poll", "--plan", str(plan_file), "--json"), capsys)
    second = json.loads(out)
    started = [r["run_id"] for r in second["runs"]]
    assert started == [first["runs"][0]["run_id"]]  # the same run, carried on; no new one
    assert "started" in second["plans"][0] or "already" in second["plans"][0]

    code, out, _ = cli(_ws(tmp_path, "schedule", "--plan", str(plan_file)), capsys)
    assert f"run {started[0]}" in out
    cli(_ws(tmp_path, "cleanup", started[0]), capsys)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        (None, "'schedule.cron' must be set"),
        ("every day", "five-field cron expression"),
        ("CRON_TZ=Mars/Olympus 0 3 * * *", "unknown time zone"),
    ],
)
def test_recurring_plan_errors_are_one_line_exit_2(
    tmp_path: Path,
    server: SandboxServer,
    capsys: pytest.CaptureFixture[str],
    cron: str | None,
    message: str,
) -> None:
    plan_file = _plan_file(tmp_path, server, cron=cron)
    code, _, err = cli(_ws(tmp_path, "poll", "--plan", str(plan_file)), capsys)
    assert code == 2
    assert message in err
    assert str(plan_file) in err
    assert "Traceback" not in err


def test_bad_duration_option_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(_ws(tmp_path, "poll", "--for", "soon"), capsys)
    assert code == 2
    assert "duration" in err


def test_poll_exit_4_when_a_run_cannot_be_carried_forward(
    tmp_path: Path,
    server: SandboxServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    the_plan = plan(2, 1, base_url=server.base_url, time_scale=SCALE)
    targets = [the_plan.targets[0].model_copy(update={"token_env": "DURABLE_TEST_TOKEN"})]
    plan_file = write_plan(tmp_path / "plan.yaml", the_plan.model_copy(update={"targets": targets}))
    monkeypatch.setenv("DURABLE_TEST_TOKEN", "a-secret-token")
    code, _, _ = cli(_ws(tmp_path, "run", "--plan", str(plan_file), "--detach"), capsys)
    assert code == 0
    monkeypatch.delenv("DURABLE_TEST_TOKEN")

    code, out, _ = cli(_ws(tmp_path, "poll"), capsys)

    assert code == 4
    assert "could not be carried forward" in out
    assert "DURABLE_TEST_TOKEN" in out
