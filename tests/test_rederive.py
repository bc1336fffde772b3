"""The ledger is the record: verify reads every recorded answer again with the adapter's own
reader and fails, naming the probe, wherever the store says something the ledger does not.

Each test forges one field of an honest run's store (as someone with write access to the SQLite
file would) and runs the real command line on it."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.adapters import sandbox
from audit.adapters.profile import build_profile_adapter
from audit.adapters.sandbox import SandboxAdapter
from audit.chain import entry_hash
from audit.cli import main
from audit.clock import VirtualClock
from audit.evidence.bundle import _ledger_disagreements, verify_store
from audit.evidence.keys import workspace_key
from audit.evidence.ledger import (
    TEXT_BY_REFERENCE_BYTES,
    EvidenceLedger,
    Redactor,
    body_text,
    body_with_text,
    snapshot,
)
from audit.evidence.manifest import MANIFEST_FILE, file_digest, write_manifest
from audit.evidence.rederive import check_derivation, exchange_from_entry
from audit.http import PlatformClient
from audit.plan import Target
from audit.runner import execute_run
from audit.store import ExchangeRecord
from audit.workspace import scorecard_for
from tests import store_backends
from tests.evidence_support import SmallAudit, sandbox_audit, start_run, tiny_plan
from tests.store_backends import open_store, raw_sql
from tests.test_hostile_platform import HostilePlatform

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory, store_kind: str) -> SmallAudit:
    audit = sandbox_audit(tmp_path_factory.mktemp("honest"), tiny_plan(4, 1))
    audit.store.close()  # every write is in the file itself: copies of the folder are whole
    return audit


@pytest.fixture
def workspace(honest: SmallAudit, tmp_path: Path) -> Path:
    """A copy of the honest run's workspace and store, to forge; commands reach the copy."""
    folder = Path(shutil.copytree(honest.root, tmp_path / "ws"))
    if store_backends.current_kind() != "sqlite":  # the folder held the SQLite file
        store_backends.copy_store(honest.root / "audit.sqlite", folder / "audit.sqlite")
    store_backends.pin_commands_to(folder / "audit.sqlite")
    return folder


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def forge(workspace: Path, sql: str, *params: object) -> int:
    """Change the store behind the tool's back; returns the rows changed."""
    _, changed = raw_sql(workspace / "audit.sqlite", sql, *params)
    assert changed > 0, f"the forgery changed nothing: {sql}"
    return changed


def probe_where(workspace: Path, run_id: str, condition: str) -> tuple[str, ...]:
    rows, _ = raw_sql(
        workspace / "audit.sqlite",
        "SELECT probe_id, clock_start, deadline_at, probe_json FROM probes "
        f"WHERE run_id = ? AND {condition} ORDER BY seq LIMIT 1",
        run_id,
    )
    assert rows, f"no probe where {condition}"
    return tuple(str(v) for v in rows[0])


def verify(workspace: Path, run_id: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code, out, _ = run_cli(["--workspace", str(workspace), "verify", run_id], capsys)
    return code, out


def test_the_honest_run_verifies(
    workspace: Path, honest: SmallAudit, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = verify(workspace, honest.run_id, capsys)
    assert code == 0, out
    assert out.startswith("OK  run ")
    store = open_store(workspace / "audit.sqlite")
    found = check_derivation(
        store.run(honest.run_id),
        store.probes(honest.run_id),
        store.observations(honest.run_id),
        list(store.exchanges(honest.run_id)),
    )
    assert found.problems == [] and found.notes == []
    assert found.reread > 50  # every measured observation was read again, not skipped


def test_visible_looks_flipped_to_removed_fail_verify_through_the_command_line(
    workspace: Path, honest: SmallAudit
) -> None:
    """The forgery of issue 14: the later looks at a survived probe turned into removals."""
    probe_id, _, deadline_at, _ = probe_where(workspace, honest.run_id, "outcome = 'survived'")
    changed = forge(
        workspace,
        "UPDATE observations SET result = 'removed', detail = 'community_guidelines' "
        "WHERE run_id = ? AND probe_id = ? AND action = 'status' AND started_at > ?",
        honest.run_id,
        probe_id,
        float(str(deadline_at)) - 1.0,
    )
    forged_store = open_store(workspace / "audit.sqlite")
    card = scorecard_for(forged_store, honest.run_id)  # the forgery would change the scorecard
    forged_store.close()
    assert card.model_dump() != scorecard_for(
        open_store(honest.root / "audit.sqlite"), honest.run_id
    )
    done = subprocess.run(
        [sys.executable, "-m", "audit", "--workspace", str(workspace), "verify", honest.run_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("TAMPERED")
    lines = [line for line in done.stdout.splitlines() if probe_id in line]
    assert len(lines) >= changed
    assert all("says 'removed', but its ledger entry" in line for line in lines[:changed])
    assert "(HTTP 200) says 'visible'" in lines[0]


def _status_looks(workspace: Path, run_id: str, probe_id: str) -> list[tuple[int, str, float]]:
    rows, _ = raw_sql(
        workspace / "audit.sqlite",
        "SELECT id, result, started_at FROM observations WHERE run_id = ? AND "
        "probe_id = ? AND action = 'status' ORDER BY started_at",
        run_id,
        probe_id,
    )
    return [(int(str(i)), str(r), float(str(t))) for i, r, t in rows]


@pytest.mark.parametrize("onto", ["an earlier look", "no exchange"])
def test_an_observation_moved_in_time_fails_verify(
    workspace: Path, honest: SmallAudit, capsys: pytest.CaptureFixture[str], onto: str
) -> None:
    """The first look that saw a removal, moved earlier: onto the time of a look whose answer
    said visible, or to where no exchange was made."""
    probe_id = probe_where(workspace, honest.run_id, "outcome = 'removed_in_time'")[0]
    looks = _status_looks(workspace, honest.run_id, probe_id)
    first_down = next(i for i, (_, result, _) in enumerate(looks) if result == "removed")
    assert first_down >= 2
    ident, _, _ = looks[first_down]
    earlier = looks[first_down - 2][2]
    at = earlier if onto == "an earlier look" else (earlier + looks[first_down - 1][2]) / 2
    forge(
        workspace,
        "UPDATE observations SET started_at = ?, ended_at = ? WHERE id = ?",
        at,
        at,
        ident,
    )
    code, out = verify(workspace, honest.run_id, capsys)
    assert code == 1 and out.startswith("TAMPERED"), out
    first = out.splitlines()[1]
    assert f"probe {probe_id}" in first
    if onto == "an earlier look":
        assert "status observation" in first and "says 'visible'" in first
    else:
        assert "no exchange in the ledger to back it" in first


def test_a_changed_outcome_fails_verify(
    workspace: Path, honest: SmallAudit, capsys: pytest.CaptureFixture[str]
) -> None:
    probe_id = probe_where(workspace, honest.run_id, "outcome = 'survived'")[0]
    forge(
        workspace,
        "UPDATE probes SET outcome = 'removed_in_time' WHERE run_id = ? AND probe_id = ?",
        honest.run_id,
        probe_id,
    )
    code, out = verify(workspace, honest.run_id, capsys)
    assert code == 1, out
    assert (
        f"probe {probe_id}: stored outcome 'removed_in_time', but its observations give "
        "'survived'" in out
    )


def test_verify_of_a_store_reads_probe_by_probe_what_the_whole_run_check_finds(
    workspace: Path, honest: SmallAudit
) -> None:
    """``verify`` of a run in the store reads each probe's observations and ledger records
    side by side in probe-id order, never the whole run; it must find exactly what the check
    of the whole run in memory (the export's check) finds: here three forged probes, with
    ledger records made for probe ids the run does not hold sorted before, between and after
    the run's own."""
    run_id = honest.run_id
    survived = probe_where(workspace, run_id, "outcome = 'survived'")[0]
    forge(
        workspace,
        "UPDATE probes SET outcome = 'removed_in_time' WHERE run_id = ? AND probe_id = ?",
        run_id,
        survived,
    )
    notice = probe_where(workspace, run_id, "trigger = 'notice'")[0]
    forge(
        workspace,
        "UPDATE probes SET clock_start = clock_start + 3600, deadline_at = deadline_at + 3600 "
        "WHERE run_id = ? AND probe_id = ?",
        run_id,
        notice,
    )
    kept = probe_where(workspace, run_id, "outcome = 'kept'")[0]
    forge(
        workspace,
        "UPDATE observations SET result = 'removed' WHERE run_id = ? AND probe_id = ?"
        " AND action = 'status' AND result = 'visible'",
        run_id,
        kept,
    )
    store = open_store(workspace / "audit.sqlite")
    try:
        ids = sorted(row.probe_id for row in store.probes(run_id))
        strays = ["", ids[0][:-1], ids[len(ids) // 2] + "~", ids[-1] + "~"]
        seq, head = store.last_exchange(run_id)
        for n, stray in enumerate(strays, start=seq + 1):
            entry = {"action": "status", "started_at": 1.0, "ended_at": 1.0, "status": 200}
            record = ExchangeRecord(n, stray, entry, head, entry_hash(head, n, entry, stray))
            store.append_exchange(run_id, record)
            head = record.hash
        streamed = verify_store(store, run_id)
        whole_problems, whole_notes = _ledger_disagreements(snapshot(store, run_id))
    finally:
        store.close()
    assert streamed.entries == seq + len(strays)
    assert sorted(streamed.problems) == sorted(whole_problems)
    assert streamed.notes == whole_notes
    for probe_id in (survived, notice, kept):
        assert any(f"probe {probe_id}: " in p for p in streamed.problems), probe_id


@pytest.mark.parametrize("trigger", ["proactive", "notice", "order"])
def test_a_moved_clock_start_fails_verify(
    workspace: Path, honest: SmallAudit, capsys: pytest.CaptureFixture[str], trigger: str
) -> None:
    """clock_start (and deadline_at with it) an hour later than the accepted attempt was sent:
    the submission for proactive criteria, the notice or order for the others."""
    probe_id = probe_where(workspace, honest.run_id, f"trigger = '{trigger}'")[0]
    forge(
        workspace,
        "UPDATE probes SET clock_start = clock_start + 3600, deadline_at = deadline_at + 3600 "
        "WHERE run_id = ? AND probe_id = ?",
        honest.run_id,
        probe_id,
    )
    code, out = verify(workspace, honest.run_id, capsys)
    assert code == 1, out
    what = "accepted submission" if trigger == "proactive" else f"filed {trigger}"
    assert f"probe {probe_id}: clock_start " in out
    assert f"is not the send time of the {what} in ledger entry" in out


@pytest.mark.parametrize("moved", ["deadline_at + 86400", "NULL"])
def test_a_moved_deadline_fails_verify(
    workspace: Path, honest: SmallAudit, capsys: pytest.CaptureFixture[str], moved: str
) -> None:
    probe_id = probe_where(workspace, honest.run_id, "outcome = 'survived'")[0]
    forge(
        workspace,
        f"UPDATE probes SET deadline_at = {moved} WHERE run_id = ? AND probe_id = ?",
        honest.run_id,
        probe_id,
    )
    code, out = verify(workspace, honest.run_id, capsys)
    assert code == 1, out
    assert f"probe {probe_id}: deadline_at " in out and "is not clock_start + 86400 s" in out


def test_a_changed_probe_text_fails_verify(
    workspace: Path, honest: SmallAudit, capsys: pytest.CaptureFixture[str]
) -> None:
    probe_id, _, _, probe_json = probe_where(workspace, honest.run_id, "outcome = 'kept'")
    probe = json.loads(str(probe_json))
    probe["text"] = "An ordinary post about the weather."
    forge(
        workspace,
        "UPDATE probes SET probe_json = ? WHERE run_id = ? AND probe_id = ?",
        json.dumps(probe, sort_keys=True),
        honest.run_id,
        probe_id,
    )
    code, out = verify(workspace, honest.run_id, capsys)
    assert code == 1, out
    assert f"probe {probe_id}: its text is not the text ledger entry" in out


def test_submissions_refer_to_the_stored_text_by_digest(
    workspace: Path, honest: SmallAudit
) -> None:
    store = open_store(workspace / "audit.sqlite")
    probes = {p.probe_id: p for p in store.probes(honest.run_id)}
    submits = [r for r in store.exchanges(honest.run_id) if r.entry.get("action") == "submit"]
    store.close()
    referred = [r for r in submits if "request_text_sha256" in r.entry]
    assert len(referred) > len(submits) / 2
    for record in submits:
        if record not in referred:  # kept whole only where the text is short
            text = probes[str(record.probe_id)].probe["text"]
            assert len(body_text(text).encode()) < TEXT_BY_REFERENCE_BYTES
            assert body_text(text) in record.entry["request_body"]
    for record in referred:
        text = probes[str(record.probe_id)].probe["text"]
        assert body_text(text) not in record.entry["request_body"]  # stored once, with the probe
        body = body_with_text(record.entry, text)
        assert body is not None and json.loads(body)["text"] == text
        assert body_with_text(record.entry, text[:-1] + "#") is None  # one character changed


def test_export_refuses_a_forged_store(
    workspace: Path, honest: SmallAudit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe_id, _, deadline_at, _ = probe_where(workspace, honest.run_id, "outcome = 'survived'")
    forge(
        workspace,
        "UPDATE observations SET result = 'removed' "
        "WHERE run_id = ? AND probe_id = ? AND action = 'status' AND started_at > ?",
        honest.run_id,
        probe_id,
        float(str(deadline_at)) - 1.0,
    )
    out_path = tmp_path / "forged.tar.gz"
    code, _, err = run_cli(
        ["--workspace", str(workspace), "export", honest.run_id, "--out", str(out_path)], capsys
    )
    assert code == 2, err
    assert "do not follow from its evidence ledger" in err and probe_id in err
    assert "it will not be signed" in err
    assert not out_path.exists()


def _resign(folder: Path, workspace: Path, change: Callable[[bytes], bytes]) -> None:
    """Change observations.jsonl of a bundle folder and sign the manifest again with the
    workspace's genuine key, as a forger holding the key would."""
    data = change((folder / "observations.jsonl").read_bytes())
    (folder / "observations.jsonl").write_bytes(data)
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    body = {k: v for k, v in manifest["signed"].items() if k != "public_key"}
    body["files"]["observations.jsonl"] = file_digest(data)
    (folder / MANIFEST_FILE).write_bytes(write_manifest(body, workspace_key(workspace)))


def test_a_bundle_re_signed_with_forged_observations_fails_and_is_not_reported(
    workspace: Path, honest: SmallAudit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--workspace", str(workspace), "--reports", str(tmp_path / "reports")]
    folder = tmp_path / "bundle"
    code, _, err = run_cli([*base, "export", honest.run_id, "--out", str(folder)], capsys)
    assert code == 0, err
    code, fingerprint, _ = run_cli([*base, "key"], capsys)
    fingerprint = fingerprint.split()[0]
    survived = probe_where(workspace, honest.run_id, "outcome = 'survived'")[0]
    deadline = float(str(probe_where(workspace, honest.run_id, "outcome = 'survived'")[2]))

    def flip(data: bytes) -> bytes:
        lines = []
        for line in data.decode("utf-8").splitlines():
            obs = json.loads(line)
            later = obs["action"] == "status" and obs["started_at"] > deadline - 1.0
            if obs["probe_id"] == survived and later:
                obs["result"] = "removed"
            lines.append(json.dumps(obs, sort_keys=True, separators=(",", ":")) + "\n")
        return "".join(lines).encode("utf-8")

    _resign(folder, workspace, flip)
    code, out, _ = run_cli(
        [*base, "verify", str(folder), "--key", fingerprint, "--rebuild"], capsys
    )
    assert code == 1, out
    assert out.startswith("TAMPERED") and f"probe {survived}" in out and "says 'visible'" in out
    code, _, err = run_cli([*base, "report", "--from-evidence", str(folder)], capsys)
    assert code == 2 and "does not verify" in err and survived in err
    assert not (tmp_path / "reports" / honest.run_id / "scorecard.json").exists()


# the reader verify uses is the adapter's own -------------------------------------------------
def _recorded(honest: SmallAudit, action: str) -> list[ExchangeRecord]:
    store = open_store(honest.root / "audit.sqlite")
    try:
        return [r for r in store.exchanges(honest.run_id) if r.entry.get("action") == action]
    finally:
        store.close()


def _replay(record: ExchangeRecord) -> httpx.MockTransport:
    """A platform that gives the recorded answer again."""
    entry = record.entry

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("idempotency_key") == "preflight":  # the profile's preflight
            return httpx.Response(404, json={"error": "not_found"})
        headers = {"content-type": str(entry["headers"].get("content-type", ""))}
        return httpx.Response(int(entry["status"]), headers=headers, content=entry["response_body"])

    return httpx.MockTransport(answer)


def _client(transport: httpx.MockTransport) -> PlatformClient:
    return PlatformClient(
        "http://sandbox.test", VirtualClock(), lambda *_: None, transport=transport
    )


def test_the_sandbox_adapter_reads_with_the_reader_verify_uses(
    honest: SmallAudit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live adapter calls the module's read_status; its result for a recorded answer is
    what that reader gives for the ledger entry."""
    seen: list[object] = []
    reader = sandbox.read_status

    def watched(exchange: object) -> object:
        seen.append(exchange)
        return reader(exchange)  # type: ignore[arg-type]

    monkeypatch.setattr(sandbox, "read_status", watched)
    records = _recorded(honest, "status")
    by_state = {json.loads(r.entry["response_body"])["state"]: r for r in records}
    assert set(by_state) == {"visible", "removed"}
    for record in by_state.values():
        adapter = SandboxAdapter(_client(_replay(record)))
        live = asyncio.run(adapter.status("0000001", "p"))
        rebuilt = exchange_from_entry(record.entry)
        assert not isinstance(rebuilt, str)
        assert live == reader(rebuilt)
        assert live.state.value == json.loads(record.entry["response_body"])["state"]
    assert len(seen) == len(by_state)  # the adapter read through the reader, once per look


def test_the_profile_adapter_reads_with_its_profile_reader(
    honest: SmallAudit, tmp_path: Path
) -> None:
    """The sandbox profile's adapter gives, live, what its reader gives for the recorded
    entry (submission and look), so verify reading again with it sees what the run saw."""
    target = Target(name="p", base_url="http://sandbox.test", profile="sandbox", rate_limit=None)
    for action in ("submit", "status"):
        record = _recorded(honest, action)[0]
        store = open_store(tmp_path / f"{action}.sqlite")
        ledger = EvidenceLedger(store, "r", Redactor([]))
        adapter = build_profile_adapter(
            target, VirtualClock(), ledger, seed=1, transport=_replay(record)
        )
        rebuilt = exchange_from_entry(record.entry)
        assert not isinstance(rebuilt, str)
        if action == "submit":
            from audit.probe import Probe

            probe = Probe.model_validate(
                next(
                    p.probe for p in open_store(honest.root / "audit.sqlite").probes(honest.run_id)
                )
            )
            live_submit = asyncio.run(adapter.submit(probe, probe.probe_id))
            expected = adapter.reader.read_submit(rebuilt)
            assert live_submit.kind == expected.kind and live_submit.post_id == expected.post_id
            assert live_submit.kind.value == "accepted"
        else:
            live_status = asyncio.run(adapter.status("0000001", "p"))
            assert live_status == adapter.reader.read_status(rebuilt)
        asyncio.run(adapter.aclose())
        store.close()


# a profile target: read again with the profile the run recorded ------------------------------
@pytest.mark.sqlite_store  # the Mastodon test's helper makes its run in a SQLite store
def test_a_profile_run_is_read_again_with_its_recorded_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Mastodon run (setup step, reports, rate limits) verifies; rewriting its profile file
    afterwards so that a 200 reads as a removal changes nothing (the run's own copy is read);
    a look flipped to a removal in the store is found with the recorded rules."""
    import yaml

    from audit.adapters.profile_load import BUILTIN_PROFILES_DIR
    from audit.plan import SecretRef
    from tests import test_mastodon_profile as mastodon

    monkeypatch.setenv("MASTODON_TEST_TOKEN", mastodon.AUTHOR_TOKEN)
    profile = tmp_path / "mastodon.yaml"
    shutil.copy(BUILTIN_PROFILES_DIR / "mastodon.yaml", profile)
    plan = mastodon.mastodon_plan(str(profile), {"token": SecretRef(env="MASTODON_TEST_TOKEN")})
    _, store, run_id = mastodon.run(tmp_path, plan)
    assert store.run(run_id).profile is not None
    survived = next(p for p in store.probes(run_id) if p.outcome == "survived")
    store.close()
    data = yaml.safe_load(profile.read_text(encoding="utf-8"))
    data["status"]["outcomes"][0]["result"] = "removed"
    profile.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    code, out = verify(tmp_path, run_id, capsys)
    assert code == 0, out
    forge(
        tmp_path,
        "UPDATE observations SET result = 'removed' WHERE run_id = ? AND probe_id = ? "
        "AND action = 'status' AND started_at >= ?",
        run_id,
        survived.probe_id,
        survived.deadline_at,
    )
    code, out = verify(tmp_path, run_id, capsys)
    assert code == 1, out
    assert f"probe {survived.probe_id}: the status observation" in out
    assert "(HTTP 200) says 'visible'" in out


# no false alarm: an honest run against a faulty platform re-derives cleanly ------------------
class _ReachableHostile(HostilePlatform):
    """The hostile platform of tests/test_hostile_platform.py, answering the preflight
    request honestly (so the run is made and its faults are in the measurements)."""

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.requests == 0:
            self.requests += 1
            return self.honest(request, 1)
        return await super().__call__(request)


@settings(
    max_examples=int(os.environ.get("REDERIVE_HOSTILE_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_run_against_a_faulty_platform_derives_without_a_false_alarm(
    tmp_path: Path, data: st.DataObject
) -> None:
    """Retries, timeouts, cut and unreadable bodies, wrong shapes: every measured observation
    still says what its recorded answer says, so verify finds nothing to name."""
    clock = VirtualClock()
    platform = _ReachableHostile(
        clock,
        data,
        fault_percent=data.draw(st.sampled_from([0, 10, 30, 60]), label="fault %"),
        rng=random.Random(data.draw(st.integers(0, 2**32), label="platform seed")),
    )
    criterion = data.draw(st.sampled_from(["VN-SUP-01", "VN-SUP-02", "VN-SUP-03"]), label="crit")
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    store, run_id = start_run(root, tiny_plan(2, 1, criteria=[criterion]), clock)
    try:
        transport = httpx.MockTransport(platform)
        asyncio.run(execute_run(store, run_id, clock, transport=transport, give_up=1e12))
        found = check_derivation(
            store.run(run_id),
            store.probes(run_id),
            store.observations(run_id),
            list(store.exchanges(run_id)),
        )
        assert found.problems == []
        measured = [
            o
            for rows in store.observations(run_id).values()
            for o in rows
            if o.result in ("accepted", "rejected", "visible", "removed", "gone", "filed")
            or o.result == "withdrawn"
        ]
        assert found.reread + found.unreadable == len(measured)  # each one read again
    finally:
        store.close()
