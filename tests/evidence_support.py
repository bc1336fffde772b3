"""Small audits on the virtual clock for the evidence, bundle and hardening tests."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import httpx

from audit.clock import VirtualClock
from audit.ledger_codec import decode_entry
from audit.plan import Plan, Sample, Schedule, Target
from audit.runner import create_runs, execute_run
from audit.sandbox.app import SandboxPlatform, create_app
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.store_protocol import RunStore
from tests.store_backends import open_store


@dataclass
class SmallAudit:
    root: Path
    store: RunStore
    run_id: str
    clock: VirtualClock
    platform: SandboxPlatform | None = None


def tiny_plan(
    violating: int = 2,
    controls: int = 1,
    *,
    criteria: list[str] | None = None,
    token_env: str | None = None,
    seed: int = 7,
    base_url: str = "http://sandbox.test",
) -> Plan:
    return Plan(
        name="evidence",
        packs=["vn-superstition"],
        criteria=criteria,
        targets=[
            Target(
                name="sandbox",
                base_url=base_url,
                rate_limit=None,
                concurrency=8,
                token_env=token_env,
            )
        ],
        seed=seed,
        sample=Sample(violating_per_criterion=violating, controls_per_criterion=controls),
        schedule=Schedule(submission_window="PT1H"),
    )


def start_run(root: Path, plan: Plan, clock: VirtualClock) -> tuple[RunStore, str]:
    store = open_store(root / "audit.sqlite")
    (prepared,) = create_runs(store, plan, None, clock)
    return store, prepared.run_id


def run_against(
    root: Path, plan: Plan, transport: httpx.AsyncBaseTransport, clock: VirtualClock
) -> SmallAudit:
    store, run_id = start_run(root, plan, clock)
    asyncio.run(execute_run(store, run_id, clock, transport=transport))
    return SmallAudit(root, store, run_id, clock)


def sandbox_audit(root: Path, plan: Plan | None = None, token: str | None = None) -> SmallAudit:
    """A run of ``plan`` against the reference sandbox, in process, on the virtual clock."""
    clock = VirtualClock()
    config = load_sandbox_config(default_config_path(), token=token)
    app = create_app(config, clock)
    audit = run_against(root, plan or tiny_plan(), httpx.ASGITransport(app), clock)
    audit.platform = app.state.platform
    return audit


def ledger_rows(path: Path, run_id: str) -> list[tuple[int, str | None, str, str]]:
    """The run's ledger rows as the store file holds them: seq, probe id, the entry's canonical
    text (decompressed) and its hash."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT e.seq, e.probe_id, e.entry, e.hash FROM exchanges e"
            " JOIN run_keys k ON k.run_key = e.run_key WHERE k.run_id = ? ORDER BY e.seq",
            (run_id,),
        ).fetchall()
    finally:
        db.close()
    return [
        (seq, probe, decode_entry(entry), "sha256:" + digest.hex())
        for seq, probe, entry, digest in rows
    ]


def as_version_4(path: Path) -> None:
    """Rewrite a closed store as schema version 4 kept it: its ledger with the run id, the
    entry's JSON text and both hashes as text in every row, and none of the workers' tables
    (which version 5 added); and say it is of version 4."""
    db = sqlite3.connect(path)
    runs = [str(r[0]) for r in db.execute("SELECT run_id FROM run_keys")]
    db.close()
    ledgers = {run_id: ledger_rows(path, run_id) for run_id in runs}
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute("DROP TABLE exchanges")
            db.execute("DROP TABLE run_keys")
            for table in ("leases", "target_pace", "target_places"):
                db.execute(f"DROP TABLE {table}")
            db.execute(
                "CREATE TABLE exchanges (run_id TEXT NOT NULL, seq INTEGER NOT NULL, probe_id TEXT,"
                " entry_json TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,"
                " PRIMARY KEY (run_id, seq))"
            )
            for run_id, ledger in ledgers.items():
                prev = "sha256:" + "0" * 64
                for seq, probe, text, digest in ledger:
                    db.execute(
                        "INSERT INTO exchanges VALUES (?,?,?,?,?,?)",
                        (run_id, seq, probe, text, prev, digest),
                    )
                    prev = digest
            db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    finally:
        db.close()
