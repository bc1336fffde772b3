"""The stored form of ledger entries: what a fresh compressor with the dictionary writes, one
entry at a time, and inflating it gives the canonical text back."""

from __future__ import annotations

import zlib

from audit import ledger_codec
from audit.chain import canonical_json
from audit.ledger_codec import FORMAT, decode_entry, encode_entry


def _fresh(text: str) -> bytes:
    packer = zlib.compressobj(
        ledger_codec._LEVEL,
        zlib.DEFLATED,
        ledger_codec._WBITS,
        ledger_codec._MEM_LEVEL,
        zlib.Z_DEFAULT_STRATEGY,
        ledger_codec._DICTIONARY,
    )
    return FORMAT + packer.compress(text.encode("utf-8")) + packer.flush()


def test_each_entry_is_compressed_as_by_a_fresh_compressor() -> None:
    texts = [
        "",
        canonical_json({"action": "status", "status": 200, "url": "https://p.example/1"}),
        canonical_json({"action": "submit", "request_body": "giải hạn " * 400}),
        ledger_codec._DICTIONARY.decode("utf-8")[-700:],
    ]
    for text in texts * 2:  # a second pass: no entry's compression leaves a trace on the next
        stored = encode_entry(text)
        assert stored == _fresh(text)
        assert decode_entry(stored) == text
