"""Deterministic ``.tar.gz`` archives of a flat set of files, read strictly and within limits.

Written the same way on every machine: files sorted, ``mtime`` 0, owner 0, mode 0644, one top
folder, and a fixed gzip header (no name, no time, OS byte 255) that does not depend on the local
zlib. A reader accepts only that form, checks the gzip CRC and length itself, never writes to
disk, and refuses links, devices, nested folders, odd names and content over
:data:`MAX_CONTENT_BYTES`. So a single changed byte anywhere in an archive is always found:
in the header by comparison, in the compressed data by inflate or the CRC.
"""

from __future__ import annotations

import io
import re
import struct
import tarfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "ARCHIVE_SUFFIXES",
    "MAX_CONTENT_BYTES",
    "content_budget",
    "is_archive_path",
    "read_archive",
    "read_archive_stream",
    "read_folder",
    "write_archive",
]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # deflate, no flags, mtime 0, OS 255
MAX_CONTENT_BYTES = 1 << 30
MAX_RATIO = 50
MIN_BUDGET = 64 << 20
_CHUNK = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def is_archive_path(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(data) + compressor.flush()
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return GZIP_HEADER + body + trailer


def _tar(files: dict[str, bytes], folder: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(files[name])
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def write_archive(files: dict[str, bytes], folder: str) -> bytes:
    """The archive's bytes: ``folder/<name>`` for every file."""
    return _gzip(_tar(files, folder))


class _Refused(Exception):
    """The archive is not in the exported form or exceeds a limit; the message says how."""


class _Inflating(io.RawIOBase):
    """The inflated content of a gzip stream in the exported form, read on demand: at most
    ``budget`` bytes ever come out, and the CRC and length are checked at the end."""

    def __init__(self, source: BinaryIO, budget: int) -> None:
        if source.read(len(GZIP_HEADER)) != GZIP_HEADER:
            raise _Refused("the gzip header differs from the exported form (changed or re-packed)")
        self._source = source
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._budget = budget
        self._size = 0
        self._crc = 0
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending and not self._inflater.eof:
            self._pending = self._inflate_some(len(view))
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def _inflate_some(self, want: int) -> bytes:
        tail = self._inflater.unconsumed_tail or self._source.read(_CHUNK)
        if not tail:
            raise _Refused("the archive is truncated")
        try:
            chunk = self._inflater.decompress(tail, max(want, 1))
        except zlib.error as exc:
            raise _Refused(f"the compressed data is damaged ({exc})") from None
        self._size += len(chunk)
        if self._size > self._budget:
            raise _Refused(f"the content is larger than {self._budget} bytes")
        self._crc = zlib.crc32(chunk, self._crc)
        return chunk

    def finish(self) -> None:
        """Read what is left (only the tar's end padding is allowed) and check the trailer."""
        left = 0
        while chunk := self.read(_CHUNK):
            left += len(chunk)
            if left > tarfile.RECORDSIZE:
                raise _Refused("the content continues after the end of the tar archive")
        trailer = self._inflater.unused_data + self._source.read(16)
        if len(trailer) != 8:
            raise _Refused("the archive does not end where its compressed data ends")
        crc, size = struct.unpack("<II", trailer)
        if crc != self._crc or size != self._size & 0xFFFFFFFF:
            raise _Refused("the gzip checksum does not match the content (damaged or changed)")


def content_budget(compressed_bytes: int) -> int:
    """How many bytes an archive of this size may inflate to: bundles are JSON and HTML, which
    compress about tenfold, so :data:`MAX_RATIO` times is generous, but never more than
    :data:`MAX_CONTENT_BYTES` (and never less than :data:`MIN_BUDGET`)."""
    return min(MAX_CONTENT_BYTES, max(MIN_BUDGET, MAX_RATIO * compressed_bytes))


def _member_problem(member: tarfile.TarInfo, top: str | None, files: dict[str, bytes]) -> str:
    folder, _, name = member.name.partition("/")
    if not member.isreg():
        return f"{member.name}: not a regular file"
    if folder != (top or folder) or not _NAME.match(name) or not _NAME.match(folder):
        return f"{member.name}: not a file of the bundle's one folder"
    if name in files:
        return f"{member.name}: appears twice"
    return ""


def _members(content: _Inflating, budget: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    top: str | None = None
    used = 0
    with tarfile.open(fileobj=content, mode="r|") as tar:
        for member in tar:
            problem = _member_problem(member, top, files)
            if problem:
                raise _Refused(problem)
            used += member.size
            if used > budget:  # checked on the header, before reading the member
                raise _Refused(f"{member.name}: the content is larger than {budget} bytes")
            top = top or member.name.partition("/")[0]
            handle = tar.extractfile(member)
            files[member.name.partition("/")[2]] = handle.read() if handle is not None else b""
    content.finish()
    return files


def read_archive_stream(
    source: BinaryIO, compressed_bytes: int
) -> tuple[dict[str, bytes], str | None]:
    """The files of an archive written by :func:`write_archive`, read as a stream: never more
    than :func:`content_budget` bytes inflated, each member's size checked on its header before
    it is read; or what is wrong with it."""
    budget = content_budget(compressed_bytes)
    try:
        return _members(_Inflating(source, budget), budget), None
    except _Refused as exc:
        return {}, str(exc)
    except (tarfile.TarError, EOFError, ValueError, OSError) as exc:
        return {}, f"the tar content is damaged ({exc})"


def read_archive(data: bytes) -> tuple[dict[str, bytes], str | None]:
    """The files of an archive written by :func:`write_archive`, or what is wrong with it."""
    return read_archive_stream(io.BytesIO(data), len(data))


def read_folder(path: Path) -> tuple[dict[str, bytes], list[str], list[str]]:
    """The files of a bundle folder; problems (links, sub-folders, size) and ignored dot-files."""
    files: dict[str, bytes] = {}
    problems: list[str] = []
    ignored: list[str] = []
    total = 0
    for entry in sorted(path.iterdir()):
        if entry.name.startswith("."):
            ignored.append(entry.name)
        elif entry.is_symlink() or not entry.is_file():
            problems.append(f"{entry.name}: not a regular file (links and folders are refused)")
        else:
            total += entry.stat().st_size
            if total > MAX_CONTENT_BYTES:
                problems.append(f"the folder holds more than {MAX_CONTENT_BYTES} bytes")
                break
            try:
                files[entry.name] = entry.read_bytes()
            except OSError as exc:
                problems.append(f"{entry.name}: cannot be read ({exc.strerror or exc})")
    return files, problems, ignored
