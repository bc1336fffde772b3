"""Smoke test of the real-Synapse harness and its moderation module.

Needs .venv-synapse (scripts/install-synapse.sh). Without it the test is skipped, except when
the CI environment variable is set, where a missing Synapse is a failure.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.synapse.harness import (
    ModerationPolicy,
    SynapseNotInstalledError,
    SynapseServer,
    SynapseStartError,
    create_room,
    join_room,
    register_user,
    room_path,
    running_synapse,
    synapse_python,
    synapse_venv,
)

pytestmark = pytest.mark.slow

REDACT_DELAY_SECONDS = 2.0
REJECTED_BODY = "Xem bói online, giải hạn trọn gói 500k"
REDACTED_BODY = "Bùa yêu linh nghiệm, chuyển khoản trước"
BENIGN_BODY = "Lịch họp tổ dân phố tuần này"
POLICY = ModerationPolicy(
    reject_patterns=(r"(?i)giải hạn",),
    redact_patterns=(r"(?i)bùa yêu",),
    redact_delay_seconds=REDACT_DELAY_SECONDS,
)


@dataclass(frozen=True)
class Room:
    server: SynapseServer
    room_id: str
    author_token: str
    moderator_token: str


def require_synapse() -> None:
    """Skip when Synapse is not installed, but fail in CI, where it must be."""
    if synapse_python() is not None:
        return
    reason = f"Synapse is not installed ({synapse_venv()} missing): run scripts/install-synapse.sh"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    require_synapse()
    with running_synapse(tmp_path_factory.mktemp("synapse"), POLICY) as server:
        yield server


@pytest.fixture(scope="module")
def room(synapse: SynapseServer) -> Room:
    author = register_user(synapse, "author", "author-password")
    moderator = register_user(synapse, POLICY.moderator_localpart, "moderator-password")
    room_id = create_room(
        synapse,
        author,
        invite=[synapse.moderator_user_id],
        power_levels={synapse.moderator_user_id: 50},
    )
    join_room(synapse, moderator, room_id)
    return Room(synapse, room_id, author, moderator)


def send_message(room: Room, body: str, txn_id: str) -> httpx.Response:
    url = f"{room.server.base_url}{room_path(room.room_id)}/send/m.room.message/{txn_id}"
    headers = {"Authorization": f"Bearer {room.author_token}"}
    return httpx.put(url, json={"msgtype": "m.text", "body": body}, headers=headers, timeout=10.0)


def get_event(room: Room, event_id: str) -> dict[str, Any]:
    url = f"{room.server.base_url}{room_path(room.room_id)}/event/{event_id}"
    headers = {"Authorization": f"Bearer {room.author_token}"}
    response = httpx.get(url, headers=headers, timeout=10.0)
    assert response.status_code == 200, response.text
    event: dict[str, Any] = response.json()
    return event


def wait_for_redaction(room: Room, event_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    event = get_event(room, event_id)
    while "redacted_because" not in event.get("unsigned", {}) and time.monotonic() < deadline:
        time.sleep(0.2)
        event = get_event(room, event_id)
    return event


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_server_listens_on_loopback_only(synapse: SynapseServer) -> None:
    response = httpx.get(f"{synapse.base_url}/_matrix/client/versions", timeout=5.0)
    assert response.status_code == 200
    assert synapse.base_url.startswith("http://127.0.0.1:")
    assert synapse.pid > 0


def test_moderation_rejects_redacts_and_leaves(room: Room) -> None:
    rejected = send_message(room, REJECTED_BODY, f"t-{uuid.uuid4().hex}")
    assert rejected.status_code == 403, rejected.text
    assert rejected.json()["errcode"] == "M_FORBIDDEN"

    redact_txn, benign_txn = f"t-{uuid.uuid4().hex}", f"t-{uuid.uuid4().hex}"
    to_redact = send_message(room, REDACTED_BODY, redact_txn)
    benign = send_message(room, BENIGN_BODY, benign_txn)
    assert to_redact.status_code == 200, to_redact.text
    assert benign.status_code == 200, benign.text
    redact_id, benign_id = to_redact.json()["event_id"], benign.json()["event_id"]
    sent_at = time.time()

    # Idempotency: the same transaction id gives back the same event.
    assert send_message(room, BENIGN_BODY, benign_txn).json()["event_id"] == benign_id
    assert get_event(room, redact_id)["content"]["body"] == REDACTED_BODY

    redacted = wait_for_redaction(room, redact_id, timeout=REDACT_DELAY_SECONDS + 15)
    assert redacted["content"] == {}
    because = redacted["unsigned"]["redacted_because"]
    assert because["sender"] == room.server.moderator_user_id
    assert time.time() - sent_at >= REDACT_DELAY_SECONDS - 0.5

    kept = get_event(room, benign_id)
    assert kept["content"]["body"] == BENIGN_BODY
    assert "redacted_because" not in kept.get("unsigned", {})

    records = {r["body_sha256"]: r for r in room.server.moderation_records()}
    assert records[sha256(REJECTED_BODY)]["decision"] == "rejected"
    assert records[sha256(REDACTED_BODY)]["decision"] == "redacted"
    assert records[sha256(REDACTED_BODY)]["event_id"] == redact_id
    assert records[sha256(REDACTED_BODY)]["redaction_event_id"] == because["event_id"]
    assert records[sha256(BENIGN_BODY)]["decision"] == "left"
    assert records[sha256(BENIGN_BODY)]["event_id"] == benign_id
    assert len(room.server.moderation_records()) == 3


def test_bad_module_config_fails_fast_with_log_tail(tmp_path: Path) -> None:
    require_synapse()
    bad = ModerationPolicy(reject_patterns=("(unclosed",))
    started = time.monotonic()
    with (
        pytest.raises(SynapseStartError, match="Synapse exited") as excinfo,
        running_synapse(tmp_path, bad),
    ):
        pass
    assert "reject_patterns" in str(excinfo.value)  # the module's error, from the log tail
    assert time.monotonic() - started < 30


def test_missing_venv_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNAPSE_VENV", str(tmp_path / "nowhere"))
    with (
        pytest.raises(SynapseNotInstalledError, match=r"install-synapse\.sh"),
        running_synapse(tmp_path),
    ):
        pass
