"""The rows of the workspace store, as typed values, and their conversion to and from SQLite."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PLANNED_COLUMNS",
    "ExchangeRecord",
    "ObservationRow",
    "ProbeRow",
    "RunRow",
    "ScheduledRun",
    "SlotTaken",
    "insert_sql",
    "planned_probe_to_sql",
    "probe_from_sql",
    "run_from_sql",
    "run_to_sql",
]


@dataclass(frozen=True)
class RunRow:
    run_id: str
    created_at: float
    plan_name: str
    plan: dict[str, Any]
    target_name: str
    target: dict[str, Any]
    pack: dict[str, Any]
    pack_digest: str
    seed: int
    time_scale: float
    status: str
    finished_at: float | None
    failure: str | None
    # the target profile the run read its answers with, as resolved when the run was made
    # (profile targets only): verify reads the recorded answers again with these very rules
    profile: dict[str, Any] | None = None


@dataclass(frozen=True)
class ProbeRow:
    run_id: str
    probe_id: str
    seq: int
    criterion_id: str
    expectation: str
    probe: dict[str, Any]
    trigger: str
    deadline_s: float
    grace_s: float
    state: str
    next_at: float | None
    scheduled_at: float
    post_id: str | None
    submitted_at: float | None
    clock_start: float | None
    deadline_at: float | None
    offsets: list[float] | None
    poll_index: int
    withdrawn_at: float | None
    outcome: str | None
    note: str | None


@dataclass(frozen=True)
class ObservationRow:
    probe_id: str
    action: str
    result: str
    started_at: float
    ended_at: float
    detail: str


@dataclass(frozen=True)
class ScheduledRun:
    """A run made for one cron slot of a recurring plan."""

    plan_name: str
    slot: float
    pack_id: str
    target_name: str
    run_id: str
    created_at: float


class SlotTaken(Exception):
    """Another process already made the run for this cron slot (pack and target)."""


@dataclass(frozen=True)
class ExchangeRecord:
    seq: int
    probe_id: str | None
    entry: dict[str, Any]
    prev_hash: str
    hash: str


RUN_JSON = ("plan", "target", "pack")


def run_from_sql(row: sqlite3.Row) -> RunRow:
    data = dict(row)
    for name in RUN_JSON:
        data[name] = json.loads(data.pop(f"{name}_json"))
    profile = data.pop("profile_json", None)
    data["profile"] = json.loads(profile) if profile is not None else None
    return RunRow(**data)


def probe_from_sql(row: sqlite3.Row) -> ProbeRow:
    data = dict(row)
    data["probe"] = json.loads(data.pop("probe_json"))
    data["offsets"] = json.loads(data["offsets"]) if data["offsets"] else None
    return ProbeRow(**data)


def run_to_sql(run: RunRow) -> dict[str, Any]:
    data = dataclasses.asdict(run)
    for name in RUN_JSON:
        data[f"{name}_json"] = json.dumps(data.pop(name), sort_keys=True, ensure_ascii=False)
    profile = data.pop("profile")
    data["profile_json"] = (
        None if profile is None else json.dumps(profile, sort_keys=True, ensure_ascii=False)
    )
    return data


PLANNED_COLUMNS = [
    "run_id",
    "probe_id",
    "seq",
    "criterion_id",
    "expectation",
    "probe_json",
    "trigger",
    "deadline_s",
    "grace_s",
    "state",
    "next_at",
    "scheduled_at",
]


def planned_probe_to_sql(p: ProbeRow) -> dict[str, Any]:
    data = {name: getattr(p, name) for name in PLANNED_COLUMNS if name != "probe_json"}
    data["probe_json"] = json.dumps(p.probe, sort_keys=True, ensure_ascii=False)
    return data


def insert_sql(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    marks = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608
