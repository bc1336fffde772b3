"""Media posts on the reference sandbox: upload checks, per-modality detection, the adapter."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import pytest

from audit.adapters.base import SubmitKind, SubmitResult
from audit.adapters.sandbox import SIMULATION_HEADER, SandboxAdapter
from audit.clock import SystemClock, VirtualClock
from audit.http import PlatformClient
from audit.media import SpeechUnavailable
from audit.packs import Modality, load_pack, resolve_pack
from audit.plan import Sample
from audit.probe import Probe
from audit.probe_media import probe_media
from audit.sandbox.app import BadPost, create_app, parse_submission
from audit.sandbox.moderation import Media, Submission, decide_post
from audit.sandbox.server import SandboxServer
from audit.store import Store
from audit.synthesis import SampleSize, synthesize
from tests.test_evasion_support import (
    run_virtual,
    sandbox_config,
    sandbox_plan,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 20
DIVINATION = "Cô Ngọc Hân nhận xem bói tình duyên online 199.000đ, nhắn Zalo nhé"


def media_body(data: bytes, kind: str = "image/png", modality: str = "image") -> dict[str, Any]:
    return {
        "text": "",
        "modality": modality,
        "media": {
            "type": kind,
            "sha256": hashlib.sha256(data).hexdigest(),
            "data": base64.b64encode(data).decode(),
        },
    }


def simulated(text: str) -> dict[str, str]:
    return {SIMULATION_HEADER.lower(): base64.b64encode(text.encode()).decode()}


# --- upload checks ----------------------------------------------------------------------------


def test_image_post_keeps_digest_size_and_simulated_content() -> None:
    sub = parse_submission(media_body(PNG), {"idempotency-key": "k", **simulated(DIVINATION)})
    assert sub.media == Media("image/png", hashlib.sha256(PNG).hexdigest(), len(PNG), DIVINATION)
    assert (sub.text, sub.modality, sub.idempotency_key) == ("", "image", "k")


def test_speech_post_takes_wav() -> None:
    sub = parse_submission(media_body(WAV, "audio/wav", "speech"), {})
    assert sub.media is not None and sub.media.simulated_content is None


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        ({"text": "", "modality": "text"}, {}, "non-empty"),
        ({**media_body(PNG), "modality": "text", "text": "x"}, {}, "has no media"),
        ({"text": "", "modality": "image"}, {}, "needs 'media'"),
        ({"text": "x", "modality": "hologram"}, {}, "text, image, speech or video"),
        (media_body(PNG, "audio/wav", "image"), {}, "not an accepted image type"),
        (media_body(b"GIF89a", "image/png"), {}, "is not a image/png file"),
        ({**media_body(PNG), "media": {"type": "image/png", "data": "@@"}}, {}, "base64"),
        (
            {**media_body(PNG), "media": {**media_body(PNG)["media"], "sha256": "0" * 64}},
            {},
            "does not match",
        ),
        (media_body(PNG), {SIMULATION_HEADER.lower(): "%%"}, "base64 of UTF-8"),
        ([], {}, "JSON object"),
    ],
)
def test_malformed_posts_are_refused(body: Any, headers: dict[str, str], message: str) -> None:
    with pytest.raises(BadPost, match=message):
        parse_submission(body, headers)


def post(app: Any, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as c:
            return await c.post("/api/v1/posts", json=body, headers=headers or {})

    return asyncio.run(go())


def test_app_answers_400_with_the_reason_and_201_for_a_media_post() -> None:
    app = create_app(sandbox_config(), VirtualClock())
    bad = post(app, media_body(b"nope"))
    assert bad.status_code == 400 and "not a image/png file" in bad.json()["message"]
    good = post(app, media_body(PNG), {"Idempotency-Key": "a", **simulated(DIVINATION)})
    assert good.status_code == 201
    (truth,) = app.state.platform.truth()["posts"]
    assert truth["media"] == {
        "type": "image/png",
        "sha256": hashlib.sha256(PNG).hexdigest(),
        "size": len(PNG),
        "simulated": True,
        "variants": [],
    }
    assert truth["rule"] == "paid-divination" and truth["modality"] == "image"


# --- per-modality detection -------------------------------------------------------------------


def detection_rate(make: Callable[[int], Submission], n: int = 3000) -> float:
    config = sandbox_config()
    return sum(decide_post(config, str(i), make(i), 0.0)[0].detected for i in range(n)) / n


def close_to(rate: float, expected: float, n: int = 3000) -> bool:
    return abs(rate - expected) <= 4.5 * math.sqrt(max(expected * (1 - expected), 1e-4) / n)


def image(text: str | None, caption: str = "") -> Callable[[int], Submission]:
    media = Media("image/png", "d" * 64, 10, text)
    return lambda i: Submission(caption, "image", f"key-{i}", media)


def test_detection_follows_the_rule_times_the_modality_factor() -> None:
    rule = sandbox_config().rules[0]  # paid-divination: proactive 0.5, image 0.6, speech 0.1
    text = detection_rate(lambda i: Submission(DIVINATION, "text", f"key-{i}"))
    pictured = detection_rate(image(DIVINATION))
    spoken = detection_rate(
        lambda i: Submission("", "speech", f"key-{i}", Media("audio/wav", "e" * 64, 9, DIVINATION))
    )
    assert close_to(text, rule.proactive * rule.modality_factor["text"])
    assert close_to(pictured, rule.proactive * rule.modality_factor["image"])
    assert close_to(spoken, rule.proactive * rule.modality_factor["speech"])
    assert spoken < pictured < text


def test_media_the_simulator_cannot_see_is_never_detected() -> None:
    assert detection_rate(image(None)) == 0.0


def test_caption_and_media_are_two_chances_to_detect() -> None:
    rule = sandbox_config().rules[0]
    p_text, p_image = rule.proactive, rule.proactive * rule.modality_factor["image"]
    both = detection_rate(image(DIVINATION, caption=DIVINATION))
    assert close_to(both, 1 - (1 - p_text) * (1 - p_image))


# --- the adapter --------------------------------------------------------------------------------


def image_probe(style: str = "image_plain") -> Probe:
    p = load_pack(resolve_pack("vn-superstition"))
    forms = SampleSize(30, 0, image_share=1.0, variant_arms=MappingProxyType({}))
    probes = synthesize(p, 3, forms, run_key="adapter", criteria=["VN-SUP-01"])
    return next(x for x in probes if x.media_style == style)


def adapter_for(transport: httpx.AsyncBaseTransport, log: list[dict[str, Any]]) -> SandboxAdapter:
    client = PlatformClient(
        "http://sandbox.test",
        SystemClock(),
        lambda probe_id, entry: log.append(entry),
        transport=transport,
    )
    return SandboxAdapter(client)


def submit(adapter: SandboxAdapter, probe: Probe) -> SubmitResult:
    async def go() -> SubmitResult:
        try:
            return await adapter.submit(probe, probe.probe_id)
        finally:
            await adapter.aclose()

    return asyncio.run(go())


def test_adapter_uploads_the_banner_and_tells_only_the_simulator_what_it_shows() -> None:
    app = create_app(sandbox_config(), VirtualClock())
    log: list[dict[str, Any]] = []
    probe = image_probe()
    result = submit(adapter_for(httpx.ASGITransport(app), log), probe)
    assert result.kind is SubmitKind.ACCEPTED
    (truth,) = app.state.platform.truth()["posts"]
    media = probe_media(probe)
    assert media is not None
    assert truth["media"]["sha256"] == hashlib.sha256(media).hexdigest()
    assert truth["media"]["simulated"] is True and truth["rule"] == "paid-divination"
    assert [entry["action"] for entry in log] == ["identify", "submit"]
    body = json.loads(log[1]["request_body"][:300].split(',"data"')[0] + "}}")
    assert body["text"] == "" and body["media"]["sha256"] == truth["media"]["sha256"]


def test_adapter_sends_no_simulation_header_to_a_server_that_is_not_the_simulator() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/_sandbox/health":
            return httpx.Response(404, json={"error": "not_found"})
        return httpx.Response(201, json={"id": "p1", "state": "visible"})

    result = submit(adapter_for(httpx.MockTransport(handler), []), image_probe())
    assert result.kind is SubmitKind.ACCEPTED
    posted = [r for r in seen if r.method == "POST"]
    assert posted and all(SIMULATION_HEADER.lower() not in r.headers for r in posted)


def test_media_that_cannot_be_made_is_a_failed_submission(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unavailable(*args: object) -> bytes:
        raise SpeechUnavailable()

    monkeypatch.setattr("audit.probe_media.render_banner", unavailable)
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(500))
    result = submit(adapter_for(transport, []), image_probe())
    assert result.kind is SubmitKind.ERROR and "espeak-ng" in result.detail
    assert seen == []


# --- through a run --------------------------------------------------------------------------


def test_a_run_posts_images_that_the_platform_detects_less_often(tmp_path: Path) -> None:
    sample = Sample(violating_per_criterion=60, controls_per_criterion=0, image_share=0.5)
    store = Store(tmp_path / "audit.sqlite")
    plan = sandbox_plan(sample, criteria=["VN-SUP-02"])  # proactive: detection decides
    run_id, platform = run_virtual(store, plan, VirtualClock())
    posts = platform.truth()["posts"]
    images = [p for p in posts if p["modality"] == "image"]
    texts = [p for p in posts if p["modality"] == "text"]
    assert len(images) == 30 and all(p["media"]["simulated"] for p in images)
    assert sum(p["detected"] for p in images) < sum(p["detected"] for p in texts)
    assert {r.probe["modality"] for r in store.probes(run_id)} == {"image", "text"}
    store.close()


@pytest.mark.slow
def test_media_probes_cross_real_http(tmp_path: Path) -> None:
    from audit.runner import create_runs, execute_run

    config = sandbox_config().model_copy(update={"time_scale": 86400.0})
    sample = Sample(violating_per_criterion=4, controls_per_criterion=0, image_share=0.5)
    store = Store(tmp_path / "audit.sqlite")
    clock = SystemClock()
    with SandboxServer(config, clock) as server:
        plan = sandbox_plan(sample, criteria=["VN-SUP-01"]).model_copy(
            update={
                "time_scale": 86400.0,
                "targets": [
                    sandbox_plan(sample).targets[0].model_copy(update={"base_url": server.base_url})
                ],
            }
        )
        (prepared,) = create_runs(store, plan, None, clock)
        asyncio.run(execute_run(store, prepared.run_id, clock))
        posts = server.platform.truth()["posts"]
    assert sum(1 for p in posts if p["media"] and p["media"]["type"] == "image/png") == 2
    assert all(p["withdrawn_at"] is not None for p in posts)
    store.close()


def test_probe_modalities_are_the_pack_enum() -> None:
    assert {m.value for m in Modality} == {"text", "image", "speech", "video"}
