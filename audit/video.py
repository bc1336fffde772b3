"""Video probes: a short MP4 (H.264 video, AAC sound) made of a probe's banner and its speech.

The frames are the probe's banner (:func:`audit.media.render_banner`, plain style) and the sound
track its speech (:func:`audit.media.render_speech`); a video variant (:data:`VIDEO_VARIANTS`)
says where the text is: on screen, in the sound, both, or on screen in the first or the last
seconds only. Where the text is not on screen the frames show the same banner without its text,
and where it is not spoken the track is silent, so every video has both streams.

Videos are made by the ``ffmpeg`` program (Debian package ``ffmpeg``);
:class:`VideoUnavailable` says so when it is missing. They are deterministic for their inputs
with one ffmpeg build (another version of its encoders may give other bytes): one encoder thread
and ffmpeg's bit-exact mode, with no metadata, no encoder name (neither in the
container nor in the H.264 stream's SEI units) and no creation time, so a platform sees nothing
that names the tool or the program that made the file.

Errors::

    InputError            an unknown language, an empty text
    RuntimeFailure
    ├── SpeechUnavailable     espeak-ng is not installed (a variant with speech)
    └── VideoUnavailable      ffmpeg is not installed
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from audit.errors import InputError, RuntimeFailure

__all__ = [
    "PLAIN_VIDEO",
    "SCREEN_SECONDS",
    "TEXT_WINDOW_SECONDS",
    "VIDEO_VARIANTS",
    "ScreenText",
    "VideoStyle",
    "VideoUnavailable",
    "render_video",
    "video_available",
]

ScreenText = Literal["all", "first", "last", "none"]
PLAIN_VIDEO = "video_plain"
SCREEN_SECONDS = 6.0  # the length of a video without speech
TEXT_WINDOW_SECONDS = 2.0  # how long the text shows in a first- or last-seconds video
_MIN_SECONDS = 4.0  # a spoken video lasts its speech plus a short tail, and at least this
_TAIL_SECONDS = 0.5
_FRAME_RATE = 10
_SAMPLE_RATE = 22050  # espeak-ng's rate: a silent track uses it too
_VIDEO_TIMEOUT = 120.0


@dataclass(frozen=True)
class VideoStyle:
    """Where a video carries its text.

    ``screen`` is when the text shows on the banner: ``all`` the time, in the ``first`` or the
    ``last`` :data:`TEXT_WINDOW_SECONDS` only, or never (``none``); ``speech`` is whether the
    sound track speaks it (otherwise the track is silent).
    """

    screen: ScreenText = "all"
    speech: bool = True

    def __post_init__(self) -> None:
        if self.screen not in ("all", "first", "last", "none"):
            raise InputError(f"'screen' must be all, first, last or none (got {self.screen!r})")
        if self.screen == "none" and not self.speech:
            raise InputError("a video must carry its text on screen, in its speech or both")


VIDEO_VARIANTS: Mapping[str, VideoStyle] = MappingProxyType(
    {
        PLAIN_VIDEO: VideoStyle(),
        "video_audio_only": VideoStyle(screen="none"),
        "video_screen_only": VideoStyle(speech=False),
        "video_text_first": VideoStyle(screen="first", speech=False),
        "video_text_last": VideoStyle(screen="last", speech=False),
    }
)


class VideoUnavailable(RuntimeFailure):
    """The ffmpeg program needed for video probes is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "video probes need the ffmpeg program, which is not installed;"
            " on Debian or Ubuntu: apt-get install ffmpeg"
        )


def video_available() -> bool:
    """True when the ffmpeg program is on the PATH."""
    return shutil.which("ffmpeg") is not None


def _seconds(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as reader:
        frames, rate = int(reader.getnframes()), int(reader.getframerate())
    return frames / rate


def _duration(speech: bytes | None) -> float:
    """How long the video lasts: its speech and a tail (at least a few seconds), or fixed."""
    if speech is None:
        return SCREEN_SECONDS
    return max(_MIN_SECONDS, round(_seconds(speech) + _TAIL_SECONDS, 1))


def _frames(style: VideoStyle, duration: float) -> str:
    """The filter that draws the frames from the blank banner [0] and the text banner [1]."""
    shown = {
        "all": "1",
        "first": f"lt(t,{TEXT_WINDOW_SECONDS:g})",
        "last": f"gte(t,{duration - TEXT_WINDOW_SECONDS:g})",
        "none": "0",
    }[style.screen]
    return f"[0:v][1:v]overlay=enable='{shown}',format=yuv420p[v]"


def _inputs(folder: Path, speech: bool) -> list[str]:
    still = ["-loop", "1", "-framerate", str(_FRAME_RATE), "-i"]
    sound = (
        ["-i", str(folder / "speech.wav")]
        if speech
        else ["-f", "lavfi", "-i", f"anullsrc=r={_SAMPLE_RATE}:cl=mono"]
    )
    return [*still, str(folder / "blank.png"), *still, str(folder / "text.png"), *sound]


# Bit-exact encoding with no metadata: no encoder names in the container ("Lavf", "Lavc"), in
# the sample description (the blank "encoder" tags) or in the H.264 SEI units (type 6).
_ENCODING = [
    *("-c:v", "libx264", "-preset", "medium", "-tune", "stillimage", "-crf", "28"),
    *("-g", str(_FRAME_RATE * 2), "-threads", "1", "-flags:v", "+bitexact"),
    *("-bsf:v", "filter_units=remove_types=6"),
    *("-c:a", "aac", "-b:a", "48k", "-flags:a", "+bitexact"),
    *("-map_metadata", "-1", "-map_chapters", "-1"),
    *("-metadata:s:v", "encoder= ", "-metadata:s:a", "encoder= "),
    *("-fflags", "+bitexact", "-movflags", "+faststart", "-f", "mp4"),
]


def _command(program: str, folder: Path, style: VideoStyle, duration: float) -> list[str]:
    audio = "[2:a]apad[a]"
    return [
        program,
        *("-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-fflags", "+bitexact"),
        *_inputs(folder, style.speech),
        *("-filter_complex", f"{_frames(style, duration)};{audio}", "-filter_threads", "1"),
        *("-map", "[v]", "-map", "[a]", "-t", f"{duration:g}"),
        *_ENCODING,
        str(folder / "video.mp4"),
    ]


def render_video(text: str, language: str, style: VideoStyle, seed: int) -> bytes:
    """MP4 bytes of a short video carrying ``text`` as ``style`` says: deterministic for
    (text, language, style, seed).

    The seed picks the banner's colours and decoration and the speech's rate and pitch, as for
    the banner and speech probes. Raises :class:`VideoUnavailable` when ffmpeg is missing and
    :class:`~audit.media.SpeechUnavailable` when a spoken variant needs espeak-ng.
    """
    # the drawing and speech code (Pillow) loads only when a video is made: the sandbox reads
    # the variants' data above without it
    from audit.media import ImageStyle, render_banner, render_speech

    if not text.strip():
        raise InputError("'text' of a video probe must not be empty")
    program = shutil.which("ffmpeg")
    if program is None:
        raise VideoUnavailable()
    speech = render_speech(text, language, seed) if style.speech else None
    duration = _duration(speech)
    plain = ImageStyle()
    with tempfile.TemporaryDirectory(prefix="video-") as name:
        folder = Path(name)
        (folder / "blank.png").write_bytes(render_banner("", plain, seed))
        (folder / "text.png").write_bytes(render_banner(text, plain, seed))
        if speech is not None:
            (folder / "speech.wav").write_bytes(speech)
        _run(_command(program, folder, style, duration))
        return (folder / "video.mp4").read_bytes()


def _run(command: list[str]) -> None:
    """Run ffmpeg; its failures become RuntimeFailure."""
    try:
        subprocess.run(  # noqa: S603 - a fixed program path and fixed arguments, no shell
            command, capture_output=True, check=True, timeout=_VIDEO_TIMEOUT
        )
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeFailure(f"ffmpeg failed with exit code {exc.returncode}: {detail}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeFailure(f"ffmpeg did not finish within {_VIDEO_TIMEOUT:g} s") from exc
