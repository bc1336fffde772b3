"""Where a workspace store's bytes go: per table and index (SQLite's ``dbstat``), and within
the ledger entries by field (the length of each field's canonical JSON, key included), and what the
store keeps of the entries' text (schema version 5 compresses it).

    python bench/store_bytes.py WORKSPACE_OR_STORE [--probes N]

Prints JSON: bytes per table and index (pages, so free space inside pages counts), and for the
ledger the total bytes of each top-level field of the entries, with the share of the stored
entry text. ``--probes`` divides every figure by the number of probes.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from audit.ledger_codec import decode_entry


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def table_bytes(db: sqlite3.Connection) -> dict[str, int]:
    rows = db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
    return {str(name): int(size) for name, size in rows}


def field_bytes(db: sqlite3.Connection) -> tuple[dict[str, int], int, int, int]:
    """Bytes of each top-level entry field (``"key":value,`` of its canonical text), the
    entries' canonical text in all, what the store keeps of it, and the number of entries."""
    fields: Counter[str] = Counter()
    text_total = stored_total = count = 0
    columns = {row[1] for row in db.execute("PRAGMA table_info(exchanges)")}
    column = "entry_json" if "entry_json" in columns else "entry"  # schema <= 4, 5
    for (stored,) in db.execute(f"SELECT {column} FROM exchanges"):
        text = stored if isinstance(stored, str) else decode_entry(stored)
        text_total += len(text.encode("utf-8"))
        stored_total += len(stored.encode("utf-8") if isinstance(stored, str) else stored)
        count += 1
        for key, value in json.loads(text).items():
            fields[key] += len(f'"{key}":{_canonical(value)},'.encode())
    return dict(fields.most_common()), text_total, stored_total, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("store", type=Path)
    parser.add_argument("--probes", type=int, help="divide by this many probes")
    args = parser.parse_args()
    path = args.store / "audit.sqlite" if args.store.is_dir() else args.store
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = table_bytes(db)
    fields, total, stored, count = field_bytes(db)
    per = args.probes or 1
    result = {
        "file_bytes": path.stat().st_size,
        "per": "probe" if args.probes else "store",
        "tables_and_indexes": {k: round(v / per) for k, v in tables.items()},
        "ledger_entries": count,
        "entry_text_bytes": round(total / per),
        "entry_stored_bytes": round(stored / per),
        "entry_fields": {k: round(v / per) for k, v in fields.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
