"""The rows of the workspace store, as typed values, and their conversion to and from SQLite."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from audit.chain import GENESIS
from audit.ledger_codec import LedgerCodecError, decode_entry, encode_entry
from audit.lifecycle import ProbeState, RunStatus

T = TypeVar("T")

__all__ = [
    "EXPECTATIONS",
    "GENESIS_HASH",
    "OUTCOMES",
    "PLANNED_COLUMNS",
    "PROBE_STATES",
    "RUN_STATUSES",
    "DamagedRow",
    "ExchangeRecord",
    "ObservationRow",
    "ProbeRow",
    "RunRow",
    "ScheduledRun",
    "SlotTaken",
    "entry_text_from_sql",
    "exchange_from_sql",
    "hash_from_sql",
    "insert_sql",
    "loads_column",
    "media_sent_by_probe",
    "observation_from_sql",
    "planned_probe_to_sql",
    "probe_from_sql",
    "row_of",
    "run_from_sql",
    "run_to_sql",
    "scheduled_from_sql",
    "sent_media",
    "side_by_side",
    "stored_entry",
    "stored_hash",
    "stored_text",
    "text_exchange_from_sql",
    "typed_row",
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


class ObservationRow(NamedTuple):
    """One observation of a probe: a named tuple, not a dataclass, as a report of 100,000
    probes reads half a million of them (0.3 µs to make against 2.3 µs for a frozen
    dataclass)."""

    probe_id: str
    action: str
    result: str
    started_at: float
    ended_at: float
    detail: str
    # a status look: the view that decided it (author, or observer), and in a look made in
    # both views what the author's view said
    view: str = "author"
    author_result: str | None = None


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
    # the entry's canonical JSON as hashed, when the ledger made it: the store keeps these bytes
    text: str | None = field(default=None, compare=False, repr=False)


def sent_media(entry: Mapping[str, Any]) -> str | None:
    """The digest of the probe media a ledger entry's request carried, when the platform
    answered it: an acceptance or a refusal (a 4xx refusal of the content saw the media too);
    None for no answer or a fault (5xx), which delivered nothing the audit can rely on."""
    media, status = entry.get("media"), entry.get("status")
    if not isinstance(media, Mapping) or not isinstance(status, int) or status >= 500:
        return None
    digest = media.get("sha256")
    return digest if isinstance(digest, str) else None


Row = TypeVar("Row")
Item = TypeVar("Item")


def side_by_side(
    rows: Iterable[Row],
    items: Iterable[Item],
    row_key: Callable[[Row], str],
    item_key: Callable[[Item], str],
) -> Iterator[tuple[Row, list[Item]]]:
    """Each row with the items of its key, both read in the same order of their keys (code
    point order, as both stores sort probe ids), one row's items held at a time; items of a
    key no row has are passed over."""
    pending = iter(items)
    waiting = next(pending, None)
    for row in rows:
        key = row_key(row)
        while waiting is not None and item_key(waiting) < key:
            waiting = next(pending, None)
        mine: list[Item] = []
        while waiting is not None and item_key(waiting) == key:
            mine.append(waiting)
            waiting = next(pending, None)
        yield row, mine


def media_sent_by_probe(records: Iterable[ExchangeRecord]) -> dict[str, frozenset[str]]:
    """For each probe, the digests of the media its recorded requests delivered."""
    found: dict[str, set[str]] = {}
    for record in records:
        digest = sent_media(record.entry)
        if digest is not None and record.probe_id is not None:
            found.setdefault(record.probe_id, set()).add(digest)
    return {probe_id: frozenset(digests) for probe_id, digests in found.items()}


class DamagedRow(ValueError):
    """A stored row does not have the columns, types or JSON this version writes: the store
    file is damaged (or was changed by something else)."""


RUN_JSON = ("plan", "target", "pack")

_NUMBER = (int, float)
_NUMBER_TYPES = frozenset(_NUMBER)
_KINDS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "float": _NUMBER,
    "int": (int,),
    "dict[str, Any]": (dict,),
    "list[float]": (list,),
}


def _kinds(annotation: str) -> tuple[tuple[type, ...], bool]:
    """The Python types a stored column of this annotation may hold, and whether NULL may."""
    optional = annotation.endswith(" | None")
    return _KINDS[annotation.removesuffix(" | None")], optional


_FIELDS: dict[type, dict[str, tuple[tuple[type, ...], bool]]] = {
    cls: {f.name: _kinds(str(f.type)) for f in dataclasses.fields(cls)}
    for cls in (RunRow, ProbeRow, ScheduledRun)
}
# typed_row makes these rows through their __dict__, without __init__: a row class given slots
# or a __post_init__ would be made wrongly, so that is a fault of the package, found at import
for _row_class in _FIELDS:
    if "__slots__" in vars(_row_class) or hasattr(_row_class, "__post_init__"):
        raise TypeError(f"{_row_class.__name__} must keep its fields in __dict__ (typed_row)")


def loads_column(text: object, column: str) -> Any:
    """A JSON column's value; :class:`DamagedRow` when it holds no JSON text."""
    return _loads(text, column)


def _loads(text: object, column: str) -> Any:
    if not isinstance(text, str):
        raise DamagedRow(f"column {column} holds {type(text).__name__}, not JSON text")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DamagedRow(f"column {column} is not valid JSON ({exc})") from None


PROBE_STATES = frozenset(ProbeState)
RUN_STATUSES = frozenset(RunStatus)
EXPECTATIONS = frozenset({"violating", "control"})
OUTCOMES = frozenset(  # the values of audit.outcomes.Outcome (which imports this module)
    {
        "removed_in_time",
        "removed_late",
        "survived",
        "rejected_at_submission",
        "inconclusive",
        "kept",
        "over_removed",
    }
)
_VALUES: dict[type, dict[str, frozenset[str]]] = {
    RunRow: {"status": RUN_STATUSES},
    ProbeRow: {"state": PROBE_STATES, "expectation": EXPECTATIONS, "outcome": OUTCOMES},
}


def typed_row(cls: type[T], data: dict[str, Any]) -> T:
    """``cls(**data)``, once every field is there with the type this version stores
    (:class:`DamagedRow` otherwise): SQLite keeps any value in any column, so a damaged record
    header reads back as text where a number was, or as a number where text was."""
    fields = _FIELDS[cls]
    if data.keys() != fields.keys():
        odd = sorted(set(data) ^ set(fields))
        raise DamagedRow(f"{cls.__name__} row has unexpected or missing columns {odd}")
    for name, (kinds, optional) in fields.items():
        value = data[name]
        if value is None and optional:
            continue
        if type(value) not in kinds:
            raise DamagedRow(f"column {name} holds {type(value).__name__}, not {kinds[0].__name__}")
    for name, allowed in _VALUES.get(cls, {}).items():
        if data[name] is not None and data[name] not in allowed:
            raise DamagedRow(f"column {name} holds {data[name]!r:.40}, never written by this tool")
    return row_of(cls, data)  # every field is there (checked above)


def row_of(cls: type[T], *fields: Mapping[str, Any]) -> T:
    """``cls(**merged fields)`` for a row class of :data:`_FIELDS`, for a fraction of its cost:
    a frozen dataclass's __init__ sets each field through object.__setattr__ (9.6 of a probe
    row's 42 µs read). These are plain frozen dataclasses (checked at import), their fields
    their __dict__; the caller gives every field."""
    made = object.__new__(cls)
    columns = made.__dict__
    for given in fields:
        columns.update(given)
    return made


def run_from_sql(row: sqlite3.Row) -> RunRow:
    data = dict(row)
    for name in RUN_JSON:
        data[name] = _loads(data.pop(f"{name}_json", None), f"{name}_json")
    profile = data.pop("profile_json", None)
    data["profile"] = _loads(profile, "profile_json") if profile is not None else None
    return typed_row(RunRow, data)


def probe_from_sql(row: sqlite3.Row) -> ProbeRow:
    data = dict(row)
    data["probe"] = _loads(data.pop("probe_json", None), "probe_json")
    offsets = data.get("offsets")
    data["offsets"] = _loads(offsets, "offsets") if offsets else None
    # JSON gives only int, float, bool, str, None, list and dict: the types present, in one
    # C-level pass, not an isinstance per number (a row holds a dozen and more offsets)
    found = data["offsets"]
    if found is not None and (type(found) is not list or not {*map(type, found)} <= _NUMBER_TYPES):
        raise DamagedRow("column offsets is not a list of numbers")
    return typed_row(ProbeRow, data)


OBSERVATION_COLUMNS = "probe_id, action, result, started_at, ended_at, detail, view, author_result"


def observation_from_sql(row: Sequence[Any]) -> ObservationRow:
    """An observation from (:data:`OBSERVATION_COLUMNS`); checked inline, as a long run reads
    millions of them."""
    probe_id, action, result, started_at, ended_at, detail, view, author_result = row
    if (
        type(probe_id) is not str
        or type(action) is not str
        or type(result) is not str
        or type(detail) is not str
        or type(started_at) not in _NUMBER
        or type(ended_at) not in _NUMBER
        or view not in ("author", "observer")
        or (author_result is not None and type(author_result) is not str)
    ):
        raise DamagedRow(f"observation of {probe_id!r:.40} holds values of the wrong type")
    return ObservationRow(
        probe_id, action, result, started_at, ended_at, detail, view, author_result
    )


_HASH_PREFIX = "sha256:"
#: the previous-entry hash of a ledger's first entry
GENESIS_HASH = GENESIS


def stored_hash(digest: object) -> bytes:
    """A ledger hash (``sha256:`` and 64 hex digits) as the store keeps it: its 32 bytes."""
    if (
        type(digest) is not str
        or not digest.startswith(_HASH_PREFIX)
        or len(digest) != len(_HASH_PREFIX) + 64
    ):
        raise DamagedRow(f"a ledger hash {digest!r:.80} is not sha256: and 64 hex digits")
    try:
        return bytes.fromhex(digest[len(_HASH_PREFIX) :])
    except ValueError:
        raise DamagedRow(f"a ledger hash {digest!r:.80} is not sha256: and 64 hex digits") from None


def hash_from_sql(value: object) -> str:
    """A stored hash (32 bytes) as the ledger writes it."""
    if type(value) is not bytes or len(value) != 32:
        raise DamagedRow("a ledger hash is not 32 bytes")
    return _HASH_PREFIX + value.hex()


def stored_entry(text: object) -> bytes:
    """An entry's canonical text as the store keeps it (:mod:`audit.ledger_codec`)."""
    if type(text) is not str:
        raise DamagedRow(f"a ledger entry holds {type(text).__name__}, not JSON text")
    return encode_entry(text)


def entry_text_from_sql(value: object) -> str:
    """The canonical text of a stored entry."""
    try:
        return decode_entry(value)
    except LedgerCodecError as exc:
        raise DamagedRow(f"an entry is unreadable: {exc}") from None


def exchange_from_sql(row: Sequence[Any], prev_hash: str) -> ExchangeRecord:
    """A ledger record from (seq, probe_id, entry, hash) as stored, and the hash of the record
    before it (the genesis hash for the first)."""
    seq, probe_id, stored, digest = row
    if type(seq) is not int or (probe_id is not None and type(probe_id) is not str):
        raise DamagedRow(f"ledger record {seq!r:.20} holds values of the wrong type")
    try:
        text = entry_text_from_sql(stored)
        entry = _loads(text, "entry")
        if type(entry) is not dict:
            raise DamagedRow("its entry is no JSON object")
        return ExchangeRecord(seq, probe_id, entry, prev_hash, hash_from_sql(digest))
    except DamagedRow as exc:
        raise DamagedRow(f"ledger record {seq}: {exc}") from None


def text_exchange_from_sql(row: Sequence[Any]) -> ExchangeRecord:
    """A ledger record from (seq, probe_id, entry_json, prev_hash, hash), all as text: the
    shape the PostgreSQL store keeps (and SQLite stores before schema version 5)."""
    seq, probe_id, entry_json, prev_hash, digest = row
    entry = _loads(entry_json, "entry_json")
    if (
        type(seq) is not int
        or (probe_id is not None and type(probe_id) is not str)
        or type(entry) is not dict
        or type(prev_hash) is not str
        or type(digest) is not str
    ):
        raise DamagedRow(f"ledger record {seq!r:.20} holds values of the wrong type")
    return ExchangeRecord(seq, probe_id, entry, prev_hash, digest)


def scheduled_from_sql(row: Sequence[Any]) -> ScheduledRun:
    names = [f.name for f in dataclasses.fields(ScheduledRun)]
    if len(row) != len(names):
        raise DamagedRow(f"scheduled_runs row has {len(row)} columns, not {len(names)}")
    return typed_row(ScheduledRun, dict(zip(names, row, strict=True)))


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


def stored_text(text: str) -> str:
    """Free text as both stores keep it: a NUL (which a platform's answer can carry into an
    observation's detail or a probe's note, and which no PostgreSQL text value can hold) becomes
    U+FFFD, as undecodable bytes do; everything else is kept as it is."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text
