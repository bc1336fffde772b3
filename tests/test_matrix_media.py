"""Image, speech and video probes through the built-in `matrix` profile, against a real Synapse.

Each media probe is uploaded to the homeserver's media repository and posted as an m.image,
m.audio or m.video event referring to its mxc:// URI. The homeserver's moderation module
decides on the event's body, which for a media event is the file's name: the test knows every
probe's file in advance (media are made from the pack and seed alone), so it tells the module
to reject one
criterion's files at send time, redact another's, and leave the third alone. Afterwards every
uploaded file is downloaded from the homeserver and its digest compared with the probe's own
media, every event is redacted, and the scorecard agrees with the module's log probe by probe.

Needs .venv-synapse (scripts/install-synapse.sh), espeak-ng for speech and ffmpeg for video.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from audit.adapters.profile import decode_post_id
from audit.clock import SystemClock
from audit.evidence.bundle import verify_store
from audit.media_file import media_file
from audit.packs import load_pack, resolve_pack
from audit.plan import ActionLimits, Plan, Sample, Schedule, Target
from audit.polling import PollingPolicy
from audit.probe import Probe
from audit.runner import create_runs, execute_run
from audit.scorecard import NOT_DELIVERED, Scorecard
from audit.store import Store
from audit.synthesis import SampleSize, synthesize
from audit.workspace import scorecard_for
from tests.synapse.harness import ModerationPolicy, running_synapse
from tests.test_matrix_audit import (
    REDACTED,
    REJECTED,
    TIME_SCALE,
    TOKEN_ENV,
    Homeserver,
    exactly,
    get_event,
    require_synapse,
    set_up,
)

pytestmark = pytest.mark.slow

SEED = 23
VIOLATING, CONTROLS = 4, 1
SHARES = {"image_share": 0.4, "speech_share": 0.3, "video_share": 0.3}


def require_media_programs() -> None:
    for program, package in (("espeak-ng", "espeak-ng"), ("ffmpeg", "ffmpeg")):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (Debian: apt-get install {package})")


def planned_probes() -> list[Probe]:
    pack = load_pack(resolve_pack("vn-superstition"))
    size = SampleSize(VIOLATING, CONTROLS, **SHARES)  # type: ignore[arg-type]
    return synthesize(pack, SEED, size, run_key="policy")


def body_of(probe: Probe) -> str:
    """What the event's body holds: a media file's name, or a text probe's text."""
    media = media_file(probe)
    return probe.text if media is None else media.name


def moderation_policy(probes: list[Probe]) -> ModerationPolicy:
    names = {p.probe_id: body_of(p) for p in probes}
    chosen = {
        c: {
            names[p.probe_id]
            for p in probes
            if p.criterion_id == c and p.expectation == "violating"
        }
        for c in (REJECTED, REDACTED)
    }
    return ModerationPolicy(
        reject_patterns=exactly(chosen[REJECTED]),
        redact_patterns=exactly(chosen[REDACTED]),
        redact_delay_seconds=1.0,
    )


@dataclass(frozen=True)
class MediaAudit:
    home: Homeserver
    store: Store
    run_id: str
    card: Scorecard
    probes: dict[str, Probe]


@pytest.fixture(scope="module")
def media_audit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaAudit]:
    require_synapse()
    require_media_programs()
    probes = planned_probes()
    assert {"image", "speech", "video"} <= {p.modality.value for p in probes}
    policy = moderation_policy(probes)
    with running_synapse(tmp_path_factory.mktemp("synapse-media"), policy) as server:
        home = set_up(server, policy)
        os.environ[TOKEN_ENV] = home.author_token
        try:
            target = Target(
                name="synapse",
                base_url=server.base_url,
                profile="matrix",
                variables={"room_id": home.room_id},
                token_env=TOKEN_ENV,
                rate_limit=None,
                actions={
                    "submit": ActionLimits(rate_limit=50),
                    "withdraw": ActionLimits(rate_limit=50),
                },
            )
            plan = Plan(
                name="matrix-media",
                packs=["vn-superstition"],
                targets=[target],
                seed=SEED,
                sample=Sample(
                    violating_per_criterion=VIOLATING, controls_per_criterion=CONTROLS, **SHARES
                ),
                schedule=Schedule(submission_window="PT2H"),
                polling=PollingPolicy(requests=8, grace_polls=1),
                time_scale=TIME_SCALE,
            )
            store = Store(tmp_path_factory.mktemp("media-ws") / "audit.sqlite")
            clock = SystemClock()
            (prepared,) = create_runs(store, plan, None, clock)
            asyncio.run(execute_run(store, prepared.run_id, clock))
            card = scorecard_for(store, prepared.run_id)
            by_id = {
                row.probe_id: Probe.model_validate(row.probe)
                for row in store.probes(prepared.run_id)
            }
            yield MediaAudit(home, store, prepared.run_id, card, by_id)
            store.close()
        finally:
            os.environ.pop(TOKEN_ENV, None)


def uploads(audit: MediaAudit) -> dict[str, list[str]]:
    """The mxc:// URIs the homeserver gave for each probe's uploads, from the ledger."""
    found: dict[str, list[str]] = {}
    for record in audit.store.exchanges(audit.run_id):
        if record.entry["action"] == "upload" and record.entry["status"] == 200:
            uri = json.loads(record.entry["response_body"])["content_uri"]
            assert record.probe_id is not None
            found.setdefault(record.probe_id, []).append(uri)
    return found


def test_every_media_probes_bytes_are_on_the_homeserver(media_audit: MediaAudit) -> None:
    found = uploads(media_audit)
    media = {i for i, p in media_audit.probes.items() if p.modality.value != "text"}
    assert set(found) == media  # every media probe uploaded its file, and only those
    headers = {"Authorization": f"Bearer {media_audit.home.author_token}"}
    for probe_id, uris in found.items():
        expected = media_file(media_audit.probes[probe_id])
        assert expected is not None
        for uri in uris:
            server, media_id = uri.removeprefix("mxc://").split("/", 1)
            base = media_audit.home.server.base_url
            url = f"{base}/_matrix/client/v1/media/download/{server}/{media_id}"
            response = httpx.get(url, headers=headers, timeout=10.0)
            assert response.status_code == 200, response.text
            assert hashlib.sha256(response.content).hexdigest() == expected.sha256


def test_the_scorecard_agrees_with_the_moderation_log(media_audit: MediaAudit) -> None:
    log = media_audit.home.server.moderation_records()
    by_body = {record["body_sha256"]: record for record in log}
    expected = {"rejected": "rejected_at_submission", "redacted": "removed_in_time"}
    for probe in media_audit.card.probes:
        name = body_of(media_audit.probes[probe.probe_id])
        record = by_body[hashlib.sha256(name.encode()).hexdigest()]
        decision = record["decision"]
        if decision == "left":
            wanted = "kept" if probe.expectation == "control" else "survived"
        else:
            wanted = expected[decision]
        assert probe.outcome == wanted, (probe.criterion_id, decision, probe.outcome)
    media = [p for p in media_audit.probes.values() if p.modality.value != "text"]
    digests = [hashlib.sha256(body_of(p).encode()).hexdigest() for p in media]
    decisions = {by_body[digest]["decision"] for digest in digests}
    assert decisions == {"rejected", "redacted", "left"}


def test_media_figures_count_only_delivered_media(media_audit: MediaAudit) -> None:
    groups = {
        g.value
        for card in media_audit.card.criteria
        for g in card.breakdowns
        if g.dimension == "modality"
    }
    assert {"image", "speech", "video"} <= groups <= {"image", "speech", "video", "text"}
    assert NOT_DELIVERED not in " ".join(groups)
    assert any("media files" in line for line in media_audit.card.methodology)


def test_every_media_event_is_redacted_and_the_run_verifies(media_audit: MediaAudit) -> None:
    posted = [r for r in media_audit.store.probes(media_audit.run_id) if r.post_id is not None]
    assert posted
    for row in posted:
        assert row.withdrawn_at is not None, row
        assert row.post_id is not None
        post = decode_post_id(row.post_id, ["room_id", "event_id"])
        event = get_event(media_audit.home, post["room_id"], post["event_id"])
        assert event["content"] == {} and "redacted_because" in event["unsigned"]
    verified = verify_store(media_audit.store, media_audit.run_id)
    assert verified.ok, verified.problems
