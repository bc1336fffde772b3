"""Looks as the public sees them: a target's observer against a sandbox that keeps removed posts
visible to their author.

The reference sandbox, configured with ``removed_visible_to_author``, answers a removed post 200
visible to the author's token and 410 removed to anyone else. An audit whose looks use an
observer (a second account, or logged-out requests) measures the sandbox's true removals, probe
by probe; one without says in its methodology that its looks used the author's view, and counts
every removal as a post still up. ``verify`` reads each look again in the view it was made in.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.adapters.base import PostState, StatusResult, View, both_views
from audit.clock import VirtualClock
from audit.evidence.rederive import check_derivation
from audit.plan import Observer, Plan, Sample, Schedule, SecretRef, Target
from audit.report.html import render_html
from audit.report.markdown import render_markdown
from audit.runner import create_runs, execute_run
from audit.sandbox.app import create_app
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.sandbox.server import free_port
from audit.store import SCHEMA_VERSION, Store
from audit.workspace import scorecard_for
from tests.durable_support import audit_command, process_env, stop, write_plan
from tests.evidence_support import as_version_4
from tests.test_scorecard_truth import check_against_truth

AUTHOR, SECOND = "author-secret-token", "observer-secret-token"
SCALE = 7200.0  # a 24 h deadline lasts 12 s over real HTTP
AUTHOR_VIEW_LINE = "Looks used the author's view"


def _target(base_url: str, observer: Observer | None) -> Target:
    return Target(
        name="sandbox",
        base_url=base_url,
        rate_limit=None,
        concurrency=16,
        token_env="AUDIT_AUTHOR_TOKEN",
        observer=observer,
    )


def _plan(base_url: str, observer: Observer | None, *, time_scale: float = 1.0) -> Plan:
    return Plan(
        name="observer",
        packs=["vn-superstition"],
        targets=[_target(base_url, observer)],
        seed=5,
        sample=Sample(violating_per_criterion=12, controls_per_criterion=3),
        schedule=Schedule(submission_window="PT1H"),
        time_scale=time_scale,
    )


ACCOUNT = Observer(kind="account", token=SecretRef(env="AUDIT_OBSERVER_TOKEN"))


@pytest.fixture(autouse=True)
def _tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_AUTHOR_TOKEN", AUTHOR)
    monkeypatch.setenv("AUDIT_OBSERVER_TOKEN", SECOND)


def _virtual(tmp: Path, plan: Plan, **config: Any) -> tuple[Store, str, dict[str, Any]]:
    clock = VirtualClock()
    settings = {"token": AUTHOR, "removed_visible_to_author": True, **config}
    app = create_app(load_sandbox_config(default_config_path(), **settings), clock)
    store = Store(tmp / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=httpx.ASGITransport(app)))
    truth: dict[str, Any] = app.state.platform.truth()
    return store, prepared.run_id, truth


def _derivation_problems(store: Store, run_id: str) -> list[str]:
    found = check_derivation(
        store.run(run_id),
        store.probes(run_id),
        store.observations(run_id),
        list(store.exchanges(run_id)),
    )
    return found.problems


@pytest.mark.parametrize(
    ("observer", "author", "decided"),
    [
        ("removed", "visible", "removed"),  # removed for the public: removed
        ("visible", "removed", "visible"),  # the public still sees it: up
        ("gone", "gone", "gone"),
        ("visible", "error", "error"),  # a fault in either view is never evidence
        ("error", "removed", "error"),
        ("unknown", "visible", "unknown"),
        ("removed", "unknown", "unknown"),
    ],
)
def test_the_observers_view_decides_and_a_fault_in_either_is_no_evidence(
    observer: str, author: str, decided: str
) -> None:
    seen = StatusResult(PostState(observer), "o", View.OBSERVER)
    result = both_views(seen, StatusResult(PostState(author), "a"))
    assert result.state is PostState(decided)
    assert result.view is View.OBSERVER and result.author_state is PostState(author)
    faults = {"error", "unknown"}
    assert result.state.is_measured == (observer not in faults and author not in faults)


def test_the_sandbox_shows_a_removed_post_to_its_author_only() -> None:
    clock = VirtualClock()
    config = load_sandbox_config(
        default_config_path(),
        token=AUTHOR,
        observer_tokens=[SECOND],
        anonymous_reads=True,
        removed_visible_to_author=True,
        false_positive_proactive=1.0,
    )
    app = create_app(config, clock)

    async def looks() -> dict[str, int]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sb") as client:
            author = {"Authorization": f"Bearer {AUTHOR}"}
            made = await client.post("/api/v1/posts", json={"text": "hello"}, headers=author)
            path = f"/api/v1/posts/{made.json()['id']}"
            clock.advance(30 * 86400.0)  # long after its (certain) removal
            return {
                "author": (await client.get(path, headers=author)).status_code,
                "observer": (
                    await client.get(path, headers={"Authorization": f"Bearer {SECOND}"})
                ).status_code,
                "public": (await client.get(path)).status_code,
                "stranger": (
                    await client.get(path, headers={"Authorization": "Bearer nobody"})
                ).status_code,
                "observer posts": (
                    await client.post(
                        "/api/v1/posts",
                        json={"text": "x"},
                        headers={"Authorization": f"Bearer {SECOND}"},
                    )
                ).status_code,
            }

    assert asyncio.run(looks()) == {
        "author": 200,
        "observer": 410,
        "public": 410,
        "stranger": 401,
        "observer posts": 401,
    }
    truth = app.state.platform.truth()
    assert truth["removed_visible_to_author"] is True
    assert truth["reads"] == {"author": 1, "observer": 1, "public": 1}
    assert [(p["state"], p["author_view"]) for p in truth["posts"]] == [("removed", "visible")]


def test_an_observer_measures_the_true_removals_where_the_author_is_shown_none(
    tmp_path: Path,
) -> None:
    plan = _plan("http://sandbox.test", ACCOUNT)
    store, run_id, truth = _virtual(tmp_path / "observer", plan, observer_tokens=[SECOND])
    tally = check_against_truth(store, run_id, truth)
    assert tally["removed_in_time"] > 0 and tally["survived"] > 0
    card = scorecard_for(store, run_id)
    views = card.look_views
    assert views is not None and views.decided_by == "observer" and views.observer == "account"
    # every removal the public saw, the author was shown as up: each one a disagreement
    assert views.disagreements > 0 and views.probes_disagreeing > 0
    removed = {p.probe_id for p in card.probes if p.outcome in ("removed_in_time", "removed_late")}
    disagreeing = {p.probe_id for p in card.probes if p.view_disagreements}
    assert removed <= disagreeing
    assert {p.view for p in card.probes if p.looks} == {"observer"}
    assert any("Looks used an observer account" in line for line in card.methodology)
    assert not any(AUTHOR_VIEW_LINE in line for line in card.methodology)
    summary = next(
        line for line in render_markdown(card).splitlines() if line.startswith("| Looks")
    )
    assert f"disagreed on {views.disagreements} of {views.looks} looks (probes " in summary
    listed = [p.probe_id for p in card.probes if p.view_disagreements]  # at most 20 named
    assert all(probe in summary for probe in listed[:20])
    assert not any(probe in summary for probe in listed[20:])
    assert len(listed) <= 20 or f"and {len(listed) - 20} more)" in summary
    page = render_html(card)
    assert "<dt>Looks</dt><dd>decided by an observer account; the author's view" in page
    assert _derivation_problems(store, run_id) == []
    # every post is withdrawn, even those the public no longer saw
    assert all(p["withdrawn_at"] is not None for p in truth["posts"])


def test_without_an_observer_the_methodology_says_looks_used_the_authors_view(
    tmp_path: Path,
) -> None:
    store, run_id, truth = _virtual(tmp_path, _plan("http://sandbox.test", None))
    card = scorecard_for(store, run_id)
    assert any(line.startswith(AUTHOR_VIEW_LINE) for line in card.methodology)
    assert card.look_views is not None and card.look_views.decided_by == "author"
    removed_for_public = [p for p in truth["posts"] if p["removal_at"] is not None]
    assert removed_for_public, "the sandbox removed posts"
    # the author is shown every removed post as visible: not one removal is counted
    assert not any(p.outcome in ("removed_in_time", "removed_late") for p in card.probes)
    assert _derivation_problems(store, run_id) == []


def test_an_anonymous_observer_alone_looks_logged_out(tmp_path: Path) -> None:
    observer = Observer(kind="anonymous", author_view=False)
    store, run_id, truth = _virtual(
        tmp_path, _plan("http://sandbox.test", observer), anonymous_reads=True
    )
    check_against_truth(store, run_id, truth)
    assert truth["reads"]["author"] == 0 and truth["reads"]["public"] > 0
    card = scorecard_for(store, run_id)
    assert card.look_views is not None and not card.look_views.author_view_too
    assert any("Looks used an anonymous observer" in line for line in card.methodology)
    looks = [o for rows in store.observations(run_id).values() for o in rows]
    assert {o.author_result for o in looks if o.action == "status"} == {None}
    assert _derivation_problems(store, run_id) == []


def test_a_look_stored_in_the_wrong_view_fails_verify(tmp_path: Path) -> None:
    plan = _plan("http://sandbox.test", ACCOUNT)
    store, run_id, _ = _virtual(tmp_path, plan, observer_tokens=[SECOND])
    store.close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    with db:
        probe_id = db.execute(
            "SELECT probe_id FROM observations WHERE run_id = ? AND action = 'status'"
            " AND result = 'removed' AND author_result = 'visible' LIMIT 1",
            (run_id,),
        ).fetchone()[0]
        # the forgery: the look claims the author saw the removal, as the author's view decided
        db.execute(
            "UPDATE observations SET view = 'author', author_result = NULL"
            " WHERE run_id = ? AND probe_id = ? AND action = 'status'",
            (run_id, probe_id),
        )
    db.close()
    forged = Store(tmp_path / "audit.sqlite")
    problems = _derivation_problems(forged, run_id)
    assert problems and all(p.startswith(f"probe {probe_id}:") for p in problems)
    assert "author's view, but the run's target asked for the observer's" in problems[0]


def test_a_stored_author_answer_the_ledger_does_not_give_fails_verify(tmp_path: Path) -> None:
    plan = _plan("http://sandbox.test", ACCOUNT)
    store, run_id, _ = _virtual(tmp_path, plan, observer_tokens=[SECOND])
    store.close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    with db:
        changed = db.execute(
            "UPDATE observations SET author_result = 'removed' WHERE run_id = ?"
            " AND action = 'status' AND result = 'removed' AND author_result = 'visible'",
            (run_id,),
        ).rowcount
    db.close()
    assert changed > 0
    problems = _derivation_problems(Store(tmp_path / "audit.sqlite"), run_id)
    assert len(problems) == changed
    assert all("(author view) says 'removed'" in p for p in problems)


# over real HTTP: the command line against `sandbox serve` on loopback -------------------------
@contextmanager
def _served(*extra: str) -> Iterator[str]:
    port = free_port()
    command = audit_command(Path("unused"), "sandbox", "serve", "--port", str(port))
    command += ["--seed", "11", "--time-scale", str(SCALE), "--token-env", "AUDIT_AUTHOR_TOKEN"]
    process = subprocess.Popen(
        [*command, *extra], env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, base_url)
        yield base_url
    finally:
        stop(process)


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str) -> None:
    import time

    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        try:
            if httpx.get(f"{base_url}/_sandbox/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the sandbox at {base_url} did not become healthy")


def _env() -> dict[str, str]:
    return process_env() | {"AUDIT_AUTHOR_TOKEN": AUTHOR, "AUDIT_OBSERVER_TOKEN": SECOND}


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = audit_command(tmp / "ws", "--reports", str(tmp / "reports"), *args)
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)


def _run_id(stdout: str) -> str:
    line = next(x for x in stdout.splitlines() if x.startswith("run "))
    return line.split()[1].rstrip(":")


@pytest.mark.slow
def test_cli_audits_with_and_without_an_observer_against_a_served_sandbox(
    tmp_path: Path,
) -> None:
    flags = ("--observer-token-env", "AUDIT_OBSERVER_TOKEN", "--removed-visible-to-author")
    with _served(*flags) as base_url:
        runs: dict[str, tuple[Path, subprocess.Popen[str]]] = {}
        for name, observer in (("observer", ACCOUNT), ("author", None)):
            folder = tmp_path / name
            folder.mkdir()
            plan_file = write_plan(
                folder / "plan.yaml", _plan(base_url, observer, time_scale=SCALE)
            )
            command = audit_command(folder / "ws", "--reports", str(folder / "reports"))
            command += ["run", "--plan", str(plan_file), "--format", "json"]
            process = subprocess.Popen(
                command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            runs[name] = (folder, process)
        done = {
            name: (folder, *process.communicate(timeout=600))
            for name, (folder, process) in runs.items()
        }
        truth = httpx.get(f"{base_url}/_sandbox/truth", timeout=10).json()
    for name, (_, process) in runs.items():
        assert process.returncode in (0, 1, 3), (name, done[name][2])

    folder, stdout, _ = done["observer"]
    run_id = _run_id(stdout)
    store = Store(folder / "ws" / "audit.sqlite")
    tally = check_against_truth(store, run_id, truth)  # probe by probe
    assert tally["removed_in_time"] > 0
    card = json.loads((folder / "reports" / run_id / "scorecard.json").read_text())
    assert card["look_views"]["decided_by"] == "observer"
    assert card["look_views"]["disagreements"] > 0
    assert not any(line.startswith(AUTHOR_VIEW_LINE) for line in card["methodology"])
    verified = _cli(folder, "verify", run_id)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for path in folder.rglob("*"):  # neither account's token in any file the run wrote
        if path.is_file():
            data = path.read_bytes()
            assert AUTHOR.encode() not in data and SECOND.encode() not in data, path

    folder, stdout, _ = done["author"]
    run_id = _run_id(stdout)
    card = json.loads((folder / "reports" / run_id / "scorecard.json").read_text())
    assert any(line.startswith(AUTHOR_VIEW_LINE) for line in card["methodology"])
    assert card["look_views"]["decided_by"] == "author"
    assert card["counts"].get("removed_in_time", 0) == 0  # the author was shown none removed
    verified = _cli(folder, "verify", run_id)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_store_of_version_3_opens_with_every_look_the_authors(tmp_path: Path) -> None:
    store, run_id, _ = _virtual(tmp_path, _plan("http://sandbox.test", None))
    before = scorecard_for(store, run_id)
    store.close()
    as_version_4(tmp_path / "audit.sqlite")  # the ledger as versions before 5 kept it
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    with db:  # the store as version 3 wrote it: no view columns
        db.execute("ALTER TABLE observations DROP COLUMN author_result")
        db.execute("ALTER TABLE observations DROP COLUMN view")
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.close()
    upgraded = Store(tmp_path / "audit.sqlite")
    looks = [o for rows in upgraded.observations(run_id).values() for o in rows]
    assert looks and {(o.view, o.author_result) for o in looks} == {("author", None)}
    after = scorecard_for(upgraded, run_id)
    assert [p.outcome for p in after.probes] == [p.outcome for p in before.probes]
    assert _derivation_problems(upgraded, run_id) == []
    upgraded.close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    db.close()
    assert version == str(SCHEMA_VERSION)


@pytest.mark.parametrize(
    ("observer", "message"),
    [
        ({"kind": "account"}, "an observer account needs 'observer.token'"),
        ({"kind": "anonymous", "token": {"env": "X"}}, "an anonymous observer has no 'token'"),
        (
            {"kind": "account", "token": {"env": "AUDIT_UNSET_OBSERVER"}},
            "secret 'observer.token' comes from environment variable AUDIT_UNSET_OBSERVER",
        ),
        ({"kind": "spy"}, "'plan.targets.0.observer.kind'"),
    ],
)
def test_a_bad_observer_is_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], observer: dict[str, Any], message: str
) -> None:
    from audit.cli import main

    target = {"name": "sb", "base_url": "http://127.0.0.1:9", "observer": observer}
    plan = {"plan": {"name": "x", "packs": ["vn-superstition"], "targets": [target]}}
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["--workspace", str(tmp_path / "ws"), "run", "--plan", str(plan_file)])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(plan_file) in err
    assert Store(tmp_path / "ws" / "audit.sqlite").runs() == []
