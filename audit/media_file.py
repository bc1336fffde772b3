"""A media probe's file as an adapter uploads it: bytes, type, a neutral file name, digest.

The bytes come from :func:`audit.probe_media.probe_media` (rebuilt from the probe's recipe, or
read from the regulator's corpus). The file name is an ordinary camera-or-phone style name
derived from the digest (``IMG_4821.png``), so nothing in an upload names the audit or the
probe; the digest is what the evidence ledger records as sent, and what ``verify`` compares
with the probe's media made again.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

from audit.probe import Probe
from audit.probe_media import probe_media

__all__ = ["MediaFile", "media_file", "media_record"]

_EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {
        "image/png": "png",
        "image/jpeg": "jpg",
        "image/webp": "webp",
        "audio/wav": "wav",
        "audio/x-wav": "wav",
        "audio/mpeg": "mp3",
        "audio/ogg": "ogg",
        "video/mp4": "mp4",
        "video/webm": "webm",
    }
)
_STEMS: Mapping[str, str] = MappingProxyType({"image": "IMG", "audio": "AUD", "video": "VID"})


@dataclass(frozen=True)
class MediaFile:
    """One file to upload."""

    data: bytes
    media_type: str

    @cached_property  # read for the name, the template values and the ledger: hashed once
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def name(self) -> str:
        kind = self.media_type.partition("/")[0]
        extension = _EXTENSIONS.get(self.media_type, "bin")
        number = 1000 + int(self.sha256[:8], 16) % 9000
        return f"{_STEMS.get(kind, 'FILE')}_{number}.{extension}"

    def template_values(self) -> dict[str, str]:
        """What a profile's templates may insert: ``{media.type}``, ``{media.base64}``..."""
        return {
            "media.type": self.media_type,
            "media.name": self.name,
            "media.size": str(self.size),
            "media.sha256": self.sha256,
            "media.base64": base64.b64encode(self.data).decode("ascii"),
        }


def media_file(probe: Probe) -> MediaFile | None:
    """The probe's file, or None for a text probe; raises like :func:`probe_media`."""
    data = probe_media(probe)
    if data is None or probe.media_type is None:
        return None
    return MediaFile(data, probe.media_type)


def media_record(media: MediaFile) -> dict[str, object]:
    """How the evidence ledger records the media a request carried."""
    return {"sha256": media.sha256, "bytes": media.size, "type": media.media_type}
