"""Media through declarative profiles: the plan is refused where the target cannot carry a
modality, profiles that would not send the media are refused at load, and the sandbox profile's
base64 media post delivers the probes' own files (checked against what the platform kept)."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
import yaml

from audit.adapters.profile_load import BUILTIN_PROFILES_DIR, load_profile
from audit.cli import main
from audit.clock import VirtualClock
from audit.errors import InputError
from audit.evidence.bundle import verify_store
from audit.media_file import media_file
from audit.plan import Sample, Target
from audit.probe import Probe
from audit.runner import create_runs, execute_run
from audit.sandbox.app import create_app
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.store import Store
from audit.workspace import scorecard_for
from tests.conftest import virtual_plan

SANDBOX_PROFILE = BUILTIN_PROFILES_DIR / "sandbox.yaml"


def profile_data() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load(SANDBOX_PROFILE.read_text(encoding="utf-8"))
    return data


def write_profile(tmp_path: Path, data: dict[str, object], name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


class _Counting(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(404)
        self.end_headers()

    do_POST = do_GET  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def counting_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback server that records every request it is sent."""
    seen: list[str] = []
    handler = type("Handler", (_Counting,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_text_only_profile_with_image_probes_is_refused_before_any_request(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    counting_server: tuple[str, list[str]],
) -> None:
    base_url, seen = counting_server
    data = profile_data()
    del data["media"]
    profile = write_profile(tmp_path, data, "text-only.yaml")
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "plan:\n"
        "  name: media-check\n"
        "  packs: [vn-superstition]\n"
        "  sample: {violating_per_criterion: 4, controls_per_criterion: 1, image_share: 0.5}\n"
        "  targets:\n"
        f"    - {{name: textonly, base_url: '{base_url}', profile: '{profile}'}}\n",
        encoding="utf-8",
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["--workspace", str(tmp_path / "ws"), "run", "--plan", str(plan)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1, err
    assert "textonly" in err and "image" in err and "fix:" in err
    assert "media.image" in err and "image_share: 0" in err
    assert seen == []  # nothing was sent, not even a preflight


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["media"]["image"]["request"]["json"].pop("media"), "never sends the media"),
        (
            lambda d: d["media"]["image"].update(post={"post": "{captured.id}"}),
            "must name the same fields as submit.post",
        ),
        (
            lambda d: d["media"]["image"]["request"].update(rate_limit=2),
            "paced by submit.request.rate_limit",
        ),
        (
            lambda d: d["submit"]["request"].update(content="media", json=None),
            "sends media, which only a media post or upload can",
        ),
        (
            lambda d: d["media"]["image"]["request"].update(
                json=None, multipart={"caption": "{probe.text}"}
            ),
            "a multipart body has one file part",
        ),
        (
            lambda d: d["media"]["image"]["request"]["json"].update(url="{uploaded.uri}"),
            "cannot use {uploaded.uri} here",
        ),
        (
            lambda d: d["media"].update(audio=d["media"]["image"]),
            "media.audio",
        ),
    ],
)
def test_profiles_that_would_not_send_the_media_are_refused(
    tmp_path: Path, change: object, message: str
) -> None:
    data = profile_data()
    # YAML anchors made one object of the three media posts: edit image's own copy
    media = data["media"]
    assert isinstance(media, dict)
    data["media"] = {k: yaml.safe_load(yaml.safe_dump(v)) for k, v in media.items()}
    change(data)  # type: ignore[operator]
    with pytest.raises(InputError) as info:
        load_profile(write_profile(tmp_path, data))
    assert message in str(info.value), str(info.value)


def test_the_sandbox_profile_delivers_each_probes_own_media(tmp_path: Path) -> None:
    """Base64 in the JSON body: the sandbox checks the digest against the bytes and keeps it;
    every kept digest is the probe's media made again, the ledger records it, and verify
    agrees."""
    plan = virtual_plan(violating=6, controls=2)
    (reference,) = plan.targets
    target = Target(name=reference.name, base_url=reference.base_url, profile="sandbox")
    sample = Sample(violating_per_criterion=6, controls_per_criterion=2, image_share=1.0)
    plan = plan.model_copy(update={"targets": [target], "sample": sample})
    clock = VirtualClock()
    app = create_app(load_sandbox_config(default_config_path()), clock)
    store = Store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=httpx.ASGITransport(app)))
    platform = app.state.platform
    rows = [r for r in store.probes(prepared.run_id) if r.probe["modality"] == "image"]
    assert rows
    delivered = store.media_sent(prepared.run_id)
    for row in rows:
        made = media_file(Probe.model_validate(row.probe))
        assert made is not None and row.post_id is not None
        assert platform.posts[row.post_id].media.sha256 == made.sha256
        assert delivered[row.probe_id] == {made.sha256}
    groups = {
        g.value
        for c in scorecard_for(store, prepared.run_id).criteria
        for g in c.breakdowns
        if g.dimension == "modality"
    }
    assert "image" in groups
    assert verify_store(store, prepared.run_id).ok


def test_media_refused_at_upload_were_delivered(tmp_path: Path) -> None:
    """A banner the platform refuses at upload reached it (it saw the file to refuse it): it
    counts in the image figures like any other, never apart as media not shown delivered."""
    from tests.test_profile_sandbox import blocking_config

    plan = virtual_plan(violating=8, controls=0)
    sample = Sample(violating_per_criterion=8, controls_per_criterion=0, image_share=1.0)
    plan = plan.model_copy(update={"sample": sample})
    clock = VirtualClock()
    app = create_app(blocking_config(), clock)
    store = Store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=httpx.ASGITransport(app)))
    rows = [r for r in store.probes(prepared.run_id) if r.probe["modality"] == "image"]
    refused = [r for r in rows if r.outcome == "rejected_at_submission"]
    assert refused  # the sandbox blocked some banners at upload
    delivered = store.media_sent(prepared.run_id)
    assert all(r.probe_id in delivered for r in refused)
    groups = {
        g.value
        for c in scorecard_for(store, prepared.run_id).criteria
        for g in c.breakdowns
        if g.dimension == "modality"
    }
    assert groups == {"image"}
    assert verify_store(store, prepared.run_id).ok


def test_verify_catches_a_forged_media_digest_and_notes_a_run_without_media_records(
    tmp_path: Path,
) -> None:
    """Re-derivation makes each probe's file again: a ledger whose recorded digest is not the
    probe's own media is a problem; a ledger that records no media at all (an older run) is a
    note, never a pass of its media figures (the scorecard counts them apart)."""
    import dataclasses

    from audit.evidence.rederive import check_derivation

    plan = virtual_plan(violating=4, controls=0)
    sample = Sample(violating_per_criterion=4, controls_per_criterion=0, image_share=1.0)
    plan = plan.model_copy(update={"sample": sample})
    clock = VirtualClock()
    app = create_app(load_sandbox_config(default_config_path()), clock)
    store = Store(tmp_path / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    asyncio.run(execute_run(store, prepared.run_id, clock, transport=httpx.ASGITransport(app)))
    run_id = prepared.run_id
    run, probes, observations = store.run(run_id), store.probes(run_id), store.observations(run_id)
    records = list(store.exchanges(run_id))
    assert check_derivation(run, probes, observations, records).problems == []

    carrying = next(i for i, r in enumerate(records) if "media" in r.entry)
    forged = list(records)
    entry = dict(
        forged[carrying].entry, media={**forged[carrying].entry["media"], "sha256": "0" * 64}
    )
    forged[carrying] = dataclasses.replace(forged[carrying], entry=entry)
    problems = check_derivation(run, probes, observations, forged).problems
    assert any("which is not the probe's own media" in p for p in problems), problems

    stripped = [
        dataclasses.replace(r, entry={k: v for k, v in r.entry.items() if k != "media"})
        for r in records
    ]
    derived = check_derivation(run, probes, observations, stripped)
    assert derived.problems == []
    assert any("records no media a request carried" in n for n in derived.notes), derived.notes
