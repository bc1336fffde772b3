"""Before a run starts, `run` says when its last deadline falls and how long it lasts, and warns
when a sandbox target compresses time otherwise than the plan (the sandbox reports its scale in
``GET /_sandbox/health``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import respx

from audit.clock import VirtualClock, utc_iso
from audit.commands.outlook import run_outlook, time_scale_warnings
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs
from audit.sandbox.app import create_app
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.store import Store

URL = "http://sandbox.test"


def _plan(time_scale: float, adapter: str = "sandbox") -> Plan:
    extra = {"profile": "sandbox"} if adapter == "profile" else {}
    return Plan(
        name="outlook",
        packs=["vn-superstition"],
        criteria=["VN-SUP-01"],
        targets=[Target(name="t", base_url=URL, **extra)],
        sample=Sample(violating_per_criterion=4, controls_per_criterion=1),
        schedule=Schedule(submission_window="PT2H", jitter=0),
        time_scale=time_scale,
    )


def test_outlook_gives_the_last_deadline_and_the_whole_duration(tmp_path: Path) -> None:
    clock = VirtualClock()
    store = Store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, _plan(3600), None, clock)
    rows = store.probes(prepared.run_id)
    last = max(r.scheduled_at + r.deadline_s for r in rows)
    text = run_outlook(store, prepared.run_id, 3600)
    assert f"expected last deadline {utc_iso(last)}" in text
    # window 2 h (the last of 5 probes at 4/5 of it) + 24 h deadline + 25 % grace, / 3600
    assert "total duration about 31.6 s (31 h 36 min in platform time)" in text
    store.close()


def _sandbox_reporting(scale: float) -> respx.MockRouter:
    """The target answers what the reference sandbox served at ``scale`` answers."""
    app = create_app(load_sandbox_config(default_config_path(), time_scale=scale))

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=URL) as client:
            return await client.get("/_sandbox/health")

    answer = asyncio.run(ask())
    router = respx.mock(assert_all_called=False)
    router.get(f"{URL}/_sandbox/health").mock(
        return_value=httpx.Response(answer.status_code, json=answer.json())
    )
    return router


def test_a_sandbox_at_another_time_scale_is_warned_about() -> None:
    with _sandbox_reporting(1800):
        (warning,) = time_scale_warnings(_plan(3600))
        assert "target t reports time scale 1800 but the plan has time_scale 3600" in warning
        assert "--time-scale 3600" in warning
        assert time_scale_warnings(_plan(1800)) == []


def test_no_warning_when_the_target_does_not_say() -> None:
    with respx.mock() as router:
        router.get(f"{URL}/_sandbox/health").mock(return_value=httpx.Response(200, json={}))
        assert time_scale_warnings(_plan(3600)) == []
        router.get(f"{URL}/_sandbox/health").mock(side_effect=httpx.ConnectError("refused"))
        assert time_scale_warnings(_plan(3600)) == []


def test_profile_targets_are_not_asked() -> None:
    with respx.mock(assert_all_called=False) as router:
        route = router.get(f"{URL}/_sandbox/health").mock(return_value=httpx.Response(500))
        assert time_scale_warnings(_plan(3600, adapter="profile")) == []
        assert not route.called
