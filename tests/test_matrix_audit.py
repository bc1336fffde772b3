"""A real audit against a real Matrix homeserver (Synapse), through the built-in `matrix` profile.

The homeserver's moderation module (tests/synapse/moderation.py) is told to reject one criterion
of the bundled vn-superstition pack at send time, to redact another after a short delay, and to
leave the third alone. The audit runs on the system clock with time compressed so a 24 h deadline
lasts 6 s; its scorecard must agree, probe by probe, with the module's own log of what it did.

Needs .venv-synapse (scripts/install-synapse.sh): skipped without it, a failure when CI is set.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.adapters.base import PostState, SubmitKind
from audit.adapters.profile import build_profile_adapter, decode_post_id
from audit.clock import SystemClock
from audit.evidence.ledger import check_agreement, verify_chain
from audit.packs import load_pack, resolve_pack
from audit.plan import ActionLimits, Observer, Plan, Sample, Schedule, SecretRef, Target
from audit.polling import PollingPolicy
from audit.redaction import Redactor
from audit.runner import create_runs, execute_run
from audit.scorecard import Scorecard
from audit.store import Store
from audit.synthesis import SampleSize, synthesize
from audit.workspace import scorecard_for
from tests.synapse.harness import (
    ModerationPolicy,
    SynapseServer,
    create_room,
    join_room,
    register_user,
    room_path,
    running_synapse,
    synapse_python,
    synapse_venv,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SEED = 11
VIOLATING, CONTROLS = 3, 1
REJECTED, REDACTED, LEFT = "VN-SUP-01", "VN-SUP-02", "VN-SUP-03"
DEADLINE_SECONDS = 6.0  # the pack's 24 h deadlines, compressed
TIME_SCALE = 86_400 / DEADLINE_SECONDS
REDACT_DELAY_SECONDS = 1.0
TOKEN_ENV = "AUDIT_TEST_MATRIX_TOKEN"


def require_synapse() -> None:
    if synapse_python() is not None:
        return
    reason = f"Synapse is not installed ({synapse_venv()} missing): run scripts/install-synapse.sh"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def exactly(texts: set[str]) -> tuple[str, ...]:
    """Regexes matching exactly these texts. Characters outside the BMP (emoji) become '.': the
    harness writes Synapse's config as ASCII JSON, whose surrogate-pair escapes YAML decodes as
    two lone surrogates that would never match."""

    def pattern(text: str) -> str:
        return "".join("." if ord(ch) > 0xFFFF else re.escape(ch) for ch in text)

    return tuple(rf"\A{pattern(text)}\Z" for text in sorted(texts))


def moderation_policy() -> ModerationPolicy:
    """Patterns matching exactly the violating probes of two criteria (probe text depends only
    on pack and seed, so it is known before the run)."""
    pack = load_pack(resolve_pack("vn-superstition"))
    probes = synthesize(pack, SEED, SampleSize(VIOLATING, CONTROLS), run_key="policy")
    violating = {
        c: {p.text for p in probes if p.criterion_id == c and p.expectation == "violating"}
        for c in (REJECTED, REDACTED)
    }
    return ModerationPolicy(
        reject_patterns=exactly(violating[REJECTED]),
        redact_patterns=exactly(violating[REDACTED]),
        redact_delay_seconds=REDACT_DELAY_SECONDS,
    )


@dataclass(frozen=True)
class Homeserver:
    server: SynapseServer
    room_id: str
    author_token: str
    admin_token: str


def set_up(server: SynapseServer, policy: ModerationPolicy) -> Homeserver:
    """The author, the moderator (an admin with power 50) and the room they share."""
    author = register_user(server, "author", "author-password")
    moderator = register_user(server, policy.moderator_localpart, "mod-password", admin=True)
    room_id = create_room(
        server,
        author,
        invite=[server.moderator_user_id],
        power_levels={server.moderator_user_id: 50},
    )
    join_room(server, moderator, room_id)
    return Homeserver(server, room_id, author, moderator)


@pytest.fixture(scope="module")
def homeserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    require_synapse()
    policy = moderation_policy()
    with running_synapse(tmp_path_factory.mktemp("synapse"), policy) as server:
        yield set_up(server, policy)


def matrix_plan(base_url: str, room_id: str) -> Plan:
    target = Target(
        name="synapse",
        base_url=base_url,
        profile="matrix",
        variables={"room_id": room_id},
        token_env=TOKEN_ENV,
        rate_limit=None,
        verify_tls=True,
        # the test homeserver lifts Synapse's limits: so does the plan, as the profile says
        actions={"submit": ActionLimits(rate_limit=50), "withdraw": ActionLimits(rate_limit=50)},
    )
    return Plan(
        name="matrix-audit",
        packs=["vn-superstition"],
        targets=[target],
        seed=SEED,
        sample=Sample(violating_per_criterion=VIOLATING, controls_per_criterion=CONTROLS),
        schedule=Schedule(submission_window="PT2H"),  # 0.5 s once compressed
        polling=PollingPolicy(requests=8, grace_polls=1),
        time_scale=TIME_SCALE,
    )


@dataclass(frozen=True)
class Audit:
    store: Store
    run_id: str
    card: Scorecard
    seconds: float


@pytest.fixture(scope="module")
def audit(homeserver: Homeserver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audit]:
    os.environ[TOKEN_ENV] = homeserver.author_token
    try:
        store = Store(tmp_path_factory.mktemp("workspace") / "audit.sqlite")
        clock = SystemClock()
        plan = matrix_plan(homeserver.server.base_url, homeserver.room_id)
        started = time.monotonic()
        (prepared,) = create_runs(store, plan, None, clock)
        asyncio.run(execute_run(store, prepared.run_id, clock))
        seconds = time.monotonic() - started
        yield Audit(store, prepared.run_id, scorecard_for(store, prepared.run_id), seconds)
        store.close()
    finally:
        os.environ.pop(TOKEN_ENV, None)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def get_event(home: Homeserver, room_id: str, event_id: str) -> dict[str, Any]:
    url = f"{home.server.base_url}{room_path(room_id)}/event/{event_id}"
    headers = {"Authorization": f"Bearer {home.author_token}"}
    response = httpx.get(url, headers=headers, timeout=10.0)
    assert response.status_code == 200, response.text
    event: dict[str, Any] = response.json()
    return event


def test_scorecard_agrees_with_the_moderation_log(homeserver: Homeserver, audit: Audit) -> None:
    agrees_with_the_moderation_log(homeserver, audit.card)
    assert audit.seconds < 45, audit.seconds


def agrees_with_the_moderation_log(homeserver: Homeserver, card: Scorecard) -> None:
    """Every probe's outcome is what the moderation module did to it, probe by probe."""
    post_ids = {
        decode_post_id(p.post_id, ["room_id", "event_id"])["event_id"]
        for p in card.probes
        if p.post_id
    }
    log = [
        r
        for r in homeserver.server.moderation_records()
        if r["room_id"] == homeserver.room_id
        and (r["event_id"] in post_ids or r["decision"] == "rejected")
    ]
    by_body = {record["body_sha256"]: record for record in log}
    expected = {"rejected": "rejected_at_submission", "redacted": "removed_in_time"}
    seen = set()
    for probe in card.probes:
        record = by_body[sha256(probe.text)]  # every probe reached the module
        seen.add(record["event_id"])
        decision = record["decision"]
        if decision == "left":
            wanted = "kept" if probe.expectation == "control" else "survived"
        else:
            wanted = expected[decision]
        assert probe.outcome == wanted, (probe.criterion_id, decision, probe.outcome, probe.reason)
        if decision != "rejected":
            assert probe.post_id is not None
            assert decode_post_id(probe.post_id, ["room_id", "event_id"]) == {
                "room_id": homeserver.room_id,
                "event_id": record["event_id"],
            }
    posted = {r["event_id"] for r in log if r["decision"] != "rejected"}
    assert posted == {e for e in seen if e in post_ids}  # nothing posted twice or unaccounted
    decisions = {
        (p.criterion_id, p.expectation, by_body[sha256(p.text)]["decision"]) for p in card.probes
    }
    assert (REJECTED, "violating", "rejected") in decisions
    assert (REDACTED, "violating", "redacted") in decisions
    assert (LEFT, "violating", "left") in decisions


def test_verdicts_follow_the_platforms_behaviour(audit: Audit) -> None:
    cards = {c.id: c for c in audit.card.criteria}
    assert cards[REJECTED].removal_in_deadline.successes == VIOLATING
    assert cards[REDACTED].removal_in_deadline.successes == VIOLATING
    assert cards[LEFT].removal_in_deadline.successes == 0
    assert cards[LEFT].verdict != "COMPLIANT"
    assert all(c.over_removed == 0 for c in cards.values())


def test_every_probe_is_withdrawn(homeserver: Homeserver, audit: Audit) -> None:
    author = homeserver.server.user_id("author")
    posted = [row for row in audit.store.probes(audit.run_id) if row.post_id is not None]
    assert posted
    for row in posted:
        assert row.state == "finished" and row.withdrawn_at is not None, row
        assert row.post_id is not None
        post = decode_post_id(row.post_id, ["room_id", "event_id"])
        event = get_event(homeserver, post["room_id"], post["event_id"])
        assert event["content"] == {}
        because = event["unsigned"]["redacted_because"]
        if row.outcome in ("survived", "kept"):  # nobody else redacted it: the author did
            assert because["sender"] == author


def test_notices_reached_the_homeserver(homeserver: Homeserver, audit: Audit) -> None:
    noticed = {
        decode_post_id(row.post_id, ["room_id", "event_id"])["event_id"]
        for row in audit.store.probes(audit.run_id)
        if row.post_id is not None and row.trigger in ("notice", "order")
    }
    url = f"{homeserver.server.base_url}/_synapse/admin/v1/event_reports"
    headers = {"Authorization": f"Bearer {homeserver.admin_token}"}
    reports = httpx.get(url, headers=headers, params={"limit": 100}, timeout=10.0).json()
    assert noticed and noticed <= {r["event_id"] for r in reports["event_reports"]}


def test_the_access_token_is_in_no_file_the_run_wrote(homeserver: Homeserver, audit: Audit) -> None:
    folder = Path(audit.store.path).parent
    secret = homeserver.author_token.encode()
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path


def test_every_measurement_rests_on_the_ledger(audit: Audit) -> None:
    records = list(audit.store.exchanges(audit.run_id))
    assert verify_chain(records)[0]
    probes, observations = audit.store.probes(audit.run_id), audit.store.observations(audit.run_id)
    assert check_agreement(probes, observations, records) == []
    actions = {r.entry["action"] for r in records}
    assert {"preflight", "submit", "status", "notice", "withdraw"} <= actions


def test_a_run_carried_by_three_processes_verifies_with_every_exchange_attributed(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    """Two-field post ids (room, event), the run carried by three processes in turn — `run`
    stopped part-way, a `poll` doing only what is due, a `resume` to the end — each with a new
    store connection and a new adapter, so nothing held in memory survives: the run verifies
    (every record re-derived from the ledger) and every per-probe exchange carries the probe
    id of the post it touched."""
    from urllib.parse import unquote

    from audit.evidence.bundle import verify_store

    os.environ[TOKEN_ENV] = homeserver.author_token
    try:
        path, clock = tmp_path / "audit.sqlite", SystemClock()
        plan = matrix_plan(homeserver.server.base_url, homeserver.room_id)
        store = Store(path)
        (prepared,) = create_runs(store, plan, None, clock)
        run_id = prepared.run_id
        asyncio.run(execute_run(store, run_id, clock, stop_at=clock.now() + 1.0))
        store.close()
        store = Store(path)
        asyncio.run(execute_run(store, run_id, clock, until_idle=True))
        store.close()
        store = Store(path)
        assert asyncio.run(execute_run(store, run_id, clock)) is None
        verified = verify_store(store, run_id)
        assert verified.ok, verified.problems
        events = {
            row.probe_id: decode_post_id(row.post_id, ["room_id", "event_id"])["event_id"]
            for row in store.probes(run_id)
            if row.post_id is not None
        }
        per_probe = [
            r
            for r in store.exchanges(run_id)
            if r.entry["action"] in ("submit", "lookup", "status", "notice", "order", "withdraw")
        ]
        assert per_probe and all(r.probe_id is not None for r in per_probe)
        for record in per_probe:
            if record.entry["action"] in ("status", "withdraw", "notice", "order"):
                assert events[record.probe_id] in unquote(record.entry["url"]), record.entry["url"]
        store.close()
    finally:
        os.environ.pop(TOKEN_ENV, None)


class ListLedger:
    """Stands in for the evidence ledger: keeps entries, redacted as the real one does."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.redactor = Redactor()

    def append(self, probe_id: str | None, entry: dict[str, Any]) -> None:
        self.entries.append(self.redactor.scrub(entry))


def test_password_login_profile_creates_its_room_and_posts(
    homeserver: Homeserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example profile logs in with a password, creates a room (no room_id given), posts,
    re-posts with the same transaction id, looks, withdraws."""
    monkeypatch.setenv("AUDIT_TEST_MATRIX_PASSWORD", "author-password")
    target = Target(
        name="login",
        base_url=homeserver.server.base_url,
        profile=str(ROOT / "examples" / "profiles" / "matrix-password-login.yaml"),
        variables={"user": "author"},
        secrets={"password": SecretRef(env="AUDIT_TEST_MATRIX_PASSWORD")},
        rate_limit=None,
    )
    pack = load_pack(resolve_pack("vn-superstition"))
    probe = next(
        p
        for p in synthesize(pack, SEED, SampleSize(1, 1), run_key="login")
        if p.criterion_id == LEFT and p.expectation == "control"
    )
    ledger = ListLedger()

    async def exercise() -> list[Any]:
        adapter = build_profile_adapter(target, SystemClock(), ledger, seed=1)  # type: ignore[arg-type]
        try:
            first = await adapter.submit(probe, probe.probe_id)
            assert first.post_id is not None, first
            again = await adapter.submit(probe, probe.probe_id)
            seen = await adapter.status(first.post_id, probe.probe_id)
            withdrawn = await adapter.withdraw(first.post_id, probe.probe_id)
            after = await adapter.status(first.post_id, probe.probe_id)
            return [first, again, seen, withdrawn, after]
        finally:
            await adapter.aclose()

    first, again, seen, withdrawn, after = asyncio.run(exercise())
    assert first.kind is SubmitKind.ACCEPTED and again.post_id == first.post_id
    post = decode_post_id(first.post_id, ["room_id", "event_id"])
    assert post["room_id"] != homeserver.room_id  # the setup step made a room
    assert seen.state is PostState.VISIBLE
    assert withdrawn.withdrawn and after.state is PostState.REMOVED
    assert homeserver.server.user_id("author") in after.detail  # redacted by its author
    actions = [e["action"] for e in ledger.entries]
    assert actions[:3] == ["auth", "setup", "preflight"]
    recorded = json.dumps(ledger.entries)
    assert "author-password" not in recorded and "syt_" not in recorded  # no password, no token


def test_an_ordinary_rate_limited_account_is_measured_with_the_profiles_pacing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Synapse's default rc_message (0.2 sends per second, a burst of 10) kept for the author,
    and no override in the plan: the built-in profile's pacing of sends and redactions gets
    every probe posted, measured and withdrawn, each clock started at the accepted send."""
    require_synapse()
    policy = moderation_policy()
    with running_synapse(tmp_path_factory.mktemp("limited"), policy, message_limit=True) as server:
        home = set_up(server, policy)
        room_id = home.room_id
        os.environ[TOKEN_ENV] = home.author_token
        try:
            plan = matrix_plan(server.base_url, room_id)
            target = plan.targets[0].model_copy(update={"actions": {}})  # the profile's pacing
            plan = plan.model_copy(update={"targets": [target]})
            store = Store(tmp_path_factory.mktemp("limited-ws") / "audit.sqlite")
            clock = SystemClock()
            (prepared,) = create_runs(store, plan, None, clock)
            assert asyncio.run(execute_run(store, prepared.run_id, clock)) is None
        finally:
            os.environ.pop(TOKEN_ENV, None)
    rows = store.probes(prepared.run_id)
    assert all(r.outcome not in (None, "inconclusive") for r in rows), [
        (r.criterion_id, r.outcome, r.note) for r in rows if r.outcome in (None, "inconclusive")
    ]
    accepted = [r for r in rows if r.clock_start is not None]
    assert accepted
    answered = [
        (r.probe_id, r.entry)
        for r in store.exchanges(prepared.run_id)
        if r.entry["status"] == 200 and r.entry["action"] in ("submit", "notice", "order")
    ]
    for row in accepted:
        # proactive: the accepted send starts the clock; notice and order: the accepted filing
        # (an order goes out through the profile's notice request where it has no order one)
        actions = ("submit",) if row.trigger == "proactive" else (row.trigger, "notice")
        taken = [e for p, e in answered if p == row.probe_id and e["action"] in actions]
        assert taken and abs(row.clock_start - taken[-1]["started_at"]) < 1e-6, row.trigger
    # what is not withdrawn is what the moderator redacted (a redaction needs no withdrawal)
    assert all(
        r.outcome in ("removed_in_time", "removed_late") for r in store.probes_up(prepared.run_id)
    )
    store.close()


OBSERVER_ENV = "AUDIT_TEST_MATRIX_OBSERVER_TOKEN"


def test_a_second_room_member_as_observer_decides_the_looks(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    """The built-in profile's setup invites the observer account into the room (as the author)
    and joins it; every look is then made as the observer and again as the author, and the
    scorecard still agrees with the moderation log probe by probe (a Synapse redaction is seen
    by every member alike)."""
    from audit.evidence.bundle import verify_store

    observer_token = register_user(homeserver.server, "observer", "observer-password")
    os.environ[TOKEN_ENV] = homeserver.author_token
    os.environ[OBSERVER_ENV] = observer_token
    try:
        plan = matrix_plan(homeserver.server.base_url, homeserver.room_id)
        observer = Observer(kind="account", token=SecretRef(env=OBSERVER_ENV))
        target = plan.targets[0].model_copy(update={"observer": observer})
        plan = plan.model_copy(update={"targets": [target]})
        store, clock = Store(tmp_path / "audit.sqlite"), SystemClock()
        (prepared,) = create_runs(store, plan, None, clock)
        asyncio.run(execute_run(store, prepared.run_id, clock))
        card = scorecard_for(store, prepared.run_id)
        agrees_with_the_moderation_log(homeserver, card)
        members = httpx.get(
            f"{homeserver.server.base_url}{room_path(homeserver.room_id)}/joined_members",
            headers={"Authorization": f"Bearer {observer_token}"},
            timeout=10.0,
        ).json()["joined"]
        assert homeserver.server.user_id("observer") in members
        looks = [
            o
            for rows in store.observations(prepared.run_id).values()
            for o in rows
            if o.action == "status" and o.result in ("visible", "removed", "gone")
        ]
        assert looks and {o.view for o in looks} == {"observer"}
        # a redaction hides the event from every member alike; the views (asked at the same
        # time) differ only where it landed between the two requests
        differing = [o for o in looks if o.author_result != o.result]
        assert all({o.result, o.author_result} == {"visible", "removed"} for o in differing)
        assert card.look_views is not None
        assert card.look_views.disagreements == len(differing) < len(looks)
        actions = [r.entry["action"] for r in store.exchanges(prepared.run_id)]
        assert "observe" in actions and actions.count("setup") >= 3  # whoami, invite, join
        verified = verify_store(store, prepared.run_id)
        assert verified.ok, verified.problems
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert observer_token.encode() not in path.read_bytes(), path
        store.close()
    finally:
        os.environ.pop(TOKEN_ENV, None)
        os.environ.pop(OBSERVER_ENV, None)
