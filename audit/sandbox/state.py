"""The reference sandbox's state file: posts, drawn fates, notices, withdrawals and ids on disk.

A sandbox served with a state file (``platform-audit sandbox serve --state FILE``) writes every
change to it before it answers, one SQLite transaction per change (WAL journal: a transaction the
sandbox answered for survives ``kill -9``), and reads it back when it starts. So a sandbox killed
and restarted mid-audit answers every existing post as before, dedupes idempotency keys it saw
before the restart, never hands out an id twice, and its ground truth covers the whole life of
the file.

The file also keeps the time base: the moderation settings that decide fates (seed, time scale,
rules; never the token) and the epoch at which the file was created. Reopening it with other
settings, or with a clock that is behind the file's last event, is refused: removal times drawn
under one time base would not mean the same under another.

Tables: ``meta`` (key, value), ``posts`` (post_id, idempotency_key, record as JSON),
``blocked`` (seq, record as JSON), ``openings`` (seq, at: each time the file was opened).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from audit.errors import InputError
from audit.sandbox.moderation import Media, PostRecord, SandboxConfig

__all__ = ["LoadedState", "SandboxStateFile", "config_digest"]

FORMAT = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS posts (
    post_id TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocked (seq INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS openings (seq INTEGER PRIMARY KEY, at REAL NOT NULL);
"""


def config_digest(config: SandboxConfig) -> str:
    """A digest of the settings that decide fates (the token and how decisions are reported,
    ``statements``, are left out)."""
    settings = config.model_dump(mode="json", exclude={"token", "statements"})
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def record_json(record: PostRecord) -> str:
    return json.dumps(dataclasses.asdict(record), sort_keys=True)


def record_from_json(text: str) -> PostRecord:
    data: dict[str, Any] = json.loads(text)
    media = data.pop("media")
    notices = [(str(kind), float(at)) for kind, at in data.pop("notices")]
    if media:
        media["variants"] = tuple(media.get("variants", ()))
    return PostRecord(**data, notices=notices, media=Media(**media) if media else None)


def _last_event(record: PostRecord) -> float:
    times = [record.created_at, record.withdrawn_at or 0.0, *(at for _, at in record.notices)]
    return max(times)


@dataclasses.dataclass
class LoadedState:
    """What a state file held when it was opened."""

    posts: dict[str, PostRecord]
    blocked: list[dict[str, Any]]
    issued: int  # ids handed out so far (posts and blocked uploads)
    epoch: float  # when the file was created (platform clock)
    openings: list[float]


class SandboxStateFile:
    """One sandbox state file, opened for one sandbox process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(
                f"--state: cannot open {path} as a sandbox state file ({exc})"
            ) from None

    def open(self, config: SandboxConfig, now: float) -> LoadedState:
        """Check the file matches this sandbox's time base, record the opening, read it back."""
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            meta = self._initialise(config, now)
        self._check(meta, config, now)
        with self._transaction():
            self._db.execute("INSERT INTO openings (at) VALUES (?)", (now,))
        return self._load(meta)

    def _initialise(self, config: SandboxConfig, now: float) -> dict[str, str]:
        meta = {
            "format": FORMAT,
            "seed": str(config.seed),
            "time_scale": repr(config.time_scale),
            "config_digest": config_digest(config),
            "epoch": repr(now),
            "issued": "0",
            "last_event_at": repr(now),
        }
        with self._transaction():
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        return meta

    def _check(self, meta: dict[str, str], config: SandboxConfig, now: float) -> None:
        where = f"the sandbox state file {self.path}"
        if meta.get("format") != FORMAT:
            raise InputError(f"{where} has format {meta.get('format')!r}, expected {FORMAT!r}")
        for name, value in (("seed", str(config.seed)), ("time_scale", repr(config.time_scale))):
            if meta[name] != value:
                flag = name.replace("_", "-")
                raise InputError(
                    f"{where} was created with {name} {meta[name]} (got {value}): restart with "
                    f"--{flag} {meta[name]}, or name a new --state file"
                )
        if meta["config_digest"] != config_digest(config):
            raise InputError(
                f"{where} was created with other moderation rules (--config): restart with the "
                "same configuration, or name a new --state file"
            )
        if now < float(meta["last_event_at"]):
            raise InputError(
                f"{where} records an event at {meta['last_event_at']}, after this clock's now "
                f"({now!r}): its removal times would not hold"
            )

    def _load(self, meta: dict[str, str]) -> LoadedState:
        posts = {
            post_id: record_from_json(record)
            for post_id, record in self._db.execute("SELECT post_id, record FROM posts")
        }
        blocked = [
            json.loads(r) for (r,) in self._db.execute("SELECT record FROM blocked ORDER BY seq")
        ]
        openings = [at for (at,) in self._db.execute("SELECT at FROM openings ORDER BY seq")]
        return LoadedState(posts, blocked, int(meta["issued"]), float(meta["epoch"]), openings)

    def save_post(self, record: PostRecord, issued: int | None = None) -> None:
        """Write one post as it is now (created, resubmitted, noticed or withdrawn)."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO posts VALUES (?, ?, ?) ON CONFLICT (post_id) "
                "DO UPDATE SET record = excluded.record",
                (record.post_id, record.idempotency_key, record_json(record)),
            )
            self._event(_last_event(record), issued)

    def save_blocked(self, entry: dict[str, Any], issued: int) -> None:
        with self._transaction():
            self._db.execute("INSERT INTO blocked (record) VALUES (?)", (json.dumps(entry),))
            self._event(float(entry["at"]), issued)

    def _event(self, at: float, issued: int | None) -> None:
        self._db.execute(
            "UPDATE meta SET value = ? WHERE key = 'last_event_at' AND CAST(value AS REAL) < ?",
            (repr(at), at),
        )
        if issued is not None:
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'issued'", (str(issued),))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
