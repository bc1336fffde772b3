"""The evidence ledger: an append-only, hash-chained record of every exchange with a platform.

Each entry carries the hash of the previous one, so editing, removing or reordering any entry
breaks the chain from that point on. Secrets are redacted before an entry is written.

A ledger leaves the store as JSON Lines (:func:`ledger_lines`), one canonical line per entry; a
reader (:func:`read_ledger`) checks every line's bytes, so changing any single byte of the file is
found and named: the line, the entry and what is wrong with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from audit.chain import GENESIS, canonical_json, entry_hash, text_hash
from audit.lifecycle import OBSERVE_ACTION
from audit.redaction import REDACTED, Redactor
from audit.store import ExchangeRecord, ObservationRow, ProbeRow, RunRow
from audit.store_protocol import RunStore

__all__ = [
    "GENESIS",
    "LEDGER_FILE",
    "OBSERVATIONS_FILE",
    "PROBES_FILE",
    "RECORD_FILES",
    "REDACTED",
    "RUN_FILE",
    "ChainCheck",
    "EvidenceLedger",
    "Redactor",
    "RunEvidence",
    "body_digest",
    "body_text",
    "body_with_text",
    "canonical_json",
    "check_agreement",
    "check_chain",
    "entry_hash",
    "first_line",
    "ledger_lines",
    "parse_records",
    "pretty_json",
    "read_ledger",
    "snapshot",
    "text_by_reference",
    "text_digest",
    "text_hash",
    "verify_chain",
]

_LINE_KEYS = frozenset({"seq", "probe_id", "prev", "hash", "entry"})


def body_digest(entry: Mapping[str, Any], side: str) -> str | None:
    """The SHA-256 (hex) of an entry's request or response body (``side``): the digest the
    entry records where it keeps the body only in part, else that of the body it records
    whole (its text as UTF-8, or its base64 decoded); None when it records no body."""
    recorded = entry.get(f"{side}_sha256")
    if isinstance(recorded, str):
        return recorded
    body = entry.get(f"{side}_body")
    if not isinstance(body, str) or entry.get(f"{side}_body_cut"):
        return None
    if entry.get(f"{side}_body_encoding") == "base64":
        try:
            return hashlib.sha256(base64.b64decode(body, validate=True)).hexdigest()
        except ValueError:
            return None
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


#: a probe's text shorter than this (UTF-8 bytes, as a JSON string's content) stays in the
#: submission body: its digest and places would take more room than it
TEXT_BY_REFERENCE_BYTES = 128


def body_text(text: str) -> str:
    """A probe's text as a JSON request body carries it: its JSON string's content (no quotes;
    ``"``, ``\\`` and control characters escaped, the rest as is)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def text_digest(text: str) -> str:
    """The SHA-256 (hex) of a probe's text as UTF-8: what a submission entry records of it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text_by_reference(entry: dict[str, Any], text: str) -> dict[str, Any]:
    """A submission's entry with the probe's text taken out of its request body and referred
    to by digest: ``request_text_sha256`` (:func:`text_digest`) and ``request_text_at`` (the
    places in the remaining body where :func:`body_text` of it stood). Unchanged unless the
    body is recorded whole as text and holds the text at least once."""
    body = entry.get("request_body")
    if (
        not isinstance(body, str)
        or "request_sha256" in entry
        or entry.get("request_body_cut")
        or "request_body_encoding" in entry
    ):
        return entry
    carried = body_text(text)
    if len(carried.encode("utf-8")) < TEXT_BY_REFERENCE_BYTES or carried not in body:
        return entry
    parts = body.split(carried)
    places, at = [], 0
    for part in parts[:-1]:
        at += len(part)
        places.append(at)
    return entry | {
        "request_body": "".join(parts),
        "request_text_at": places,
        "request_text_sha256": text_digest(text),
    }


def body_with_text(entry: Mapping[str, Any], text: str) -> str | None:
    """The request body an entry records, whole: where it refers to the probe's text by digest,
    that text put back in each of its places. None when ``text`` is not the text the entry's
    digest names, or the places do not fit the body."""
    body = entry.get("request_body")
    if not isinstance(body, str):
        return None
    if "request_text_sha256" not in entry:
        return body
    places = entry.get("request_text_at")
    if entry["request_text_sha256"] != text_digest(text) or not isinstance(places, list):
        return None
    if not all(isinstance(p, int) and not isinstance(p, bool) for p in places):
        return None
    if places != sorted(places) or (places and not 0 <= places[0] <= places[-1] <= len(body)):
        return None
    carried, pieces, start = body_text(text), [], 0
    for place in places:
        pieces += [body[start:place], carried]
        start = place
    return "".join(pieces) + body[start:]


def _clean_text(value: Any) -> Any:
    """Strings that encode as UTF-8 (lone surrogates replaced), recursively."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_clean_text(str(k)): _clean_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_text(v) for v in value]
    return value


class EvidenceLedger:
    """Appends hash-chained entries for one run to the store."""

    def __init__(self, store: RunStore, run_id: str, redactor: Redactor) -> None:
        self._store = store
        self._run_id = run_id
        self._redact = redactor
        self._texts: dict[str, str | None] = {}
        self._seq, last = store.last_exchange(run_id)
        self._head = last or GENESIS
        self._observers: list[Callable[[str | None, dict[str, Any]], None]] = []

    def observe(self, observer: Callable[[str | None, dict[str, Any]], None]) -> None:
        """Call ``observer`` with every entry once it is written (e.g. the target's watch)."""
        self._observers.append(observer)

    @property
    def head(self) -> str:
        return self._head

    @property
    def redactor(self) -> Redactor:
        return self._redact

    def _probe_text(self, probe_id: str) -> str | None:
        """The stored text of a text probe of the run (None for another probe or none)."""
        if probe_id not in self._texts:
            try:
                content = self._store.probe_content(self._run_id, probe_id)
            except KeyError:
                content = {}
            text = content.get("text")
            modality = content.get("modality", "text")
            self._texts = {probe_id: text if modality == "text" and isinstance(text, str) else None}
        return self._texts[probe_id]

    def append(self, probe_id: str | None, entry: dict[str, Any]) -> ExchangeRecord:
        clean = self._redact.scrub(entry) if self._redact else entry
        if probe_id is not None and clean.get("action") == "submit":
            # the probe's text is stored with the probe: the submission refers to it by digest
            text = self._probe_text(probe_id)
            if text:
                clean = text_by_reference(clean, text)
        text = canonical_json(clean)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate somewhere: clean every string
            clean = _clean_text(clean)
            text = canonical_json(clean)
        seq = self._seq + 1
        digest = text_hash(self._head, seq, text, probe_id)
        record = ExchangeRecord(seq, probe_id, clean, self._head, digest, text)
        self._store.append_exchange(self._run_id, record)
        self._seq, self._head = seq, digest
        for observer in self._observers:
            observer(probe_id, clean)
        return record


@dataclass(frozen=True)
class ChainCheck:
    """The result of checking a ledger: where it first goes wrong, if anywhere."""

    entries: int  # entries read
    head: str  # hash of the last good entry (GENESIS when none)
    bad_seq: int | None = None  # number of the first bad entry
    bad_line: int | None = None  # its line in a JSON Lines file
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def place(self) -> str:
        if self.bad_line is not None:
            entry = f" (entry {self.bad_seq})" if self.bad_seq is not None else ""
            return f"line {self.bad_line}{entry}"
        return f"entry {self.bad_seq}"


def _link_problem(record: ExchangeRecord, head: str, expected_seq: int) -> str | None:
    if record.seq != expected_seq:
        return (
            f"entry number {record.seq} where {expected_seq} was expected "
            "(entries removed, added or reordered)"
        )
    if record.prev_hash != head:
        return "its previous-entry hash does not match the entry before it"
    if entry_hash(head, record.seq, record.entry, record.probe_id) != record.hash:
        return "its content does not match its hash (the entry was edited)"
    return None


def check_chain(records: Iterable[ExchangeRecord]) -> ChainCheck:
    """Walk a ledger from the genesis hash; stop at the first entry that does not link."""
    head, count = GENESIS, 0
    for record in records:
        problem = _link_problem(record, head, count + 1)
        if problem is not None:
            return ChainCheck(count, head, bad_seq=record.seq, problem=problem)
        head, count = record.hash, count + 1
    return ChainCheck(count, head)


def verify_chain(records: Iterable[ExchangeRecord]) -> tuple[bool, str, int | None]:
    """Check a ledger; returns (ok, head hash, first bad sequence number or None)."""
    result = check_chain(records)
    return result.ok, result.head, result.bad_seq


# JSON Lines ---------------------------------------------------------------------------------
def ledger_line(record: ExchangeRecord) -> str:
    return canonical_json(
        {
            "seq": record.seq,
            "probe_id": record.probe_id,
            "prev": record.prev_hash,
            "hash": record.hash,
            "entry": record.entry,
        }
    )


def ledger_lines(records: Iterable[ExchangeRecord]) -> Iterator[str]:
    """Each entry as one canonical JSON line, newline-terminated."""
    for record in records:
        yield ledger_line(record) + "\n"


def _parse_line(raw: bytes) -> ExchangeRecord | str:
    """One ledger line as a record, or what is wrong with it."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except (ValueError, RecursionError) as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(value, dict) or set(value) != _LINE_KEYS:
        return "not a ledger entry (expected the keys entry, hash, prev, probe_id, seq)"
    seq, probe_id, entry = value["seq"], value["probe_id"], value["entry"]
    if not (isinstance(seq, int) and not isinstance(seq, bool)):
        return f"'seq' must be a whole number (got {seq!r})"
    if not (probe_id is None or isinstance(probe_id, str)) or not isinstance(entry, dict):
        return "'probe_id' must be text or null and 'entry' an object"
    if not isinstance(value["prev"], str) or not isinstance(value["hash"], str):
        return "'prev' and 'hash' must be text"
    record = ExchangeRecord(seq, probe_id, entry, value["prev"], value["hash"])
    if ledger_line(record) != text:
        return "not in canonical form (the bytes of the line were changed)"
    return record


def read_ledger(data: bytes) -> tuple[list[ExchangeRecord], ChainCheck]:
    """Parse and check a JSON Lines ledger; the check names the first bad line and entry."""
    if data and not data.endswith(b"\n"):
        last = data.count(b"\n") + 1
        return [], ChainCheck(0, GENESIS, last, last, "the file does not end with a newline")
    records: list[ExchangeRecord] = []
    head = GENESIS
    for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
        parsed = _parse_line(raw)
        if isinstance(parsed, str):
            return records, ChainCheck(len(records), head, len(records) + 1, number, parsed)
        problem = _link_problem(parsed, head, len(records) + 1)
        if problem is not None:
            return records, ChainCheck(len(records), head, parsed.seq, number, problem)
        records.append(parsed)
        head = parsed.hash
    return records, ChainCheck(len(records), head)


# store and ledger agree ----------------------------------------------------------------------
_MEASURED = frozenset({"accepted", "rejected", "visible", "removed", "gone", "filed", "withdrawn"})
_SLACK = 1e-3  # seconds: the observation and its exchanges are timed on the same clock
_ACTION_OF = {"resubmit": "submit"}  # observation action -> the exchanges' action


def _index(records: Sequence[ExchangeRecord]) -> dict[str, list[ExchangeRecord]]:
    """Exchanges by the probe id they were made for (every adapter call carries it; run-level
    exchanges such as a token request carry none by design and back no observation)."""
    index: dict[str, list[ExchangeRecord]] = {}
    for record in records:
        if record.probe_id is not None:
            index.setdefault("probe:" + record.probe_id, []).append(record)
    return index


def _backing(
    obs: ObservationRow, index: Mapping[str, list[ExchangeRecord]]
) -> list[ExchangeRecord]:
    """The exchanges made for this observation: same probe id, inside its time window, and of
    the same action where the adapter named it so (on a virtual clock the next step of a probe
    may start at the very instant this one ended)."""
    candidates = list(index.get("probe:" + obs.probe_id, []))
    low, high = obs.started_at - _SLACK, obs.ended_at + _SLACK
    inside = [
        r
        for r in sorted(candidates, key=lambda r: r.seq)
        if _number(r.entry.get("started_at"), low - 1) >= low
        and _number(r.entry.get("ended_at"), high + 1) <= high
    ]
    action = _ACTION_OF.get(obs.action, obs.action)
    if obs.action == "status" and obs.view == "observer":
        action = OBSERVE_ACTION  # the observer's request decided the look
    same = [r for r in inside if r.entry.get("action") == action]
    return same or inside


def _number(value: Any, default: float) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def check_agreement(
    probes: Sequence[ProbeRow],
    observations: Mapping[str, Sequence[ObservationRow]],
    records: Sequence[ExchangeRecord],
) -> list[str]:
    """Every measurement the store holds rests on an answer recorded in the ledger.

    A measurement is an observation whose result is a platform's answer (accepted, rejected,
    visible, removed, gone, filed, withdrawn). It must be backed by at least one exchange of the
    same probe (by probe id) inside the observation's time window,
    of the same action when there are such, and at least one of them must be an HTTP answer,
    not a fault. (Not necessarily the last: looks at other probes that share a post id, or that
    ran at the same instant of a virtual clock, can fall inside the same window.) Returns the
    disagreements found.
    """
    index = _index(records)
    del probes  # matched by probe id only (every adapter call carries it)
    problems: list[str] = []
    for probe_id, rows_of in observations.items():
        for obs in rows_of:
            if obs.result not in _MEASURED:
                continue
            backing = _backing(obs, index)
            answered = any(r.entry.get("status") is not None for r in backing)
            if not answered:
                what = "no exchange" if not backing else "only a fault"
                problems.append(
                    f"probe {probe_id}: the {obs.action} observation '{obs.result}' has "
                    f"{what} in the ledger to back it"
                )
    return problems


# a run's evidence as files ------------------------------------------------------------------
LEDGER_FILE = "ledger.jsonl"
RUN_FILE = "run.json"
PROBES_FILE = "probes.jsonl"
OBSERVATIONS_FILE = "observations.jsonl"
RECORD_FILES = (LEDGER_FILE, RUN_FILE, PROBES_FILE, OBSERVATIONS_FILE)

_RUN = TypeAdapter(RunRow)
_PROBE = TypeAdapter(ProbeRow)
_OBSERVATION = TypeAdapter(ObservationRow)


@dataclass(frozen=True)
class RunEvidence:
    """One run's records, read from the store or from a bundle."""

    run: RunRow
    probes: list[ProbeRow]
    observations: dict[str, list[ObservationRow]]
    records: list[ExchangeRecord]

    @property
    def head(self) -> str:
        return self.records[-1].hash if self.records else GENESIS

    def files(self) -> dict[str, bytes]:
        """The records as the files of a bundle: canonical JSON, one line per item."""
        observations = [o._asdict() for rows in self.observations.values() for o in rows]
        return {
            LEDGER_FILE: "".join(ledger_lines(self.records)).encode("utf-8"),
            RUN_FILE: pretty_json(asdict(self.run)),
            PROBES_FILE: _json_lines([asdict(p) for p in self.probes]),
            OBSERVATIONS_FILE: _json_lines(observations),
        }


def pretty_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _json_lines(values: list[Any]) -> bytes:
    return "".join(canonical_json(v) + "\n" for v in values).encode("utf-8")


def snapshot(store: RunStore, run_id: str) -> RunEvidence:
    """Everything about a run, read in one transaction so the parts agree with each other."""
    with store.snapshot_read():
        return RunEvidence(
            store.run(run_id),
            store.probes(run_id),
            store.observations(run_id),
            list(store.exchanges(run_id)),
        )


def _parse_lines(name: str, data: bytes) -> list[Any]:
    values = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        try:
            values.append(json.loads(line))
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{name} line {number}: not valid JSON ({exc})") from None
    return values


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_records(files: Mapping[str, bytes], records: list[ExchangeRecord]) -> RunEvidence:
    """A bundle's run, probes and observations; ValueError naming the file when unreadable."""
    try:
        run = _RUN.validate_python(json.loads(files[RUN_FILE].decode("utf-8")))
    except (ValueError, RecursionError, ValidationError) as exc:
        raise ValueError(f"{RUN_FILE}: not a run record ({first_line(exc)})") from None
    try:
        probes = [_PROBE.validate_python(v) for v in _parse_lines(PROBES_FILE, files[PROBES_FILE])]
        rows = _parse_lines(OBSERVATIONS_FILE, files[OBSERVATIONS_FILE])
        observed = [_OBSERVATION.validate_python(v) for v in rows]
    except ValidationError as exc:
        raise ValueError(
            f"a probe or observation record is malformed ({first_line(exc)})"
        ) from None
    observations: dict[str, list[ObservationRow]] = {}
    for obs in observed:
        observations.setdefault(obs.probe_id, []).append(obs)
    return RunEvidence(run, probes, observations, records)
