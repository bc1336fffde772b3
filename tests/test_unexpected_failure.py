"""Any unexpected failure of the tool is one line and exit 4 (NOT_MEASURED), never a traceback
and never exit 1 (which reads as NON_COMPLIANT); a run that fails so is recorded as failed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from audit import cli
from audit import plan as plan_module
from audit.clock import VirtualClock
from audit.engine import Engine
from audit.runner import create_runs, execute_run
from audit.sandbox.app import create_app
from audit.store import Store
from audit.ui import print_summary
from audit.workspace import scorecard_for
from tests.scorecards import START, gold_plan, platform


def _boom(*_: object, **__: object) -> None:
    raise ZeroDivisionError("an unforeseen bug")


def test_an_unexpected_exception_is_exit_4_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(plan_module, "load_plan", _boom)
    plan = tmp_path / "plan.yaml"
    plan.write_text("plan: {}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        cli.main(["--workspace", str(tmp_path / "ws"), "run", "--plan", str(plan)])
    assert exited.value.code == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unexpected failure (ZeroDivisionError: an unforeseen bug)" in err
    assert "Traceback" not in err


def test_debug_prints_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(plan_module, "load_plan", _boom)
    plan = tmp_path / "plan.yaml"
    plan.write_text("plan: {}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        cli.main(["--debug", "--workspace", str(tmp_path / "ws"), "run", "--plan", str(plan)])
    assert exited.value.code == 4
    assert "Traceback" in capsys.readouterr().err


def test_a_run_that_crashes_is_failed_and_not_measured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path / "audit.sqlite")
    clock = VirtualClock(START)
    transport = httpx.ASGITransport(create_app(platform(), clock))
    (prepared,) = create_runs(store, gold_plan(violating=4, controls=1), None, clock)
    original = Engine.run

    async def crash(self: Engine, **kwargs: object) -> float | None:
        await original(self, stop_at=START + 60)  # type: ignore[arg-type]
        raise RuntimeError("store went away [/bold]")

    monkeypatch.setattr(Engine, "run", crash)
    with pytest.raises(RuntimeError):
        asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport))
    run = store.run(prepared.run_id)
    assert run.status == "failed"
    assert run.failure is not None
    assert "store went away" in run.failure
    card = scorecard_for(store, prepared.run_id)
    assert {c.verdict.value for c in card.criteria} == {"NOT_MEASURED"}
    assert card.exit_code == 4
    print_summary(card)  # the failure's text is shown as text, never read as markup
    assert "store went away [/bold]" in capsys.readouterr().out
    # resumed to its end, the same run is complete and scored
    monkeypatch.setattr(Engine, "run", original)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=transport))
    assert store.run(prepared.run_id).status == "complete"
