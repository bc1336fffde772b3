"""The evidence ledger: hash chain, JSON Lines form, store-ledger agreement, redaction."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.evidence.ledger import (
    GENESIS,
    EvidenceLedger,
    check_agreement,
    check_chain,
    entry_hash,
    ledger_lines,
    read_ledger,
    text_hash,
    verify_chain,
)
from audit.redaction import (
    REDACTED,
    Redactor,
    is_secret_param,
    redact_fields,
    redact_query,
    secrets_in_headers,
)
from audit.store import ExchangeRecord, ObservationRow
from tests.evidence_support import SmallAudit, sandbox_audit
from tests.store_backends import open_store, raw_rows

pytestmark = pytest.mark.both_stores


def make_ledger(n: int, tmp_path: Path) -> list[ExchangeRecord]:
    store = open_store(tmp_path / "audit.sqlite")
    ledger = EvidenceLedger(store, "run-1", Redactor(["s3cr3t-token"]))
    for i in range(n):
        ledger.append(f"p{i % 3}" if i % 2 else None, {"action": "status", "i": i, "text": "é✓"})
    return list(store.exchanges("run-1"))


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory, store_kind: str) -> SmallAudit:
    return sandbox_audit(tmp_path_factory.mktemp("audit"))


def test_chain_of_a_real_run_verifies(audit: SmallAudit) -> None:
    records = list(audit.store.exchanges(audit.run_id))
    assert len(records) > 20
    ok, head, bad = verify_chain(records)
    assert ok and bad is None and head == records[-1].hash


@pytest.mark.parametrize(
    ("change", "bad"),
    [
        (lambda r: r.__setitem__(3, dataclasses.replace(r[3], entry={**r[3].entry, "i": 99})), 4),
        (lambda r: r.__setitem__(2, dataclasses.replace(r[2], probe_id="other")), 3),
        (lambda r: r.pop(4), 6),
        (lambda r: r.insert(1, r[5]), 6),
        (lambda r: r.__setitem__(5, dataclasses.replace(r[5], prev_hash=GENESIS)), 6),
    ],
    ids=["edited entry", "probe id changed", "entry removed", "entry copied", "prev rewritten"],
)
def test_chain_names_the_first_bad_entry(tmp_path: Path, change: object, bad: int) -> None:
    records = make_ledger(8, tmp_path)
    change(records)  # type: ignore[operator]
    result = check_chain(records)
    assert not result.ok and result.bad_seq == bad, result


def test_redactor_keeps_the_token_out_of_the_ledger(tmp_path: Path) -> None:
    store = open_store(tmp_path / "audit.sqlite")
    ledger = EvidenceLedger(store, "r", Redactor(["s3cr3t-token"]))
    ledger.append(None, {"body": "echo: Bearer s3cr3t-token", "s3cr3t-token": ["x s3cr3t-token"]})
    (record,) = store.exchanges("r")
    assert "s3cr3t" not in repr(record.entry)
    assert record.entry["body"] == f"echo: Bearer {REDACTED}"
    assert check_chain([record]).ok


def test_lone_surrogates_are_stored_not_crashed_on(tmp_path: Path) -> None:
    store = open_store(tmp_path / "audit.sqlite")
    EvidenceLedger(store, "r", Redactor()).append(None, {"error": "bad \udcff byte"})
    (record,) = store.exchanges("r")
    assert check_chain([record]).ok


def test_jsonl_round_trip(tmp_path: Path) -> None:
    records = make_ledger(6, tmp_path)
    data = "".join(ledger_lines(records)).encode()
    parsed, check = read_ledger(data)
    assert check.ok and parsed == records and check.head == records[-1].hash


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_byte_of_a_ledger_file_is_found_and_placed(
    tmp_path: Path, data: st.DataObject
) -> None:
    records = _ledger_for_flips(tmp_path)
    original = "".join(ledger_lines(records)).encode()
    offset = data.draw(st.integers(0, len(original) - 1), label="offset")
    flip = data.draw(st.integers(1, 255), label="xor")
    changed = bytearray(original)
    changed[offset] ^= flip
    _, check = read_ledger(bytes(changed))
    line = original.count(b"\n", 0, offset) + 1
    assert not check.ok
    assert check.bad_line == line, (check, line)


_FLIP_CACHE: dict[str, list[ExchangeRecord]] = {}


def _ledger_for_flips(tmp_path: Path) -> list[ExchangeRecord]:
    if "ledger" not in _FLIP_CACHE:
        _FLIP_CACHE["ledger"] = make_ledger(5, tmp_path)
    return _FLIP_CACHE["ledger"]


def test_truncated_ledger_reads_as_a_shorter_chain(tmp_path: Path) -> None:
    records = make_ledger(5, tmp_path)
    data = "".join(ledger_lines(records[:3])).encode()
    _, check = read_ledger(data)
    assert check.ok and check.entries == 3  # the manifest's count and head catch this


def test_entry_hash_covers_every_field() -> None:
    base = entry_hash(GENESIS, 1, {"a": 1}, "p")
    assert base != entry_hash(GENESIS, 2, {"a": 1}, "p")
    assert base != entry_hash(GENESIS, 1, {"a": 2}, "p")
    assert base != entry_hash(GENESIS, 1, {"a": 1}, None)
    assert base != entry_hash("sha256:" + "1" * 64, 1, {"a": 1}, "p")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(entry=st.dictionaries(st.text(), _JSON, max_size=6), seq=st.integers(1, 10**9))
def test_hash_over_the_stored_text_is_the_entry_hash(entry: dict[str, object], seq: int) -> None:
    text = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    for probe_id in (None, "p-1", 'odd "id"\u00e9'):
        assert text_hash(GENESIS, seq, text, probe_id) == entry_hash(GENESIS, seq, entry, probe_id)


def test_the_store_keeps_each_entry_once_as_the_canonical_text_hashed(audit: SmallAudit) -> None:
    rows = raw_rows(
        audit.store,
        "SELECT seq, probe_id, entry_json, prev_hash, hash FROM exchanges WHERE run_id = ?",
        audit.run_id,
    )
    assert len(rows) > 20
    for seq, probe_id, text, prev, digest in rows:
        entry = json.loads(text)
        assert text == json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        assert text_hash(prev, seq, text, probe_id) == digest
        assert "started_utc" not in entry and "ended_utc" not in entry  # times once
        if entry.get("method") == "GET":  # nothing sent: no empty body, digest or headers
            assert entry.get("request_bytes", 0) == 0
            assert not {"request_body", "request_sha256", "request_headers"} & set(entry)


# store and ledger agree ----------------------------------------------------------------------
def test_store_and_ledger_agree_for_a_real_run(audit: SmallAudit) -> None:
    records = list(audit.store.exchanges(audit.run_id))
    problems = check_agreement(
        audit.store.probes(audit.run_id), audit.store.observations(audit.run_id), records
    )
    assert problems == []


def test_a_removal_without_an_answer_in_the_ledger_is_found(audit: SmallAudit) -> None:
    probes = audit.store.probes(audit.run_id)
    observations = audit.store.observations(audit.run_id)
    victim = next(p for p in probes if p.post_id)
    forged = ObservationRow(victim.probe_id, "status", "removed", 1.0, 2.0, "forged")
    observations = {**observations, victim.probe_id: [*observations[victim.probe_id], forged]}
    problems = check_agreement(probes, observations, list(audit.store.exchanges(audit.run_id)))
    assert len(problems) == 1 and victim.probe_id in problems[0] and "removed" in problems[0]


def test_a_measurement_backed_only_by_a_fault_is_found(audit: SmallAudit) -> None:
    records = [
        dataclasses.replace(r, entry={**r.entry, "status": None, "error": "ReadTimeout"})
        for r in audit.store.exchanges(audit.run_id)
    ]
    observations = audit.store.observations(audit.run_id)
    problems = check_agreement(audit.store.probes(audit.run_id), observations, records)
    # intents ("sending", stored before a filing is sent) and errors are no measurements
    measured = [
        o for rows in observations.values() for o in rows if o.result not in ("error", "sending")
    ]
    assert len(problems) == len(measured) > 0
    assert all("only a fault" in p for p in problems)


# redaction ----------------------------------------------------------------------------------
def test_redactor_catches_encoded_forms() -> None:
    secret = "tok/en+with=odd&chars"
    redact = Redactor([secret])
    import base64
    import json
    from urllib.parse import quote, quote_plus

    for form in (
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        secret.replace("/", "\\/"),
        base64.b64encode(secret.encode()).decode(),
    ):
        assert secret not in redact(f"echo [{form}] done") and REDACTED in redact(f"[{form}]")
    assert redact.redact_bytes(f"x{secret}y".encode()) == f"x{REDACTED}y".encode()


def test_short_values_are_not_secrets() -> None:
    assert Redactor(["ab", ""])("ab ab") == "ab ab"


def test_secrets_from_auth_headers() -> None:
    import base64

    basic = base64.b64encode(b"alice:pa55word").decode()
    found = secrets_in_headers(
        {"Authorization": "Bearer abc.def", "Proxy-Authorization": f"Basic {basic}", "X-Other": "v"}
    )
    assert {"abc.def", "pa55word", "alice:pa55word", basic} <= set(found)
    assert "v" not in found


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("idempotency_key=p1&page=2", "idempotency_key=p1&page=2"),
        ("access_token=abc&x=1", f"access_token={REDACTED}&x=1"),
        ("api_key=abc", f"api_key={REDACTED}"),
        ("key=AIzaXYZ&q=1", f"key={REDACTED}&q=1"),
        ("", ""),
    ],
)
def test_redact_query(query: str, expected: str) -> None:
    assert redact_query(query).replace("%5B", "[").replace("%5D", "]") == expected


def test_secret_param_names() -> None:
    assert all(is_secret_param(n) for n in ("client_secret", "X-Amz-Signature", "refresh_token"))
    assert not any(is_secret_param(n) for n in ("idempotency_key", "token_type", "state"))


def test_redact_fields_in_json_and_forms() -> None:
    body = (
        b'{"access_token":"abc","token_type":"bearer","code":"not_found",'
        b'"nested":{"client_secret": "x\\"y"}}'
    )
    clean = redact_fields(body)
    assert b"abc" not in clean and b'x\\"y' not in clean
    assert b'"token_type":"bearer"' in clean and b'"code":"not_found"' in clean
    form = redact_fields(
        b"grant_type=password&password=hunter2&username=u", "application/x-www-form-urlencoded"
    )
    assert form == b"grant_type=password&password=[REDACTED]&username=u"
    assert redact_fields(b'{"refresh_token":"cut-off-at-the-end') == b'{"refresh_token":"[REDACTED]'
