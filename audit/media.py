"""Image and speech probes: a probe's text rendered as an ad banner (PNG) or as speech (WAV).

Both are deterministic for their inputs and carry nothing but the picture or the sound: a
banner keeps only the PNG chunks that draw it (no text, time or EXIF chunk) and a recording
only its format and samples (no LIST/INFO chunk), so no metadata names the tool or the program
that made the file. Banners are drawn with Pillow and the DejaVu fonts
bundled in ``audit/fonts`` (full Vietnamese coverage; see ``audit/fonts/LICENSE``), so they do
not depend on the fonts a machine has. Speech comes from the ``espeak-ng`` program (Debian
package ``espeak-ng``); :class:`SpeechUnavailable` says so when it is missing.

Errors::

    InputError          an unknown font or language, an empty speech text, a style out of range
    RuntimeFailure
    └── SpeechUnavailable   espeak-ng is not installed
"""

from __future__ import annotations

import io
import math
import random
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

from PIL import Image, ImageDraw, ImageFont

from audit.errors import InputError, RuntimeFailure

__all__ = [
    "BANNER_SIZE",
    "FONTS",
    "IMAGE_VARIANTS",
    "ImageStyle",
    "SpeechUnavailable",
    "clean_png",
    "clean_wav",
    "render_banner",
    "render_speech",
    "speech_available",
]

FONTS_DIR = Path(__file__).resolve().parent / "fonts"
FONTS: Mapping[str, str] = MappingProxyType(
    {"sans": "DejaVuSans-Bold.ttf", "serif": "DejaVuSerif-Bold.ttf"}
)
BANNER_SIZE = (1200, 628)  # the common size of a link or feed ad image
_MARGIN = 70
_FONT_SIZES = range(96, 23, -4)
_MAX_ROTATION = 45.0

RGB = tuple[int, int, int]
Palette = tuple[RGB, RGB, RGB]  # background, text, accent
_LOW_CONTRAST = 0.22  # how far the low-contrast text colour moves from the background

# Colour schemes of the kind such ads use.
_PALETTES: tuple[Palette, ...] = (
    ((150, 20, 30), (255, 226, 120), (240, 180, 40)),
    ((60, 20, 90), (255, 215, 0), (200, 160, 255)),
    ((15, 40, 90), (255, 255, 255), (90, 170, 250)),
    ((10, 80, 50), (255, 250, 230), (230, 200, 90)),
    ((250, 240, 210), (120, 20, 20), (200, 60, 40)),
    ((255, 255, 255), (20, 20, 60), (220, 30, 40)),
)


@dataclass(frozen=True)
class ImageStyle:
    """How a banner is drawn.

    ``noise`` is the share of pixels (0 to 1) replaced by random colours; ``rotation`` turns the
    text by that many degrees (at most 45 either way); ``low_contrast`` draws the text in a
    colour close to the background.
    """

    font: str = "sans"
    noise: float = 0.0
    rotation: float = 0.0
    low_contrast: bool = False

    def __post_init__(self) -> None:
        if self.font not in FONTS:
            raise InputError(f"'font' must be one of {', '.join(FONTS)} (got {self.font!r})")
        if not 0.0 <= self.noise <= 1.0:
            raise InputError(f"'noise' must be between 0 and 1 (got {self.noise!r})")
        if not (math.isfinite(self.rotation) and abs(self.rotation) <= _MAX_ROTATION):
            raise InputError(
                f"'rotation' must be between -{_MAX_ROTATION:g} and {_MAX_ROTATION:g} degrees"
                f" (got {self.rotation!r})"
            )


IMAGE_VARIANTS: Mapping[str, ImageStyle] = MappingProxyType(
    {
        "image_plain": ImageStyle(),
        "image_serif": ImageStyle(font="serif"),
        "image_noise": ImageStyle(noise=0.08),
        "image_rotated": ImageStyle(rotation=12.0),
        "image_low_contrast": ImageStyle(low_contrast=True),
    }
)


# --- banners ------------------------------------------------------------------------------


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A bundled font; the basic layout engine keeps rendering independent of libraqm."""
    path = FONTS_DIR / FONTS[name]
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap of ``text`` into lines no wider than ``width`` (a longer word alone)."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return round((ascent + descent) * 1.15)


def _layout(
    text: str, style: ImageStyle, box: tuple[int, int]
) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest font size at which the wrapped text fits ``box``, and its lines."""
    width, height = box
    for size in _FONT_SIZES:
        font = _font(style.font, size)
        lines = _wrap(text, font, width)
        fits = all(font.getlength(line) <= width for line in lines)
        if fits and len(lines) * _line_height(font) <= height:
            return font, lines
    font = _font(style.font, _FONT_SIZES[-1])
    return font, _wrap(text, font, width)


def _text_colour(palette: Palette, low_contrast: bool) -> RGB:
    """The text colour, or one only slightly off the background for low contrast."""
    background, text, _accent = palette
    if not low_contrast:
        return text
    return _mix(background, text, _LOW_CONTRAST)


def _mix(start: RGB, end: RGB, share: float) -> RGB:
    """The colour ``share`` of the way from ``start`` to ``end``."""
    red, green, blue = (round(a + (b - a) * share) for a, b in zip(start, end, strict=True))
    return red, green, blue


def _text_layer(text: str, style: ImageStyle, colour: RGB) -> Image.Image:
    """The text, centred and wrapped on a transparent layer, turned by ``style.rotation``."""
    width, height = BANNER_SIZE
    shrink = 0.8 if style.rotation else 1.0  # leave room for the corners of turned text
    box = (round((width - 2 * _MARGIN) * shrink), round((height - 2 * _MARGIN) * shrink))
    font, lines = _layout(text, style, box)
    step = _line_height(font)
    layer = Image.new("RGBA", BANNER_SIZE, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    top = (height - step * len(lines)) // 2
    for i, line in enumerate(lines):
        left = (width - font.getlength(line)) / 2
        draw.text((left, top + i * step), line, font=font, fill=(*colour, 255))
    if style.rotation:
        layer = layer.rotate(style.rotation, resample=Image.Resampling.BICUBIC)
    return layer


def _background(palette: Palette, rng: random.Random) -> Image.Image:
    """A plain background with an accent frame and a corner badge, placed by the seed."""
    background, _text, accent = palette
    image = Image.new("RGBA", BANNER_SIZE, (*background, 255))
    draw = ImageDraw.Draw(image)
    width, height = BANNER_SIZE
    inset = rng.randint(14, 26)
    draw.rectangle((inset, inset, width - inset, height - inset), outline=accent, width=6)
    corner = rng.choice(((40, 40), (width - 40, 40), (40, height - 40), (width - 40, height - 40)))
    radius = rng.randint(10, 18)
    draw.ellipse(
        (corner[0] - radius, corner[1] - radius, corner[0] + radius, corner[1] + radius),
        fill=accent,
    )
    return image


def _add_noise(image: Image.Image, share: float, rng: random.Random) -> Image.Image:
    """Replace about ``share`` of the pixels with random colours (seeded salt and pepper)."""
    size = image.size
    pixels = size[0] * size[1]
    threshold = round(share * 256)
    mask = Image.frombytes("L", size, rng.randbytes(pixels)).point(
        lambda v: 255 if v < threshold else 0
    )
    speckle = Image.frombytes("RGB", size, rng.randbytes(pixels * 3)).convert("RGBA")
    return Image.composite(speckle, image, mask)


def render_banner(text: str, style: ImageStyle, seed: int) -> bytes:
    """PNG bytes of a banner ad showing ``text``: deterministic for (text, style, seed).

    The seed picks the colour scheme and the decoration; the text is wrapped and set in the
    largest size that fits.
    """
    rng = random.Random(f"platform-audit/banner/{seed}")
    palette = rng.choice(_PALETTES)
    image = _background(palette, rng)
    layer = _text_layer(text, style, _text_colour(palette, style.low_contrast))
    image = Image.alpha_composite(image, layer)
    if style.noise:
        image = _add_noise(image, style.noise, rng)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return clean_png(buffer.getvalue())


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEPT = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})  # what draws the picture


def clean_png(data: bytes) -> bytes:
    """The PNG with only the chunks that draw it: no text, EXIF, time or other metadata."""
    if not data.startswith(_PNG_SIGNATURE):
        raise RuntimeFailure("a banner is not a PNG file")
    kept, at = [_PNG_SIGNATURE], len(_PNG_SIGNATURE)
    while at + 12 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        end = at + 12 + length
        if data[at + 4 : at + 8] in _PNG_KEPT:
            kept.append(data[at:end])
        at = end
    if at != len(data):
        raise RuntimeFailure("a banner's PNG chunks do not add up to its length")
    return b"".join(kept)


# --- speech -------------------------------------------------------------------------------

_VOICES: Mapping[str, str] = MappingProxyType({"vi": "vi", "en": "en"})
_SPEECH_TIMEOUT = 120.0


class SpeechUnavailable(RuntimeFailure):
    """The espeak-ng program needed for speech probes is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "speech probes need the espeak-ng program, which is not installed;"
            " on Debian or Ubuntu: apt-get install espeak-ng"
        )


def speech_available() -> bool:
    """True when the espeak-ng program is on the PATH."""
    return shutil.which("espeak-ng") is not None


def _voice(language: str) -> str:
    """The espeak-ng voice for a language tag ("vi", "vi-VN", "en-GB"...)."""
    primary = language.split("-")[0].split("_")[0].lower()
    if primary not in _VOICES:
        raise InputError(
            f"'language' must be one of {', '.join(_VOICES)} for speech (got {language!r})"
        )
    return _VOICES[primary]


def render_speech(text: str, language: str, seed: int) -> bytes:
    """WAV bytes of ``text`` spoken by espeak-ng in ``language`` ("vi" or "en").

    The seed picks the speaking rate and pitch, so the same inputs give the same audio.
    Raises :class:`SpeechUnavailable` when espeak-ng is missing.
    """
    voice = _voice(language)
    if not text.strip():
        raise InputError("'text' of a speech probe must not be empty")
    program = shutil.which("espeak-ng")
    if program is None:
        raise SpeechUnavailable()
    rng = random.Random(f"platform-audit/speech/{seed}")
    rate, pitch = rng.randint(140, 180), rng.randint(35, 65)
    with tempfile.TemporaryDirectory(prefix="platform-audit-") as folder:
        wav = Path(folder) / "probe.wav"
        options = ["-v", voice, "-s", str(rate), "-p", str(pitch), "-b", "1"]
        _run([program, *options, "-w", str(wav), "--stdin"], text)
        return clean_wav(wav.read_bytes())


_WAV_KEPT = frozenset({b"fmt ", b"data"})  # the format and the samples


def clean_wav(data: bytes) -> bytes:
    """The WAV with only its format and samples: no LIST/INFO or other metadata chunk."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeFailure("a recording is not a WAV file")
    kept, at = [], 12
    while at + 8 <= len(data):
        (length,) = struct.unpack("<I", data[at + 4 : at + 8])
        end = min(len(data), at + 8 + length + (length & 1))  # chunks are padded to even
        if data[at : at + 4] in _WAV_KEPT:
            kept.append(data[at:end])
        at = end
    body = b"WAVE" + b"".join(kept)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _run(command: list[str], text: str) -> None:
    """Run espeak-ng with ``text`` on its standard input; failures become RuntimeFailure."""
    try:
        subprocess.run(  # noqa: S603 - a fixed program path and fixed arguments, no shell
            command,
            input=text.encode("utf-8"),
            capture_output=True,
            check=True,
            timeout=_SPEECH_TIMEOUT,
        )
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeFailure(f"espeak-ng failed with exit code {exc.returncode}: {detail}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeFailure(f"espeak-ng did not finish within {_SPEECH_TIMEOUT:g} s") from exc
