"""The PostgreSQL store's schema, version by version (see :mod:`audit.store_pg`).

Version 1 has the tables of the SQLite store's version 4 with PostgreSQL's types (``REAL`` as
``double precision``, ``INTEGER`` as ``bigint``, the observations' rowid as an identity
column), and ``run_locks``: who holds a run's advisory lock. Version 2 adds the workers'
shared state (``leases``, ``target_pace``, ``target_places``). A later version is one more entry
of :data:`MIGRATIONS`, the statements that make it from the one before.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TABLES"]

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL,
    plan_name TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    target_name TEXT NOT NULL,
    target_json TEXT NOT NULL,
    pack_json TEXT NOT NULL,
    pack_digest TEXT NOT NULL,
    seed BIGINT NOT NULL,
    time_scale DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    finished_at DOUBLE PRECISION,
    failure TEXT,
    profile_json TEXT
);
CREATE TABLE probes (
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    criterion_id TEXT NOT NULL,
    expectation TEXT NOT NULL,
    probe_json TEXT NOT NULL,
    trigger TEXT NOT NULL,
    deadline_s DOUBLE PRECISION NOT NULL,
    grace_s DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    next_at DOUBLE PRECISION,
    scheduled_at DOUBLE PRECISION NOT NULL,
    post_id TEXT,
    submitted_at DOUBLE PRECISION,
    clock_start DOUBLE PRECISION,
    deadline_at DOUBLE PRECISION,
    offsets TEXT,
    poll_index BIGINT NOT NULL DEFAULT 0,
    withdrawn_at DOUBLE PRECISION,
    outcome TEXT,
    note TEXT,
    PRIMARY KEY (run_id, probe_id)
);
CREATE INDEX probes_due ON probes (run_id, next_at, seq);
CREATE TABLE observations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    view TEXT NOT NULL DEFAULT 'author',
    author_result TEXT
);
CREATE INDEX observations_probe ON observations (run_id, probe_id);
CREATE TABLE scheduled_runs (
    plan_name TEXT NOT NULL,
    slot DOUBLE PRECISION NOT NULL,
    pack_id TEXT NOT NULL,
    target_name TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (plan_name, slot, pack_id, target_name)
);
CREATE TABLE media_sent (
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (run_id, probe_id, seq)
);
CREATE TABLE exchanges (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    probe_id TEXT,
    entry_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE run_locks (
    run_id TEXT PRIMARY KEY,
    pid BIGINT NOT NULL,
    host TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    command TEXT NOT NULL
);
"""

# version 2: the workers' shared state (audit.store_pg_leases), as in the SQLite store's 5
_SCHEMA_V2 = """
CREATE TABLE leases (
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    until DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, probe_id)
);
CREATE INDEX leases_owner ON leases (owner);
CREATE TABLE target_pace (key TEXT PRIMARY KEY, next_at DOUBLE PRECISION NOT NULL);
CREATE TABLE target_places (
    key TEXT NOT NULL,
    place BIGINT NOT NULL,
    owner TEXT NOT NULL,
    until DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (key, place)
);
"""

MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}
"""Each schema version and the statements that make it from the version before."""

SCHEMA_VERSION = max(MIGRATIONS)
TABLES = (
    "meta",
    "runs",
    "probes",
    "observations",
    "scheduled_runs",
    "media_sent",
    "exchanges",
    "leases",
    "target_pace",
    "target_places",
)
