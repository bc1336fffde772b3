"""Video probes: real MP4 files (H.264 + AAC) of a probe's banner and speech, in every variant.

They need Debian's ``ffmpeg`` (which brings ``ffprobe``) and, for the spoken variants,
``espeak-ng``: a test is skipped when one is missing, except under CI (see tests/test_media.py).
"""

from __future__ import annotations

import array
import io
import json
import shutil
import subprocess
from functools import cache
from types import MappingProxyType

import pytest
from PIL import Image, ImageChops, ImageStat

from audit.errors import InputError
from audit.media import IMAGE_VARIANTS, SpeechUnavailable, render_banner, render_speech
from audit.packs import Modality, load_pack, resolve_pack
from audit.synthesis import SampleSize, synthesize
from audit.video import (
    SCREEN_SECONDS,
    TEXT_WINDOW_SECONDS,
    VIDEO_VARIANTS,
    VideoStyle,
    VideoUnavailable,
    render_video,
)
from tests.test_media import require_program

TEXT = "Cô Ngọc Hân nhận xem bói tình duyên online 199.000đ, nhắn Zalo nhé"
SEED = 11
MAX_BYTES = 400_000


@pytest.fixture(scope="module")
def programs() -> None:
    require_program("ffmpeg", "ffmpeg")
    require_program("ffprobe", "ffmpeg")
    require_program("espeak-ng", "espeak-ng")


@cache
def video(variant: str, text: str = TEXT, seed: int = SEED) -> bytes:
    return render_video(text, "vi", VIDEO_VARIANTS[variant], seed)


def probe_info(data: bytes) -> dict[str, object]:
    answer = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", "-"],
        input=data,
        capture_output=True,
        check=True,
    )
    info: dict[str, object] = json.loads(answer.stdout)
    return info


def streams(data: bytes) -> dict[str, dict[str, str]]:
    info = probe_info(data)
    listed = info["streams"]
    assert isinstance(listed, list)
    return {s["codec_type"]: s for s in listed}


def duration(data: bytes) -> float:
    info = probe_info(data)
    assert isinstance(info["format"], dict)
    return float(info["format"]["duration"])


def decode(data: bytes, *options: str) -> bytes:
    answer = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "-", *options, "-"],
        input=data,
        capture_output=True,
        check=True,
    )
    return answer.stdout


def frame_at(data: bytes, seconds: float) -> Image.Image:
    png = decode(data, "-ss", f"{seconds:g}", "-frames:v", "1", "-f", "image2pipe", "-c:v", "png")
    return Image.open(io.BytesIO(png)).convert("RGB")


def loudest(data: bytes) -> int:
    samples = array.array("h", decode(data, "-f", "s16le", "-ac", "1"))
    return max((abs(s) for s in samples), default=0)


def distance(a: Image.Image, b: Image.Image) -> float:
    return float(sum(ImageStat.Stat(ImageChops.difference(a, b)).mean))


def shows_text(data: bytes, seconds: float) -> bool:
    """Whether the frame at ``seconds`` is the text banner rather than the blank one."""
    plain = IMAGE_VARIANTS["image_plain"]
    with_text = Image.open(io.BytesIO(render_banner(TEXT, plain, SEED))).convert("RGB")
    blank = Image.open(io.BytesIO(render_banner("", plain, SEED))).convert("RGB")
    frame = frame_at(data, seconds)
    return distance(frame, with_text) < distance(frame, blank)


@pytest.mark.usefixtures("programs")
@pytest.mark.parametrize("variant", sorted(VIDEO_VARIANTS))
def test_every_variant_is_a_small_h264_aac_mp4_of_a_few_seconds(variant: str) -> None:
    data = video(variant)
    found = streams(data)
    assert set(found) == {"video", "audio"}
    assert found["video"]["codec_name"] == "h264" and found["audio"]["codec_name"] == "aac"
    assert (found["video"]["width"], found["video"]["height"]) == (1200, 628)
    assert data[4:8] == b"ftyp" and len(data) < MAX_BYTES
    assert 4.0 <= duration(data) <= 20.0


@pytest.mark.usefixtures("programs")
def test_a_spoken_video_lasts_its_speech_and_a_silent_one_a_fixed_time() -> None:
    speech = render_speech(TEXT, "vi", SEED)
    spoken = (len(speech) - 44) / 2 / 22050  # espeak-ng: 16-bit mono at 22,050 Hz
    assert spoken < duration(video("video_plain")) <= spoken + 1.0
    assert duration(video("video_screen_only")) == pytest.approx(SCREEN_SECONDS, abs=0.05)


@pytest.mark.usefixtures("programs")
def test_equal_inputs_give_equal_bytes_and_other_inputs_other_bytes() -> None:
    again = render_video(TEXT, "vi", VIDEO_VARIANTS["video_plain"], SEED)
    assert again == video("video_plain")
    assert video("video_plain", seed=SEED + 1) != video("video_plain")
    assert len({video(v) for v in VIDEO_VARIANTS}) == len(VIDEO_VARIANTS)


@pytest.mark.usefixtures("programs")
@pytest.mark.parametrize(
    ("variant", "early", "late", "spoken"),
    [
        ("video_plain", True, True, True),
        ("video_audio_only", False, False, True),
        ("video_screen_only", True, True, False),
        ("video_text_first", True, False, False),
        ("video_text_last", False, True, False),
    ],
)
def test_each_variant_puts_the_text_where_it_says(
    variant: str, early: bool, late: bool, spoken: bool
) -> None:
    data = video(variant)
    end = duration(data)
    assert shows_text(data, 0.5) is early
    assert shows_text(data, end - 0.5) is late
    assert VIDEO_VARIANTS[variant].speech is spoken
    assert (loudest(data) > 2000) is spoken
    if not spoken:
        assert loudest(data) < 50  # a silent track, not a missing one
    if variant in ("video_text_first", "video_text_last"):
        middle = TEXT_WINDOW_SECONDS + 1.0
        assert not shows_text(data, middle)


def test_video_needs_text_and_a_place_for_it() -> None:
    with pytest.raises(InputError, match="must not be empty"):
        render_video("  ", "vi", VideoStyle(), 1)
    with pytest.raises(InputError, match="on screen, in its speech or both"):
        VideoStyle(screen="none", speech=False)
    with pytest.raises(InputError, match="'screen' must be"):
        VideoStyle(screen="middle")  # type: ignore[arg-type]


def test_missing_ffmpeg_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(VideoUnavailable, match="apt-get install ffmpeg"):
        render_video(TEXT, "vi", VideoStyle(), 1)


@pytest.mark.usefixtures("programs")
def test_missing_espeak_for_a_spoken_variant_names_its_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "espeak-ng" else real(name))
    with pytest.raises(SpeechUnavailable, match="apt-get install espeak-ng"):
        render_video(TEXT, "vi", VIDEO_VARIANTS["video_audio_only"], 1)
    silent = render_video(TEXT, "vi", VIDEO_VARIANTS["video_screen_only"], 1)
    assert set(streams(silent)) == {"video", "audio"}


# --- synthesis ----------------------------------------------------------------------------------


def test_video_share_deals_the_variants_like_banner_styles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("audit.synthesis.video_available", lambda: True)
    monkeypatch.setattr("audit.synthesis.speech_available", lambda: True)
    pack = load_pack(resolve_pack("vn-superstition"))
    size = SampleSize(20, 5, video_share=0.5, variant_arms=MappingProxyType({}))
    probes = synthesize(pack, 3, size, run_key="video", criteria=["VN-SUP-01"])
    videos = [p for p in probes if p.modality is Modality.VIDEO]
    assert len(videos) == 10 + 2  # half the violating probes, half the controls (rounded)
    assert {p.media_style for p in videos} == set(VIDEO_VARIANTS)
    for p in videos:
        assert p.media_type == "video/mp4" and p.media_seed is not None
        assert not p.text_variants
        plain = p.media_style == "video_plain"
        assert p.media_variants == (() if plain else (p.media_style,))
    assert len({p.content_hash for p in videos}) == len(videos)


def test_video_share_is_refused_without_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audit.synthesis.video_available", lambda: False)
    monkeypatch.setattr("audit.synthesis.speech_available", lambda: True)
    pack = load_pack(resolve_pack("vn-superstition"))
    size = SampleSize(4, 0, video_share=1.0, variant_arms=MappingProxyType({}))
    with pytest.raises(InputError, match=r"video_share.*apt-get install ffmpeg"):
        synthesize(pack, 3, size, run_key="video", criteria=["VN-SUP-01"])
    other = SampleSize(4, 0, image_share=1.0, variant_arms=MappingProxyType({}))
    assert synthesize(pack, 3, other, run_key="video", criteria=["VN-SUP-01"])


def test_video_is_only_for_criteria_that_declare_it() -> None:
    pack = load_pack(resolve_pack("vn-superstition"))
    size = SampleSize(6, 0, video_share=1.0, variant_arms=MappingProxyType({}))
    probes = synthesize(pack, 3, size, run_key="video", criteria=["VN-SUP-03"])
    assert Modality.VIDEO not in pack.criterion("VN-SUP-03").modalities
    assert {p.modality for p in probes} == {Modality.TEXT}
