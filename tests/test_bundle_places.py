"""Nothing in a bundle names a place: run ids are checked, output stays under --reports,
existing scorecards are kept without --force, and a decompression bomb is refused in bounded
memory."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from audit.cli import main
from audit.evidence.archive import GZIP_HEADER
from audit.evidence.keys import workspace_key
from audit.evidence.manifest import MANIFEST_FILE, file_digest, write_manifest
from tests.conftest import run_virtual_audit, virtual_plan

ROOT = Path(__file__).resolve().parent.parent


def cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return 0


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("bundle")
    audit = run_virtual_audit(base / "ws", virtual_plan(violating=3, controls=1))
    audit.store.close()
    folder = base / "bundle"
    assert cli(["--workspace", str(base / "ws"), "export", audit.run_id, "--out", str(folder)]) == 0
    return folder, audit.run_id


def _resigned(source: Path, out: Path, run_id: str) -> Path:
    """The bundle with another run id, signed again by someone else's key (verifies without
    --key, with a note)."""
    out.mkdir()
    files = {p.name: p.read_bytes() for p in source.iterdir()}
    run = json.loads(files["run.json"])
    run["run_id"] = run_id
    files["run.json"] = (
        json.dumps(run, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()
    signed = json.loads(files.pop(MANIFEST_FILE))["signed"]
    signed.pop("public_key")
    signed["run_id"] = run_id
    signed["files"]["run.json"] = file_digest(files["run.json"])
    files[MANIFEST_FILE] = write_manifest(signed, workspace_key(out.parent / f"{out.name}-key"))
    for name, data in files.items():
        (out / name).write_bytes(data)
    return out


@pytest.mark.parametrize("run_id", ["../../escaped", "/tmp/abs-escape", "..", "a/b", "x"])
def test_a_run_id_that_names_a_place_writes_nothing(
    exported: tuple[Path, str], tmp_path: Path, run_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _resigned(exported[0], tmp_path / "evil", run_id)
    reports = tmp_path / "deep" / "er" / "reports"
    before = sorted(p for p in tmp_path.rglob("*"))
    code = cli(["--reports", str(reports), "report", "--from-evidence", str(bundle), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "'run_id' must look like" in err and len(err.strip().splitlines()) == 1
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not Path("/tmp/abs-escape").exists()


def test_existing_scorecards_are_kept_without_force(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, run_id = exported
    reports = tmp_path / "reports"
    (reports / run_id).mkdir(parents=True)
    (reports / run_id / "scorecard.json").write_text("the workspace's own")
    args = ["--reports", str(reports), "report", "--from-evidence", str(folder), "--quiet"]
    assert cli([*args, "--format", "json"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (reports / run_id / "scorecard.json").read_text() == "the workspace's own"
    assert cli([*args, "--format", "json", "--force"]) in (0, 3)
    assert json.loads((reports / run_id / "scorecard.json").read_text())["run_id"] == run_id


def test_a_linked_run_folder_outside_reports_is_refused(
    exported: tuple[Path, str], tmp_path: Path
) -> None:
    folder, run_id = exported
    reports, outside = tmp_path / "reports", tmp_path / "outside"
    reports.mkdir()
    outside.mkdir()
    (reports / run_id).symlink_to(outside)
    args = ["--reports", str(reports), "report", "--from-evidence", str(folder), "--force"]
    assert cli(args) == 2
    assert list(outside.iterdir()) == []


# decompression bombs ---------------------------------------------------------------------------
_ZEROS = 900 << 20


def _gzip_stream(parts: list[bytes], zeros: int, out: Path) -> None:
    """The exported gzip form of ``parts`` followed by ``zeros`` zero bytes, compressed as a
    stream (the test never holds the content)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    crc, size = 0, 0
    block = bytes(16 << 20)
    with out.open("wb") as handle:
        handle.write(GZIP_HEADER)
        for part in parts:
            crc, size = zlib.crc32(part, crc), size + len(part)
            handle.write(compressor.compress(part))
        left = zeros
        while left:
            chunk = block[: min(left, len(block))]
            crc, size, left = zlib.crc32(chunk, crc), size + len(chunk), left - len(chunk)
            handle.write(compressor.compress(chunk))
        handle.write(compressor.flush())
        handle.write(zlib.crc32(b"", crc).to_bytes(4, "little"))
        handle.write((size & 0xFFFFFFFF).to_bytes(4, "little"))


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    return info.tobuf(format=tarfile.USTAR_FORMAT)


BOMBS = {
    "one member of zeros": lambda: ([_tar_header("evidence-x/ledger.jsonl", _ZEROS)], 0),
    "zeros without a tar": lambda: ([], 0),
    "zeros after the tar's end": lambda: ([_tar_header("evidence-x/a.txt", 0), bytes(1024)], 0),
}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/self/status")
@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_a_bomb_is_refused_quickly_in_bounded_memory(tmp_path: Path, kind: str) -> None:
    parts, _ = BOMBS[kind]()
    bomb = tmp_path / "bomb.tar.gz"
    _gzip_stream(parts, _ZEROS, bomb)
    assert bomb.stat().st_size < 2 << 20
    # The peak is read from /proc/self/status (VmHWM belongs to this process's own memory map,
    # started fresh at exec); getrusage's ru_maxrss carries the forking parent's peak on Linux,
    # which is the whole test session's, not this command's. The commands import their modules
    # when they run, so those are imported before the baseline is read.
    script = (
        "import sys, time\n"
        "def kib(field):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(field + ':'):\n"
        "            return int(line.split()[1])\n"
        "    raise SystemExit('no ' + field)\n"
        "from audit.cli import main\n"
        "import audit.evidence.bundle, audit.report.registry, audit.ui, audit.workspace\n"
        "base = kib('VmRSS')\n"
        "start = time.monotonic()\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "grown = (kib('VmHWM') - base) // 1024\n"
        "print(f'RESULT {code} {grown} {time.monotonic() - start:.2f}', file=sys.stderr)\n"
    )
    for args in (["verify", str(bomb)], ["report", "--from-evidence", str(bomb)]):
        done = subprocess.run(
            [sys.executable, "-c", script, "--reports", str(tmp_path / "r"), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        lines = done.stderr.strip().splitlines()
        code, grown_mb, seconds = lines[-1].split()[1:]
        print(kind, args[0], "exit", code, "peak growth MB", grown_mb, "seconds", seconds)
        assert "Traceback" not in done.stderr
        assert int(code) in (1, 2), done.stderr
        assert int(grown_mb) < 128
        message = done.stdout + done.stderr
        assert "larger than" in message or "after the end" in message or "damaged" in message
    assert not (tmp_path / "r").exists()
