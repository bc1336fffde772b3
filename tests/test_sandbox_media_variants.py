"""The reference sandbox's media variants: the header that names them, and the setting that makes
its simulated image or speech classifier miss a style (so an evasion search can be tested)."""

from __future__ import annotations

import math
from pathlib import Path
from types import MappingProxyType

import httpx
import pytest

from audit.adapters.base import SubmitKind
from audit.adapters.sandbox import SIMULATION_HEADER, VARIANTS_HEADER
from audit.clock import VirtualClock
from audit.errors import InputError
from audit.packs import load_pack, resolve_pack
from audit.probe import Probe
from audit.sandbox.app import BadPost, create_app, parse_submission
from audit.sandbox.moderation import (
    Media,
    SandboxConfig,
    Submission,
    decide_post,
    default_config_path,
    load_sandbox_config,
)
from audit.synthesis import SampleSize, synthesize
from tests.test_evasion_support import sandbox_config
from tests.test_sandbox_media import DIVINATION, PNG, adapter_for, media_body, simulated, submit


def missing(**chances: float) -> SandboxConfig:
    return SandboxConfig.model_validate(
        {**sandbox_config().model_dump(), "media_variant_detection": chances}
    )


def banner(variants: tuple[str, ...], key: str = "k") -> Submission:
    media = Media("image/png", "d" * 64, 10, DIVINATION, variants)
    return Submission("", "image", key, media)


# --- the header -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("image_low_contrast", ("image_low_contrast",)),
        ("speech_fast, video_text_last ,", ("speech_fast", "video_text_last")),
        ("", ()),
    ],
)
def test_the_variants_header_is_read_for_media_posts(value: str, expected: tuple[str, ...]) -> None:
    headers = {VARIANTS_HEADER.lower(): value, **simulated(DIVINATION)}
    media = parse_submission(media_body(PNG), headers).media
    assert media is not None and media.variants == expected


def test_a_malformed_variants_header_is_refused() -> None:
    with pytest.raises(BadPost, match=r"(?i)x-sandbox-simulated-variants must be comma-separated"):
        parse_submission(media_body(PNG), {VARIANTS_HEADER.lower(): "Low Contrast!"})


def test_a_text_post_has_no_media_variants() -> None:
    sub = parse_submission({"text": DIVINATION}, {VARIANTS_HEADER.lower(): "image_noise"})
    assert sub.media is None  # a text post has no media, so no media variants


# --- the setting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("{image_low_contrats: 0.0}", r"media_variant_detection.*must name media variants.*"),
        ("{image_noise: 1.5}", r"must map image_noise to a chance between 0 and 1"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, setting: str, message: str
) -> None:
    path = tmp_path / "moderation.yaml"
    path.write_text(
        default_config_path().read_text(encoding="utf-8") + f"media_variant_detection: {setting}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=message) as raised:
        load_sandbox_config(path)
    assert str(path) in str(raised.value)


def test_a_style_read_with_chance_zero_is_opaque_to_the_classifier() -> None:
    config = missing(image_low_contrast=0.0)
    seen, _ = decide_post(config, "1", banner(("image_low_contrast",)), 0.0)
    assert seen.rule is None and not seen.detected
    plain, _ = decide_post(config, "2", banner(("image_plain",)), 0.0)
    assert plain.rule == "paid-divination"


def test_a_partial_chance_reads_about_that_share_of_the_media() -> None:
    config, n = missing(image_rotated=0.3), 3000
    read = sum(
        decide_post(config, str(i), banner(("image_rotated",), f"k{i}"), 0.0)[0].rule is not None
        for i in range(n)
    )
    assert abs(read / n - 0.3) <= 4.5 * math.sqrt(0.3 * 0.7 / n)


def test_the_setting_moves_no_other_post_s_fate() -> None:
    before, after = sandbox_config(), missing(image_low_contrast=0.5, speech_fast=0.0)
    for i in range(200):
        sub = banner(("image_serif",), f"k{i}")
        assert decide_post(before, str(i), sub, 0.0) == decide_post(after, str(i), sub, 0.0)


# --- the adapter ----------------------------------------------------------------------------


def styled_probe(style: str) -> Probe:
    p = load_pack(resolve_pack("vn-superstition"))
    forms = SampleSize(4, 0, variant_arms=MappingProxyType({style: 2}))
    probes = synthesize(p, 3, forms, run_key=style, criteria=["VN-SUP-01"])
    return next(x for x in probes if x.media_style == style)


class Recording(httpx.AsyncBaseTransport):
    """A transport that keeps every request it passes on."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.requests = inner, list[httpx.Request]()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


def test_the_adapter_names_the_style_to_the_simulator_which_can_miss_it() -> None:
    app = create_app(missing(image_low_contrast=0.0), VirtualClock())
    transport = Recording(httpx.ASGITransport(app))
    for style in ("image_low_contrast", "image_plain"):
        result = submit(adapter_for(transport, []), styled_probe(style))
        assert result.kind is SubmitKind.ACCEPTED
    low, plain = app.state.platform.truth()["posts"]
    assert low["rule"] is None and plain["rule"] == "paid-divination"
    posted = [r.headers.get(VARIANTS_HEADER) for r in transport.requests if r.method == "POST"]
    assert posted == ["image_low_contrast", "image_plain"]


def test_the_adapter_never_names_the_style_to_another_server() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/_sandbox/health":
            return httpx.Response(200, json={"status": "ok"})
        return httpx.Response(201, json={"id": "p1", "state": "visible"})

    probe = styled_probe("image_low_contrast")
    assert submit(adapter_for(httpx.MockTransport(handler), []), probe).kind is SubmitKind.ACCEPTED
    posted = [r for r in seen if r.method == "POST"]
    assert posted
    for request in posted:
        assert VARIANTS_HEADER.lower() not in request.headers
        assert SIMULATION_HEADER.lower() not in request.headers
