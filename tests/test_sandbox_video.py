"""Video posts on the reference sandbox: upload checks, detection per modality, through a run.

A video is seen by the simulated image classifier (what is on screen, and when) and by the
simulated speech classifier (what is in the track), each at the rule's own factor; the adapter
names the video's variant in X-Sandbox-Simulated-Variants so the simulator knows where the
text is.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.adapters.base import SubmitKind
from audit.adapters.sandbox import VARIANTS_HEADER
from audit.clock import VirtualClock
from audit.packs import Modality, load_pack
from audit.plan import Sample
from audit.probe import Probe
from audit.probe_media import probe_media
from audit.sandbox.app import BadPost, create_app, parse_submission
from audit.sandbox.moderation import Media, SandboxConfig, Submission, decide_post
from audit.sandbox.state import record_from_json, record_json
from audit.store import Store
from audit.synthesis import SampleSize, synthesize
from audit.workspace import scorecard_for
from tests.test_evasion_support import run_virtual, sandbox_config, sandbox_plan
from tests.test_media import require_program
from tests.test_packs_corpus import PLACEHOLDER, pack_data, write_pack
from tests.test_sandbox_media import (
    DIVINATION,
    adapter_for,
    image_probe,
    media_body,
    post,
    simulated,
    submit,
)

MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 16
RITUAL = "Thầy nhận cúng sao giải hạn trọn gói 1.500.000đ, nhắn Zalo để đặt lịch"


def named(*variants: str) -> dict[str, str]:
    return {VARIANTS_HEADER.lower(): ",".join(variants)}


# --- upload checks ----------------------------------------------------------------------------


def test_a_video_post_takes_an_mp4_and_keeps_its_variants() -> None:
    body = media_body(MP4, "video/mp4", "video")
    headers = {"idempotency-key": "k", **simulated(DIVINATION), **named("video_text_last")}
    sub = parse_submission(body, headers)
    digest = hashlib.sha256(MP4).hexdigest()
    assert sub.modality == "video"
    assert sub.media == Media("video/mp4", digest, len(MP4), DIVINATION, ("video_text_last",))


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (media_body(b"RIFF\x00\x00\x00\x00WAVE", "video/mp4", "video"), {}, "not a video/mp4"),
        (media_body(MP4, "image/png", "video"), {}, "not an accepted video type"),
        (media_body(MP4, "video/mp4", "image"), {}, "not an accepted image type"),
        ({"text": "x", "modality": "hologram"}, {}, "text, image, speech or video"),
        (media_body(MP4, "video/mp4", "video"), named("video plain"), "variant names"),
    ],
)
def test_malformed_video_posts_are_refused(
    body: Any, headers: dict[str, str], message: str
) -> None:
    with pytest.raises(BadPost, match=message):
        parse_submission(body, headers)


def test_the_app_keeps_a_video_and_shows_its_variants_in_the_truth() -> None:
    app = create_app(sandbox_config(), VirtualClock())
    headers = {"Idempotency-Key": "v", **simulated(DIVINATION), **named("video_audio_only")}
    answer = post(app, media_body(MP4, "video/mp4", "video"), headers)
    assert answer.status_code == 201
    (truth,) = app.state.platform.truth()["posts"]
    assert truth["modality"] == "video" and truth["rule"] == "paid-divination"
    assert truth["media"]["type"] == "video/mp4" and truth["media"]["simulated"] is True
    assert truth["media"]["variants"] == ["video_audio_only"]


def test_a_video_post_reads_back_from_the_state_file_with_its_variants() -> None:
    media = Media("video/mp4", "f" * 64, 10, DIVINATION, ("video_text_first",))
    record, _ = decide_post(sandbox_config(), "1", Submission("", "video", "k", media), 0.0)
    assert record_from_json(record_json(record)) == record


@pytest.mark.parametrize("simulator", [True, False])
def test_the_adapter_names_the_media_variants_to_the_simulator_only(simulator: bool) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/_sandbox/health":
            body = {"status": "ok", "simulator": True} if simulator else {"error": "not_found"}
            return httpx.Response(200 if simulator else 404, json=body)
        return httpx.Response(201, json={"id": "p1", "state": "visible"})

    probe = image_probe("image_rotated")
    assert probe.media_variants == ("image_rotated",)
    submit(adapter_for(httpx.MockTransport(handler), []), probe)
    (posted,) = [r for r in seen if r.method == "POST"]
    assert posted.headers.get(VARIANTS_HEADER) == ("image_rotated" if simulator else None)


def test_a_corpus_mp4_is_a_video_posted_verbatim_and_opaque_to_the_simulator(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "pack"
    write_pack(folder, pack_data(modalities=["text", "video"]))
    shutil.copytree(PLACEHOLDER, folder / "corpus")
    (folder / "corpus" / "violating" / "item-09.mp4").write_bytes(MP4)
    probes = synthesize(load_pack(folder), 1, SampleSize(12, 0), run_key="r")
    video = next(p for p in probes if p.modality is Modality.VIDEO)
    assert video.media_type == "video/mp4" and probe_media(video) == MP4
    app = create_app(sandbox_config(), VirtualClock())
    assert submit(adapter_for(httpx.ASGITransport(app), []), video).kind is SubmitKind.ACCEPTED
    (truth,) = app.state.platform.truth()["posts"]
    assert (
        truth["modality"] == "video" and truth["media"]["sha256"] == hashlib.sha256(MP4).hexdigest()
    )
    assert truth["media"]["simulated"] is False and truth["media"]["variants"] == []


# --- detection per modality -------------------------------------------------------------------


def certain(image: float, speech: float, frames: str = "all") -> SandboxConfig:
    """The default sandbox with every rule detecting for sure at the given media factors."""
    config = sandbox_config()
    factors = {"text": 1.0, "image": image, "speech": speech}
    rules = [
        r.model_copy(update={"proactive": 1.0, "modality_factor": factors}) for r in config.rules
    ]
    return config.model_copy(update={"rules": rules, "video_frames": frames})


def detected(config: SandboxConfig, variants: tuple[str, ...], key: str = "k") -> bool:
    media = Media("video/mp4", "f" * 64, 10, DIVINATION, variants)
    record, _ = decide_post(config, "1", Submission("", "video", key, media), 0.0)
    return record.detected


@pytest.mark.parametrize(
    ("variant", "screen_only", "speech_only", "opening_frames"),
    [
        # variant            image alone  speech alone  image on the opening seconds only
        ("video_plain", True, True, True),
        ("video_audio_only", False, True, False),
        ("video_screen_only", True, False, True),
        ("video_text_first", True, False, True),
        ("video_text_last", True, False, False),
    ],
)
def test_each_classifier_sees_what_the_variant_puts_in_its_channel(
    variant: str, screen_only: bool, speech_only: bool, opening_frames: bool
) -> None:
    assert detected(certain(image=1.0, speech=0.0), (variant,)) is screen_only
    assert detected(certain(image=0.0, speech=1.0), (variant,)) is speech_only
    assert detected(certain(image=1.0, speech=0.0, frames="opening"), (variant,)) is opening_frames


def test_a_video_without_variants_is_plain_and_unknown_names_change_nothing() -> None:
    speech_only = certain(image=0.0, speech=1.0)
    assert detected(speech_only, ()) and detected(speech_only, ("image_noise",))
    assert not detected(speech_only, ("image_noise", "video_screen_only"))


def test_screen_and_track_are_two_chances_to_detect() -> None:
    config = sandbox_config()
    rule = config.rules[0]  # paid-divination: proactive 0.5, image 0.6, speech 0.1
    p_screen = rule.proactive * rule.modality_factor["image"]
    p_track = rule.proactive * rule.modality_factor["speech"]
    n = 3000
    for variants, expected in (
        ((), 1 - (1 - p_screen) * (1 - p_track)),
        (("video_audio_only",), p_track),
        (("video_screen_only",), p_screen),
    ):
        rate = sum(detected(config, variants, f"key-{i}") for i in range(n)) / n
        assert abs(rate - expected) <= 4.5 * math.sqrt(expected * (1 - expected) / n)


# --- through a run ----------------------------------------------------------------------------


def run_videos(tmp_path: Path, config: SandboxConfig) -> tuple[Store, str, list[dict[str, Any]]]:
    require_program("ffmpeg", "ffmpeg")
    require_program("espeak-ng", "espeak-ng")
    sample = Sample(violating_per_criterion=5, controls_per_criterion=0, video_share=1.0)
    store = Store(tmp_path / "audit.sqlite")
    plan = sandbox_plan(sample, criteria=["VN-SUP-02"])  # proactive: detection decides
    run_id, platform = run_virtual(store, plan, VirtualClock(), config)
    return store, run_id, platform.truth()["posts"]


def test_a_run_posts_videos_each_classifier_judges_on_its_own(tmp_path: Path) -> None:
    # no speech detection at all, and an image classifier that looks at the opening seconds
    config = certain(image=1.0, speech=0.0, frames="opening")
    store, run_id, posts = run_videos(tmp_path, config)
    rows = {r.post_id: r for r in store.probes(run_id)}
    assert len(posts) == 5 and all(p["media"]["type"] == "video/mp4" for p in posts)
    seen: dict[str, set[bool]] = {}
    for p in posts:
        probe = Probe.model_validate(rows[p["id"]].probe)
        assert probe.modality is Modality.VIDEO and p["media"]["simulated"]
        assert p["media"]["variants"] == list(probe.media_variants)
        seen.setdefault(probe.media_style or "", set()).add(p["detected"])
    assert seen == {
        "video_plain": {True},
        "video_screen_only": {True},
        "video_text_first": {True},
        "video_audio_only": {False},  # text only in the audio: no speech detection
        "video_text_last": {False},  # text only at the end: never in the opening frames
    }
    card = scorecard_for(store, run_id)
    groups = {(g.dimension, g.value): g for c in card.criteria for g in c.breakdowns}
    assert ("modality", "video") in groups
    assert {("variant", "video_audio_only"), ("variant", "video_text_last")} <= set(groups)
    assert all(p["withdrawn_at"] is not None for p in posts)  # every video is withdrawn
    for p in posts[:1]:  # the platform got the bytes the probe's recipe makes
        media = probe_media(Probe.model_validate(rows[p["id"]].probe))
        assert media is not None and p["media"]["sha256"] == hashlib.sha256(media).hexdigest()
    store.close()
