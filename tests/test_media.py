"""Image and speech probes: real PNG and WAV files that carry the probe's text.

OCR uses Debian's ``tesseract`` (packages tesseract-ocr, tesseract-ocr-vie) and speech uses
``espeak-ng``. A test that needs one of them is skipped when it is missing, except under CI
(the CI environment variable set), where CI installs them and a missing one is a failure.
"""

from __future__ import annotations

import array
import io
import os
import re
import shutil
import subprocess
import sys
import unicodedata
import wave
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter, ImageStat

from audit.errors import InputError
from audit.media import (
    BANNER_SIZE,
    FONTS,
    IMAGE_VARIANTS,
    SPEECH_VARIANTS,
    ImageStyle,
    SpeechStyle,
    SpeechUnavailable,
    render_banner,
    render_speech,
    speech_available,
)

VIETNAMESE = "Xem bói giải hạn, đảm bảo hiệu quả 100%. Liên hệ thầy để được tư vấn miễn phí!"
ENGLISH = "Fortune reading and bad luck removal online, guaranteed results, contact us today"
PLAIN = IMAGE_VARIANTS["image_plain"]
MIN_OVERLAP = 0.8


def require_program(program: str, package: str) -> str:
    """The program's path; skip without it locally, fail without it under CI."""
    path = shutil.which(program)
    if path is None:
        message = f"{program} is not installed (Debian: apt-get install {package})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_tesseract(language: str) -> str:
    program = require_program("tesseract", "tesseract-ocr")
    listed = subprocess.run(
        [program, "--list-langs"], capture_output=True, text=True, check=True
    ).stdout.split()
    if language not in listed:
        message = f"tesseract has no '{language}' data (Debian: tesseract-ocr-{language})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return program


def ocr(png: bytes, language: str, tmp_path: Path) -> str:
    program = require_tesseract(language)
    image = tmp_path / "banner.png"
    image.write_bytes(png)
    done = subprocess.run(
        [program, str(image), "stdout", "-l", language],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def words(text: str) -> list[str]:
    return re.findall(r"\w+", unicodedata.normalize("NFC", text).lower())


def overlap(expected: str, found: str) -> float:
    """Share of the expected words (with repeats) that the OCR text contains."""
    want = Counter(words(expected))
    return sum((want & Counter(words(found))).values()) / sum(want.values())


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- banners ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(IMAGE_VARIANTS))
def test_banner_is_a_png_of_the_banner_size(variant: str) -> None:
    png = render_banner(VIETNAMESE, IMAGE_VARIANTS[variant], 1)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = decode(png)
    assert image.format == "PNG"
    assert image.size == BANNER_SIZE


@pytest.mark.parametrize("variant", sorted(IMAGE_VARIANTS))
def test_banner_bytes_are_deterministic(variant: str) -> None:
    style = IMAGE_VARIANTS[variant]
    assert render_banner(VIETNAMESE, style, 7) == render_banner(VIETNAMESE, style, 7)


def test_every_image_variant_draws_a_different_image() -> None:
    images = {render_banner(VIETNAMESE, style, 7) for style in IMAGE_VARIANTS.values()}
    assert len(images) == len(IMAGE_VARIANTS)


def test_text_and_seed_change_the_image() -> None:
    assert render_banner(VIETNAMESE, PLAIN, 1) != render_banner(ENGLISH, PLAIN, 1)
    assert len({render_banner(VIETNAMESE, PLAIN, seed) for seed in range(6)}) > 1


@pytest.mark.parametrize("variant", sorted(IMAGE_VARIANTS))
def test_banner_is_not_blank(variant: str) -> None:
    grey = decode(render_banner(VIETNAMESE, IMAGE_VARIANTS[variant], 2)).convert("L")
    assert ImageStat.Stat(grey).var[0] > 20.0


def test_text_makes_the_picture_busier() -> None:
    def variance(text: str) -> float:
        return float(ImageStat.Stat(decode(render_banner(text, PLAIN, 3)).convert("L")).var[0])

    assert variance(VIETNAMESE) > 2 * variance("")


@settings(max_examples=25, deadline=None)
@given(text=st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạ ,.!0123456789", max_size=400))
def test_any_text_renders_a_banner(text: str) -> None:
    assert decode(render_banner(text, PLAIN, 0)).size == BANNER_SIZE


@pytest.mark.parametrize(
    ("style", "field"),
    [
        ({"font": "comic"}, "'font'"),
        ({"noise": 1.5}, "'noise'"),
        ({"rotation": 90.0}, "'rotation'"),
        ({"rotation": float("nan")}, "'rotation'"),
        ({"text_size": 4}, "'text_size' must be a whole number of pixels from 8 to 96"),
        ({"text_size": 200}, r"'text_size' .* \(got 200\)"),
        ({"text_size": 12.5}, "'text_size'"),
        ({"text_size": True}, "'text_size'"),
        ({"watermark": -0.1}, "'watermark' must be an opacity between 0 and 1"),
        ({"watermark": float("nan")}, "'watermark'"),
    ],
)
def test_bad_style_is_refused_naming_the_field(style: dict[str, object], field: str) -> None:
    with pytest.raises(InputError, match=field):
        ImageStyle(**style)  # type: ignore[arg-type]


STYLES = st.builds(
    ImageStyle,
    font=st.sampled_from(sorted(FONTS)),
    noise=st.floats(0, 0.2),
    rotation=st.floats(-45, 45),
    low_contrast=st.booleans(),
    text_size=st.none() | st.integers(8, 96),
    watermark=st.just(0.0) | st.floats(0.05, 1),
)


@settings(max_examples=12, deadline=None)
@given(style=STYLES, seed=st.integers(0, 2**32 - 1))
def test_any_valid_style_draws_the_same_png_every_time(style: ImageStyle, seed: int) -> None:
    png = render_banner(VIETNAMESE, style, seed)
    assert decode(png).size == BANNER_SIZE
    assert png == render_banner(VIETNAMESE, style, seed)


@settings(max_examples=40, deadline=None)
@given(size=st.integers().filter(lambda n: not 8 <= n <= 96))
def test_any_text_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(InputError, match=f"'text_size' .* \\(got {size}\\)"):
        ImageStyle(text_size=size)


def grey_variance(variant: str) -> float:
    image = decode(render_banner(VIETNAMESE, IMAGE_VARIANTS[variant], 3)).convert("L")
    return float(ImageStat.Stat(image).var[0])


def test_small_print_covers_less_of_the_banner_than_the_plain_text() -> None:
    assert grey_variance("image_small_text") < grey_variance("image_plain") / 2


def test_watermark_repeats_the_text_faintly_across_the_banner() -> None:
    image = decode(render_banner(VIETNAMESE, IMAGE_VARIANTS["image_watermark"], 3)).convert("L")
    width, height = image.size
    quarters = [
        image.crop((x, y, x + width // 2, y + height // 2))
        for x in (0, width // 2)
        for y in (0, height // 2)
    ]
    # text in every quarter of the banner (the plain banner's text sits in the middle only) ...
    assert all(ImageStat.Stat(q).var[0] > 20.0 for q in quarters)
    # ... and fainter than the plain text
    assert grey_variance("image_watermark") < grey_variance("image_plain")


# --- OCR: the picture carries the probe's text ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "language", "variant"),
    [
        pytest.param(ENGLISH, "eng", "image_plain", id="english-plain"),
        pytest.param(VIETNAMESE, "vie", "image_plain", id="vietnamese-plain"),
        pytest.param(VIETNAMESE, "vie", "image_serif", id="vietnamese-serif"),
        pytest.param(VIETNAMESE, "vie", "image_small_text", id="vietnamese-small-print"),
    ],
)
def test_ocr_reads_the_probe_text(text: str, language: str, variant: str, tmp_path: Path) -> None:
    found = ocr(render_banner(text, IMAGE_VARIANTS[variant], 5), language, tmp_path)
    assert overlap(text, found) >= MIN_OVERLAP, found


@pytest.mark.slow
def test_rotated_banner_turned_back_reads_as_the_probe_text(tmp_path: Path) -> None:
    style = IMAGE_VARIANTS["image_rotated"]
    image = decode(render_banner(VIETNAMESE, style, 5)).convert("RGB")
    corner = image.getpixel((5, 5))
    assert isinstance(corner, tuple)
    upright = image.rotate(-style.rotation, resample=Image.Resampling.BICUBIC, fillcolor=corner)
    found = ocr(png_of(upright), "vie", tmp_path)
    assert overlap(VIETNAMESE, found) >= MIN_OVERLAP, found


@pytest.mark.slow
def test_noisy_banner_cleaned_reads_as_the_probe_text(tmp_path: Path) -> None:
    image = decode(render_banner(VIETNAMESE, IMAGE_VARIANTS["image_noise"], 5))
    found = ocr(png_of(image.filter(ImageFilter.MedianFilter(3))), "vie", tmp_path)
    assert overlap(VIETNAMESE, found) >= MIN_OVERLAP, found


def test_overlap_measure() -> None:
    assert overlap("Xem bói, giải hạn", "xem BÓI\ngiải hạn!") == 1.0
    assert overlap("xem bói giải hạn", "xem boi giai han") == 0.25
    assert overlap("a a b", "a") == pytest.approx(1 / 3)


# --- speech -----------------------------------------------------------------------------


def read_wav(data: bytes) -> tuple[wave._wave_params, array.array[int]]:
    """The WAV parameters and its 16-bit samples."""
    with wave.open(io.BytesIO(data)) as reader:
        params = reader.getparams()
        samples = array.array("h", reader.readframes(params.nframes))
    if sys.byteorder == "big":
        samples.byteswap()
    return params, samples


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "language"),
    [pytest.param(VIETNAMESE, "vi", id="vietnamese"), pytest.param(ENGLISH, "en", id="english")],
)
def test_speech_is_a_non_silent_wav(text: str, language: str) -> None:
    require_program("espeak-ng", "espeak-ng")
    data = render_speech(text, language, 1)
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    params, samples = read_wav(data)
    assert params.nchannels == 1
    assert params.sampwidth == 2
    assert params.nframes / params.framerate > 1.0
    assert max(abs(sample) for sample in samples) > 1000


@pytest.mark.slow
def test_speech_grows_with_the_text() -> None:
    require_program("espeak-ng", "espeak-ng")

    def seconds(text: str) -> float:
        params, _samples = read_wav(render_speech(text, "vi", 3))
        return params.nframes / params.framerate

    assert seconds("Xem bói") < seconds("Xem bói giải hạn") < seconds(VIETNAMESE)


@pytest.mark.slow
def test_speech_is_deterministic_and_seeded() -> None:
    require_program("espeak-ng", "espeak-ng")
    assert render_speech(VIETNAMESE, "vi", 4) == render_speech(VIETNAMESE, "vi-VN", 4)
    assert len({render_speech(VIETNAMESE, "vi", seed) for seed in range(4)}) > 1


def test_speech_refuses_unknown_language_and_empty_text() -> None:
    with pytest.raises(InputError, match="'language'"):
        render_speech("bonjour", "fr", 1)
    with pytest.raises(InputError, match="'text'"):
        render_speech("   ", "vi", 1)


def test_missing_espeak_ng_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    assert not speech_available()
    with pytest.raises(SpeechUnavailable, match="apt-get install espeak-ng"):
        render_speech(VIETNAMESE, "vi", 1)


# --- speech styles ------------------------------------------------------------------------


def seconds(data: bytes) -> float:
    params, _samples = read_wav(data)
    return params.nframes / params.framerate


def loudness(samples: array.array[int]) -> float:
    return (sum(v * v for v in samples) / len(samples)) ** 0.5


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(SPEECH_VARIANTS))
def test_every_speech_style_is_a_deterministic_non_silent_wav(variant: str) -> None:
    require_program("espeak-ng", "espeak-ng")
    style = SPEECH_VARIANTS[variant]
    data = render_speech(VIETNAMESE, "vi", 6, style)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    params, samples = read_wav(data)
    assert (params.nchannels, params.sampwidth) == (1, 2)
    assert max(abs(sample) for sample in samples) > 1000
    assert data == render_speech(VIETNAMESE, "vi", 6, style)


@pytest.mark.slow
def test_speech_styles_change_the_audio_as_they_say() -> None:
    require_program("espeak-ng", "espeak-ng")
    plain = render_speech(VIETNAMESE, "vi", 6)
    assert plain == render_speech(VIETNAMESE, "vi", 6, SPEECH_VARIANTS["speech_plain"])
    styled = {name: render_speech(VIETNAMESE, "vi", 6, s) for name, s in SPEECH_VARIANTS.items()}
    assert len(set(styled.values())) == len(SPEECH_VARIANTS)
    assert seconds(styled["speech_fast"]) < 0.8 * seconds(plain)
    assert seconds(styled["speech_noise"]) == seconds(plain)
    _params, clean = read_wav(plain)
    _params, noisy = read_wav(styled["speech_noise"])
    quiet = [i for i, v in enumerate(clean) if v == 0]  # the pauses: only noise there
    assert len(quiet) > 100
    assert loudness(array.array("h", (noisy[i] for i in quiet))) > 0.3 * loudness(clean)


@pytest.mark.parametrize(
    ("style", "message"),
    [
        ({"speed": 0.1}, "'speed' must be between 0.5 and 2"),
        ({"speed": float("inf")}, "'speed'"),
        ({"noise": 1.5}, "'noise' must be between 0 and 1"),
        ({"voice": "robot"}, "'voice' must be empty .* or one of f1, .* \\(got 'robot'\\)"),
    ],
)
def test_bad_speech_style_is_refused_naming_the_field(
    style: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        SpeechStyle(**style)  # type: ignore[arg-type]
