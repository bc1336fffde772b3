"""Media probes stay safe: no file the tool uploads names the tool, the audit, the probe or the
programs that made it, and every file is still a valid image, recording or video.

Covers every generated media kind: a banner and a recording in every style, and a video in every
variant, each obtained as the adapters obtain it (:func:`audit.probe_media.probe_media`).
Corpus media are the regulator's files, submitted verbatim: the tool transforms nothing there.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import wave
from functools import cache
from types import MappingProxyType

import pytest
from PIL import Image, PngImagePlugin

from audit.media import IMAGE_VARIANTS, SPEECH_VARIANTS, clean_png, clean_wav
from audit.packs import Modality, load_pack, resolve_pack
from audit.probe import Probe
from audit.probe_media import probe_media
from audit.synthesis import SampleSize, synthesize
from audit.video import VIDEO_VARIANTS
from tests.test_media import require_program

FORBIDDEN = (
    b"platform-audit",
    b"platform_audit",
    b"audit",
    b"Audit",
    b"AUDIT",
    b"probe",
    b"Probe",
    b"Lavf",
    b"Lavc",
    b"x264",
    b"ffmpeg",
    b"FFmpeg",
    b"espeak",
    b"eSpeak",
    b"Pillow",
    b"PIL",
    b"Software",
    b"Comment",
    b"encoder",
)
PNG_DRAWING = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}
# MP4 boxes that hold metadata: none may carry an entry (ffmpeg's mp4 muxer always writes an
# empty item list, which names nothing)
MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"udta"}


@cache
def media_probes() -> tuple[Probe, ...]:
    """Probes of VN-SUP-01 in every image and speech style (one arm each) and every video
    variant (dealt in turn over the video share)."""
    require_program("ffmpeg", "ffmpeg")
    require_program("ffprobe", "ffmpeg")
    require_program("espeak-ng", "espeak-ng")
    pack = load_pack(resolve_pack("vn-superstition"))
    styles = [*IMAGE_VARIANTS, *SPEECH_VARIANTS]
    size = SampleSize(
        len(styles) + 2 * len(VIDEO_VARIANTS),
        0,
        video_share=0.5,
        variant_arms=MappingProxyType(dict.fromkeys(styles, 1)),
    )
    probes = synthesize(pack, 5, size, run_key="safety", criteria=["VN-SUP-01"])
    return tuple(p for p in probes if p.modality is not Modality.TEXT)


def kinds() -> list[str]:
    return sorted({*IMAGE_VARIANTS, *SPEECH_VARIANTS, *VIDEO_VARIANTS})


def probe_of(kind: str) -> Probe:
    for probe in media_probes():
        if probe.media_style == kind or (kind == "video_plain" and probe.media_style is None):
            return probe
    raise AssertionError(f"no {kind} probe was synthesised")


@cache
def uploaded(kind: str) -> bytes:
    media = probe_media(probe_of(kind))
    assert media is not None
    return media


def png_chunks(data: bytes) -> list[bytes]:
    found, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        found.append(data[at + 4 : at + 8])
        at += 12 + length
    return found


def wav_chunks(data: bytes) -> list[bytes]:
    found, at = [], 12
    while at < len(data):
        (length,) = struct.unpack("<I", data[at + 4 : at + 8])
        found.append(data[at : at + 4])
        at += 8 + length + (length & 1)
    return found


def mp4_boxes(data: bytes, path: str = "") -> list[tuple[str, bytes]]:
    found, at = [], 0
    while at + 8 <= len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        size = size or len(data) - at
        name = f"{path}/{kind.decode('latin-1')}"
        found.append((name, data[at + 8 : at + size]))
        if kind in MP4_CONTAINERS:
            found += mp4_boxes(data[at + 8 : at + size], name)
        elif kind == b"meta":
            found += mp4_boxes(data[at + 12 : at + size], name)  # a full box: 4 bytes first
        at += size
    return found


def ffprobe(data: bytes) -> dict[str, object]:
    command = ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", "-"]
    answer = subprocess.run(command, input=data, capture_output=True, check=True)
    info: dict[str, object] = json.loads(answer.stdout)
    return info


@pytest.mark.parametrize("kind", kinds())
def test_no_uploaded_file_names_the_tool_the_probe_or_its_programs(kind: str) -> None:
    data, probe = uploaded(kind), probe_of(kind)
    for word in (*FORBIDDEN, probe.probe_id.encode()):
        assert word not in data, f"{kind} contains {word!r}"


@pytest.mark.parametrize("kind", sorted(IMAGE_VARIANTS))
def test_banners_keep_only_the_chunks_that_draw_them(kind: str) -> None:
    data = uploaded(kind)
    assert set(png_chunks(data)) <= PNG_DRAWING
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (1200, 628) and not image.info and not image.getexif()


@pytest.mark.parametrize("kind", sorted(SPEECH_VARIANTS))
def test_speech_keeps_only_its_format_and_samples(kind: str) -> None:
    data = uploaded(kind)
    assert wav_chunks(data) == [b"fmt ", b"data"]
    with wave.open(io.BytesIO(data)) as recording:
        assert recording.getnframes() / recording.getframerate() > 1.0
    info = ffprobe(data)
    assert isinstance(info["format"], dict) and "tags" not in info["format"]


@pytest.mark.parametrize("kind", sorted(VIDEO_VARIANTS))
def test_videos_carry_no_metadata_and_still_play(kind: str) -> None:
    data = uploaded(kind)
    boxes = dict(mp4_boxes(data))
    assert boxes.get("/moov/udta/meta/ilst", b"") == b""  # the item list has no entry
    assert not [name for name in boxes if name.endswith(("/©too", "/©nam", "/©cmt", "/uuid"))]
    info = ffprobe(data)
    streams = info["streams"]
    assert isinstance(streams, list) and isinstance(info["format"], dict)
    assert {s["codec_name"] for s in streams} == {"h264", "aac"}
    assert float(info["format"]["duration"]) > 3.0
    brands = {"major_brand", "minor_version", "compatible_brands"}
    assert set(info["format"].get("tags", {})) <= brands  # only what the ftyp box says
    for stream in streams:
        assert stream["tags"].get("encoder", "").strip() == ""


def test_metadata_chunks_are_stripped_and_the_picture_kept() -> None:
    image = Image.new("RGB", (8, 8), (200, 30, 40))
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "platform-audit")
    info.add_itxt("Comment", "probe 1234")
    exif = Image.Exif()
    exif[0x0131] = "platform-audit"  # EXIF Software
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, exif=exif)
    marked = buffer.getvalue()
    assert b"platform-audit" in marked and {b"tEXt", b"iTXt"} <= set(png_chunks(marked))
    clean = clean_png(marked)
    assert set(png_chunks(clean)) == {b"IHDR", b"IDAT", b"IEND"}
    assert b"platform-audit" not in clean and b"probe" not in clean
    with Image.open(io.BytesIO(clean)) as back:
        assert back.tobytes() == image.tobytes()


def test_list_info_chunks_are_stripped_and_the_samples_kept() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(22050)
        recording.writeframes(b"\x01\x02" * 100)
    plain = buffer.getvalue()
    info = b"INFOISFT" + struct.pack("<I", 15) + b"eSpeak NG 1.51\x00\x00"
    listed = plain + b"LIST" + struct.pack("<I", len(info)) + info
    listed = b"RIFF" + struct.pack("<I", len(listed) - 8) + listed[8:]
    clean = clean_wav(listed)
    assert wav_chunks(clean) == [b"fmt ", b"data"] and b"eSpeak" not in clean
    with wave.open(io.BytesIO(clean)) as back:
        assert back.readframes(100) == b"\x01\x02" * 100
    assert clean == plain
