"""Evidence bundles: export, verify anywhere, name the first bad place, rebuild the scorecard."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.cli import main
from audit.errors import InputError, RuntimeFailure
from audit.evidence.archive import read_archive, write_archive
from audit.evidence.bundle import (
    export_bundle,
    scorecard_from_evidence,
    verify_bundle,
    verify_store,
)
from audit.store import ObservationRow
from audit.workspace import scorecard_for
from tests.evidence_support import SmallAudit, sandbox_audit
from tests.store_backends import open_store

SETTINGS = settings(
    max_examples=int(os.environ.get("BUNDLE_FLIP_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory, store_kind: str) -> SmallAudit:
    return sandbox_audit(tmp_path_factory.mktemp("ws"))


@pytest.fixture(scope="module")
def folder(audit: SmallAudit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "folder"
    export_bundle(audit.store, audit.root, audit.run_id, out, audit.clock)
    return out


@pytest.fixture(scope="module")
def archive(audit: SmallAudit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "evidence.tar.gz"
    export_bundle(audit.store, audit.root, audit.run_id, out, audit.clock)
    return out


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the real entry point in process: (exit code, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_exported_bundles_verify(folder: Path, archive: Path, audit: SmallAudit) -> None:
    for bundle in (folder, archive):
        result = verify_bundle(bundle, rebuild=True)
        assert result.ok, result.problems
        assert result.run_id == audit.run_id
        assert result.entries == audit.store.exchange_count(audit.run_id) > 20
        assert "equals the signed one" in result.notes[0]


def test_bundle_files(folder: Path) -> None:
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "README.txt",
        "junit.xml",
        "ledger.jsonl",
        "manifest.json",
        "observations.jsonl",
        "probes.csv",
        "probes.jsonl",
        "run.json",
        "scorecard.html",
        "scorecard.json",
        "scorecard.md",
    ]


def test_scorecard_rebuilt_from_evidence_equals_the_stores(
    archive: Path, audit: SmallAudit
) -> None:
    rebuilt = scorecard_from_evidence(archive)
    assert rebuilt.model_dump() == scorecard_for(audit.store, audit.run_id).model_dump()


def test_export_is_deterministic(audit: SmallAudit, archive: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.tar.gz"
    export_bundle(audit.store, audit.root, audit.run_id, again, audit.clock)
    assert again.read_bytes() == archive.read_bytes()


def test_the_store_ledger_verifies(audit: SmallAudit) -> None:
    result = verify_store(audit.store, audit.run_id)
    assert result.ok and result.entries > 20


# tampering -----------------------------------------------------------------------------------
def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target)
    return target


@SETTINGS
@given(data=st.data())
def test_any_changed_byte_in_a_bundle_folder_is_found_and_named(
    folder: Path, tmp_path: Path, data: st.DataObject
) -> None:
    bundle = copy_of(folder, tmp_path)
    name = data.draw(st.sampled_from(sorted(p.name for p in bundle.iterdir())), label="file")
    original = (bundle / name).read_bytes()
    offset = data.draw(st.integers(0, len(original) - 1), label="offset")
    changed = bytearray(original)
    changed[offset] ^= data.draw(st.integers(1, 255), label="xor")
    (bundle / name).write_bytes(bytes(changed))
    result = verify_bundle(bundle)
    assert not result.ok
    assert result.problems[0].startswith(name), result.problems
    if name == "ledger.jsonl":
        line = original.count(b"\n", 0, offset) + 1
        assert result.problems[0].startswith(f"ledger.jsonl line {line} "), result.problems


@SETTINGS
@given(data=st.data())
def test_any_changed_byte_of_an_archive_is_found_unless_the_content_is_identical(
    archive: Path, tmp_path: Path, data: st.DataObject
) -> None:
    """Deflate data is not canonical: a handful of bit changes (about 30 in 150,000 single-byte
    changes of a 50 kB bundle) decode to the very same bytes, which the gzip CRC then accepts.
    Such a change alters no evidence; every other change is found and the archive named."""
    original = archive.read_bytes()
    offset = data.draw(st.integers(0, len(original) - 1), label="offset")
    changed = bytearray(original)
    changed[offset] ^= data.draw(st.integers(1, 255), label="xor")
    target = tmp_path / "changed.tar.gz"
    target.write_bytes(bytes(changed))
    result = verify_bundle(target)
    if result.ok:
        assert read_archive(bytes(changed)) == read_archive(original)
    else:
        assert result.problems[0].startswith("changed.tar.gz: "), result.problems


def test_entries_cut_from_the_end_are_found(folder: Path, tmp_path: Path) -> None:
    bundle = copy_of(folder, tmp_path)
    lines = (bundle / "ledger.jsonl").read_bytes().splitlines(keepends=True)
    (bundle / "ledger.jsonl").write_bytes(b"".join(lines[:-2]))
    problem = verify_bundle(bundle).problems[0]
    assert problem.startswith("ledger.jsonl: ") and "entries removed or added at the end" in problem


def test_missing_unlisted_and_linked_files_are_named(folder: Path, tmp_path: Path) -> None:
    bundle = copy_of(folder, tmp_path)
    (bundle / "probes.csv").unlink()
    (bundle / "scorecard-real.html").write_text("<p>forged</p>")
    (bundle / "link.json").symlink_to(bundle / "run.json")
    (bundle / ".DS_Store").write_bytes(b"finder")
    result = verify_bundle(bundle)
    assert "probes.csv: listed in the manifest but missing" in result.problems
    assert any(p.startswith("scorecard-real.html: not listed") for p in result.problems)
    assert any(p.startswith("link.json: not a regular file") for p in result.problems)
    assert result.notes == [".DS_Store: hidden file ignored"]


def test_a_measurement_the_ledger_does_not_back_is_found(tmp_path: Path) -> None:
    audit = sandbox_audit(tmp_path / "ws")
    victim = next(p for p in audit.store.probes(audit.run_id) if p.post_id)
    forged = ObservationRow(victim.probe_id, "status", "removed", 5.0, 6.0, "forged")
    audit.store.update_probe(audit.run_id, victim.probe_id, forged)
    # export refuses to sign it (a bundle re-signed with such records: tests/test_rederive.py)
    with pytest.raises(
        InputError, match=f"do not follow from its evidence ledger.*{victim.probe_id}"
    ):
        export_bundle(audit.store, audit.root, audit.run_id, tmp_path / "b", audit.clock)
    assert not (tmp_path / "b").exists()
    problems = verify_store(audit.store, audit.run_id).problems
    assert problems and problems[0].startswith("store and ledger disagree: ")
    assert victim.probe_id in problems[0]


def test_a_broken_store_ledger_is_not_signed(tmp_path: Path) -> None:
    audit = sandbox_audit(tmp_path / "ws")
    with audit.store.transaction() as db:
        db.execute("UPDATE exchanges SET entry_json = '{}' WHERE seq = 3")
    with pytest.raises(InputError, match="broken at entry 3"):
        export_bundle(audit.store, audit.root, audit.run_id, tmp_path / "b", audit.clock)
    assert verify_store(audit.store, audit.run_id).problems[0].startswith("ledger entry 3: ")


def hostile_archive(members: list[tarfile.TarInfo], tmp_path: Path) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isreg() else None)
    from audit.evidence.archive import _gzip

    path = tmp_path / "hostile.tar.gz"
    path.write_bytes(_gzip(buffer.getvalue()))
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size if kind == tarfile.REGTYPE else 0
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    return info


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([member("b/../../escape")], "not a file of the bundle's one folder"),
        ([member("/abs/manifest.json")], "not a file of the bundle's one folder"),
        ([member("b/manifest.json", tarfile.SYMTYPE)], "not a regular file"),
        ([member("b/x"), member("c/y")], "not a file of the bundle's one folder"),
        ([member("b/x"), member("b/x")], "appears twice"),
        ([member("b/sub/x")], "not a file of the bundle's one folder"),
    ],
)
def test_hostile_archives_are_refused_without_extracting(
    tmp_path: Path, members: list[tarfile.TarInfo], expected: str
) -> None:
    path = hostile_archive(members, tmp_path)
    result = verify_bundle(path)
    assert not result.ok and expected in result.problems[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.tar.gz"]


def test_a_re_packed_archive_is_reported(folder: Path, tmp_path: Path) -> None:
    import gzip

    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    raw = gzip.decompress(write_archive(files, "evidence-x"))
    path = tmp_path / "repacked.tar.gz"
    path.write_bytes(gzip.compress(raw, mtime=12345))
    assert "gzip header differs" in verify_bundle(path).problems[0]


# report folders and the command line ---------------------------------------------------------
def test_cli_export_verify_and_rebuild(
    audit: SmallAudit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--workspace", str(audit.root), "--reports", str(tmp_path / "reports")]
    code, out, _ = run_cli([*base, "export", audit.run_id], capsys)
    bundle = tmp_path / "reports" / audit.run_id / "evidence.tar.gz"
    assert code == 0 and f"wrote {bundle}" in out and bundle.is_file()
    code, out, _ = run_cli([*base, "verify", str(bundle.parent), "--rebuild"], capsys)
    assert code == 0 and out.startswith("OK ")
    code, out, _ = run_cli([*base, "verify", audit.run_id], capsys)
    assert code == 0 and out.startswith("OK  run ")
    code, out, _ = run_cli([*base, "key"], capsys)
    assert code == 0 and out.startswith("SHA256:")
    fingerprint = out.split()[0]
    code, out, _ = run_cli([*base, "verify", str(bundle), "--key", fingerprint], capsys)
    assert code == 0
    card = scorecard_for(audit.store, audit.run_id)
    rebuilt = tmp_path / "reports" / audit.run_id / "scorecard.html"
    rebuilt.unlink(missing_ok=True)
    code, out, _ = run_cli([*base, "evidence-report", str(bundle)], capsys)
    assert code == card.exit_code and rebuilt.is_file()
    code, alias_out, _ = run_cli([*base, "evidence-report", str(bundle), "--force"], capsys)
    code_report, report_out, _ = run_cli(
        [*base, "report", "--from-evidence", str(bundle), "--force"], capsys
    )
    assert (code, alias_out) == (code_report, report_out)  # an alias: the same command


def test_cli_names_a_changed_report_file(
    audit: SmallAudit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--workspace", str(audit.root), "--reports", str(tmp_path / "reports")]
    run_cli([*base, "report", audit.run_id, "--quiet"], capsys)
    run_cli([*base, "export", audit.run_id], capsys)
    html = tmp_path / "reports" / audit.run_id / "scorecard.html"
    html.write_text(html.read_text().replace("NON_COMPLIANT", "COMPLIANT_"))
    code, out, _ = run_cli([*base, "verify", str(html.parent)], capsys)
    assert code == 1 and out.startswith("TAMPERED")
    assert f"first bad place: {html}: differs from the signed copy" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "no/such/thing"], "no such evidence bundle"),
        (["verify", "{tmp}/plain.txt"], "not an evidence bundle"),
        (["verify", "{tmp}"], "not an evidence bundle"),
        (["export", "nope"], "no run 'nope'"),
        (["evidence-report", "{tmp}/plain.txt"], "not an evidence bundle"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    audit: SmallAudit,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    (tmp_path / "plain.txt").write_text("hello")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _, err = run_cli(["--workspace", str(audit.root), *argv], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_evidence_report_refuses_a_tampered_bundle(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = copy_of(folder, tmp_path)
    (bundle / "observations.jsonl").write_bytes(b"")
    code, _, err = run_cli(["evidence-report", str(bundle)], capsys)
    assert code == 2 and "does not verify (observations.jsonl: content differs" in err


@pytest.mark.sqlite_store  # the SQLite file of a workspace folder
def test_store_of_another_run_is_not_created_by_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run_cli(["--workspace", str(tmp_path / "ws"), "verify", "some-run"], capsys)
    assert code == 2 and not (tmp_path / "ws").exists()


def test_export_to_a_place_that_cannot_take_it(audit: SmallAudit, tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        export_bundle(audit.store, audit.root, audit.run_id, tmp_path / "plain", audit.clock)
    with pytest.raises(InputError, match="cannot write the bundle"):
        export_bundle(
            audit.store, audit.root, audit.run_id, tmp_path / "plain" / "b.tar.gz", audit.clock
        )
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an evidence bundle"):
        export_bundle(audit.store, audit.root, audit.run_id, tmp_path / "busy", audit.clock)


def test_re_export_into_a_bundle_folder_replaces_it(folder: Path, audit: SmallAudit) -> None:
    export_bundle(audit.store, audit.root, audit.run_id, folder, audit.clock)
    assert verify_bundle(folder).ok


@pytest.mark.sqlite_store  # the SQLite file of a workspace folder
def test_a_store_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "audit.sqlite").write_bytes(b"not sqlite" * 100)
    with pytest.raises(RuntimeFailure, match="is not a SQLite database"):
        open_store(tmp_path / "audit.sqlite")
