"""How the store keeps a ledger entry's canonical text on disk: raw deflate (zlib, no header)
with a preset dictionary of the ledger's field names and common values.

Most entries are a few hundred bytes of JSON whose keys and structure repeat from one entry to
the next; deflate on its own finds little to reuse inside one short entry, but with the
dictionary below as its starting window it refers to it instead. Each entry is compressed on
its own, so any one can be read without the others, and decompressing gives back exactly the
canonical text that was hashed (the hash is over that text, never over these bytes).

The dictionary is part of the store's format (schema version 5): changing a byte of it makes
every stored entry unreadable, so a new dictionary needs a new format byte (:data:`FORMAT`).
"""

from __future__ import annotations

import zlib

__all__ = ["FORMAT", "LedgerCodecError", "decode_entry", "encode_entry"]

#: the first byte of every stored entry: which dictionary it was compressed with
FORMAT = b"\x01"
_LEVEL = 6
# raw deflate (no zlib header or checksum: the entry's hash checks its content) with an 8 KiB
# window, which holds the dictionary; a small window and memory level keep each entry's
# compressor cheap to set up (about 20 us an entry, against 100 us with zlib's defaults)
_WBITS = -13
_MEM_LEVEL = 5


class LedgerCodecError(ValueError):
    """Stored bytes that are no entry this format writes."""


def _dictionary() -> bytes:
    """Typical entries of each action, in canonical form; deflate reaches back to the nearest
    match, so the most frequent kind (a status look) comes last."""
    common = '"mono_ended":0.0,"mono_started":0.0,'
    json_headers = '"headers":{"content-length":"74","content-type":"application/json"}'
    parts = [
        '{"action":"setup","attempt":1,"ended_at":1767225600.0,"error":"ReadTimeout: ",'
        '"headers":{"content-length":"0","content-type":"text/html; charset=utf-8",'
        '"date":"Thu, 01 Jan 2026 00:00:00 GMT","location":"","ratelimit-remaining":"",'
        '"retry-after":"","server":"nginx","x-ratelimit-remaining":"","x-request-id":""},'
        '"media":{"bytes":1,"sha256":"","type":"image/png"},"method":"PUT",' + common + ""
        '"query":"access_token=[REDACTED]&","request_body_cut":true,'
        '"request_body_encoding":"base64","response_body_cut":true,'
        '"response_body_encoding":"base64","response_redacted":true,'
        '"response_truncated":true,"started_at":1767225600.0,"status":500,"url":"https://"}',
        '{"action":"lookup","attempt":2,"ended_at":1767225600.0,'
        '"headers":{"content-type":"application/json; charset=utf-8"},"method":"GET",'
        + common
        + '"response_body":"{\\"error\\":\\"not_found\\",\\"message\\":\\"\\"}",'
        '"response_bytes":0,"started_at":1767225600.0,"status":404,'
        '"url":"http://127.0.0.1:8000/api/v1/posts?idempotency_key="}',
        '{"action":"withdraw","attempt":1,"ended_at":1767225600.0,'
        '"headers":{"content-type":"application/json"},"method":"DELETE",' + common + ""
        '"response_body":"","response_bytes":0,"started_at":1767225600.0,"status":204,'
        '"url":"https://platform.example/api/v1/posts/0000001"}',
        '{"action":"order","attempt":1,"ended_at":1767225600.0,' + json_headers + ","
        '"method":"POST",' + common + '"request_body":"{\\"kind\\":\\"order\\",'
        '\\"reason\\":\\"This post offers a prohibited service under \\"}",'
        '"request_bytes":299,"request_headers":{"content-length":"299",'
        '"content-type":"application/json","idempotency-key":"-order"},"request_sha256":"",'
        '"response_body":"{\\"report_id\\":\\"0000001-1\\",\\"kind\\":\\"order\\",'
        '\\"filed_at\\":\\"2026-01-01T00:00:00.000Z\\"}","response_bytes":80,'
        '"started_at":1767225600.0,"status":202,'
        '"url":"https://platform.example/api/v1/posts/0000001/reports"}',
        '{"action":"notice","attempt":1,"ended_at":1767225600.0,' + json_headers + ","
        '"method":"POST",' + common + '"request_body":"{\\"kind\\":\\"notice\\",'
        '\\"reason\\":\\"\\"}","request_bytes":299,"request_headers":{"content-length":"299",'
        '"content-type":"application/json","idempotency-key":"-notice"},'
        '"response_body":"{\\"report_id\\":\\"0000001-1\\",\\"kind\\":\\"notice\\",'
        '\\"filed_at\\":\\"2026-01-01T00:00:00.000Z\\"}","response_bytes":79,'
        '"started_at":1767225600.0,"status":202,'
        '"url":"https://platform.example/api/v1/posts/0000001/reports"}',
        '{"action":"submit","attempt":1,"ended_at":1767225600.0,' + json_headers + ","
        '"method":"POST",' + common + '"request_body":"{\\"text\\":\\"\\",'
        '\\"modality\\":\\"text\\"}","request_bytes":253,"request_headers":'
        '{"content-length":"253","content-type":"application/json","idempotency-key":""},'
        '"response_body":"{\\"id\\":\\"0000001\\",\\"state\\":\\"visible\\"}",'
        '"response_bytes":34,"started_at":1767225600.0,"status":201,'
        '"url":"https://platform.example/api/v1/posts"}',
    ]
    for state in ("removed", "visible"):
        parts.append(
            '{"action":"status","attempt":1,"ended_at":1767225600.0,' + json_headers + ","
            '"method":"GET",' + common + '"response_body":"{\\"id\\":\\"0000001\\",'
            f'\\"state\\":\\"{state}\\",\\"created_at\\":\\"2026-01-01T00:00:00.000Z\\"}}",'
            '"response_bytes":74,"started_at":1767225600.0,"status":200,'
            '"url":"https://platform.example/api/v1/posts/0000001"}'
        )
    return "".join(parts).encode("utf-8")


_DICTIONARY = _dictionary()


# a compressor that has read the dictionary and nothing else: each entry is compressed by a
# copy of it, which is the state a new compressor given the dictionary starts from (the same
# bytes out), without loading the dictionary into a new one for every entry (11 us an entry
# instead of 30)
_PRIMED = zlib.compressobj(
    _LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, _DICTIONARY
)


def encode_entry(text: str) -> bytes:
    """The stored bytes of an entry's canonical text."""
    packer = _PRIMED.copy()
    return FORMAT + packer.compress(text.encode("utf-8")) + packer.flush()


def decode_entry(data: object) -> str:
    """The canonical text of a stored entry; :class:`LedgerCodecError` when ``data`` is not
    bytes this format wrote (a damaged or changed store)."""
    if not isinstance(data, bytes) or data[:1] != FORMAT:
        raise LedgerCodecError("not a stored ledger entry (unknown format)")
    unpacker = zlib.decompressobj(_WBITS, _DICTIONARY)
    try:
        raw = unpacker.decompress(data[1:]) + unpacker.flush()
    except zlib.error as exc:
        raise LedgerCodecError(f"its compressed bytes are damaged ({exc})") from None
    if not unpacker.eof or unpacker.unused_data:
        raise LedgerCodecError("its compressed bytes are cut off or followed by others")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LedgerCodecError("it does not decompress to UTF-8 text") from None
