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

__all__ = [
    "ARCHIVE_SUFFIXES",
    "MAX_CONTENT_BYTES",
    "is_archive_path",
    "read_archive",
    "read_folder",
    "write_archive",
]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # deflate, no flags, mtime 0, OS 255
MAX_CONTENT_BYTES = 1 << 30
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


def _inflate(data: bytes) -> tuple[bytes | None, str | None]:
    if data[: len(GZIP_HEADER)] != GZIP_HEADER:
        return None, "the gzip header differs from the exported form (changed or re-packed)"
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    rest = data[len(GZIP_HEADER) :]
    try:
        while not inflater.eof:
            chunk = inflater.decompress(rest, _CHUNK)
            rest = inflater.unconsumed_tail
            if not chunk and not rest:
                break
            out += chunk
            if len(out) > MAX_CONTENT_BYTES:
                return None, f"the content is larger than {MAX_CONTENT_BYTES} bytes"
    except zlib.error as exc:
        return None, f"the compressed data is damaged ({exc})"
    if not inflater.eof:
        return None, "the archive is truncated"
    trailer = inflater.unused_data
    if len(trailer) != 8:
        return None, "the archive does not end where its compressed data ends"
    crc, size = struct.unpack("<II", trailer)
    if crc != zlib.crc32(out) or size != len(out) & 0xFFFFFFFF:
        return None, "the gzip checksum does not match the content (damaged or changed)"
    return bytes(out), None


def _members(raw: bytes) -> tuple[dict[str, bytes], str | None]:
    files: dict[str, bytes] = {}
    top: str | None = None
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for member in tar:
            folder, _, name = member.name.partition("/")
            top = top or folder
            if not member.isreg():
                return files, f"{member.name}: not a regular file"
            if folder != top or not _NAME.match(name) or not _NAME.match(folder):
                return files, f"{member.name}: not a file of the bundle's one folder"
            if name in files:
                return files, f"{member.name}: appears twice"
            handle = tar.extractfile(member)
            files[name] = handle.read() if handle is not None else b""
    return files, None


def read_archive(data: bytes) -> tuple[dict[str, bytes], str | None]:
    """The files of an archive written by :func:`write_archive`, or what is wrong with it."""
    raw, problem = _inflate(data)
    if raw is None:
        return {}, problem
    try:
        return _members(raw)
    except (tarfile.TarError, EOFError, ValueError) as exc:
        return {}, f"the tar content is damaged ({exc})"


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
