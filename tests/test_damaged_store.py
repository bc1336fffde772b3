"""A damaged workspace store is refused, never read: one line naming the file, exit 4.

The sweep takes the store of a small real run (virtual clock, in-process sandbox), changes one
byte of a copy at a time at seeded random places, and runs `status`, `report`, `verify` and
`runs` (and `resume` on every third copy) on each copy in-process. None may raise or print a
traceback; `report` and `resume` write no scorecard and exit 4 whenever SQLite's
integrity_check is not ok, and `verify` fails there; `status` and `runs` never exit with a
verdict's code, and `report` only with the intact store's or 4. It prints its tallies, which
docs/reliability.md records.
"""

from __future__ import annotations

import io
import random
import shutil
import sqlite3
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit.cli import main
from audit.outcomes import Outcome
from audit.store_rows import OUTCOMES
from tests.conftest import run_virtual_audit, virtual_plan

FLIPS = 120
SEED = 14
COMMANDS = ("status", "report", "verify", "runs", "resume")
RESUME_EVERY = 3  # resume (a scorecard after carrying the run on) on every third change only


@dataclass(frozen=True)
class Ran:
    code: int | None
    out: str
    err: str
    escaped: str | None  # an exception other than SystemExit that left main()


@dataclass(frozen=True)
class Pristine:
    data: bytes
    run_id: str


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    root = tmp_path_factory.mktemp("pristine")
    audit = run_virtual_audit(root, virtual_plan(violating=3, controls=1))
    audit.store.close()  # the last connection checkpoints the WAL into the file
    assert not (root / "audit.sqlite-wal").exists()
    return Pristine((root / "audit.sqlite").read_bytes(), audit.run_id)


def cli(workspace: Path, *args: str) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    escaped = None
    argv = ["--workspace", str(workspace), "--reports", str(workspace / "reports"), *args]
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception as exc:  # what escapes main() is the finding
            escaped = f"{type(exc).__name__}: {exc}"
    return Ran(code, out.getvalue(), err.getvalue(), escaped)


def command(name: str, run_id: str) -> list[str]:
    if name == "runs":
        return ["runs"]
    if name in ("report", "resume"):
        return [name, run_id, "--format", "json"]
    return [name, run_id]


def place(workspace: Path, data: bytes) -> None:
    """The store file of the workspace is ``data``, with no WAL or shared memory beside it."""
    for suffix in ("-wal", "-shm"):
        (workspace / f"audit.sqlite{suffix}").unlink(missing_ok=True)
    (workspace / "audit.sqlite").write_bytes(data)
    shutil.rmtree(workspace / "reports", ignore_errors=True)


def sqlite_says(scratch: Path, data: bytes) -> str:
    """What SQLite itself thinks of the file: ok, quick_check, integrity_check or not a db."""
    place(scratch, data)
    try:
        db = sqlite3.connect(scratch / "audit.sqlite")
        try:
            if [r[0] for r in db.execute("PRAGMA quick_check")] != ["ok"]:
                return "quick_check"
            if [r[0] for r in db.execute("PRAGMA integrity_check")] != ["ok"]:
                return "integrity_check"
            return "ok"
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return "unreadable"


CAUGHT_BY = (
    ("not a SQLite database", "header: not a SQLite database"),
    ("quick_check", "quick_check on open"),
    ("integrity_check", "integrity_check (scorecard, verify)"),
    ("schema version", "schema check on open"),
    ("this tool's columns", "schema check on open"),
    ("a stored row", "row decoding"),
    ("a ledger record", "row decoding"),
    ("holds text that is not UTF-8", "SQLite error while reading (text that is not UTF-8)"),
    ("is damaged (", "SQLite error while reading"),
)


def caught_by(err: str) -> str | None:
    for needle, name in CAUGHT_BY:
        if needle in err:
            return name
    return None


def scorecards(workspace: Path) -> list[Path]:
    reports = workspace / "reports"
    return sorted(p for p in reports.rglob("*") if p.is_file()) if reports.exists() else []


def test_store_outcomes_are_the_outcomes() -> None:
    assert {o.value for o in Outcome} == OUTCOMES


def test_single_byte_changes_never_crash_or_lie(pristine: Pristine, tmp_path: Path) -> None:
    workspace, scratch = tmp_path / "ws", tmp_path / "scratch"
    workspace.mkdir()
    scratch.mkdir()
    baseline: dict[str, Ran] = {}
    for name in COMMANDS:
        place(workspace, pristine.data)
        baseline[name] = cli(workspace, *command(name, pristine.run_id))
    assert {n: r.code for n, r in baseline.items()}["verify"] == 0, baseline["verify"]
    assert all(r.escaped is None and "error" not in r.err for r in baseline.values()), baseline

    rng = random.Random(SEED)
    store = str(workspace / "audit.sqlite")
    tally: Counter[str] = Counter()
    failures: list[str] = []
    for i in range(FLIPS):
        at = rng.randrange(len(pristine.data))
        change = 1 << rng.randrange(8) if i % 2 == 0 else rng.randrange(1, 256)
        damaged = bytearray(pristine.data)
        damaged[at] ^= change
        verdict = sqlite_says(scratch, bytes(damaged))
        tally[f"sqlite: {verdict}"] += 1
        ran: dict[str, Ran] = {}
        for name in COMMANDS if i % RESUME_EVERY == 0 else COMMANDS[:-1]:
            place(workspace, bytes(damaged))
            ran[name] = cli(workspace, *command(name, pristine.run_id))
            if name in ("report", "resume") and scorecards(workspace) and verdict != "ok":
                failures.append(f"byte {at} ^{change:#x}: {name} wrote a scorecard ({verdict})")
        where = f"byte {at} ^{change:#x} (sqlite {verdict})"
        for name, r in ran.items():
            if r.escaped or "Traceback" in r.err or "unexpected failure" in r.err:
                failures.append(f"{where}: {name} crashed: {r.escaped or r.err[-300:]}")
            errors = [line for line in r.err.splitlines() if line.startswith("error:")]
            if r.code == 4 and (len(errors) != 1 or store not in errors[0]):
                failures.append(f"{where}: {name} exit 4 without one line naming it: {r.err}")
        codes = {n: r.code for n, r in ran.items()}
        allowed = {
            "status": {0, 4},
            "runs": {0, 4},
            "report": {baseline["report"].code, 4},
            "resume": {baseline["resume"].code, 4},  # when run
            "verify": {0, 1, 4},
        }
        if verdict != "ok":
            allowed.update(report={4}, resume={4}, verify={1, 4})
        elif codes["verify"] == 1:  # a valid database holding other data, found by verify:
            # report scores the stored data (docs/reliability.md), so its verdict may differ
            allowed.update(report={0, 1, 3, 4}, resume={0, 1, 3, 4})
        for name, code in codes.items():
            if code not in allowed[name]:
                failures.append(f"{where}: {name} exit {code}: {ran[name].err.strip()[:300]}")
        if all((r.code, r.out) == (baseline[n].code, baseline[n].out) for n, r in ran.items()):
            tally["no effect on any command"] += 1
            continue
        tally["changed something"] += 1
        catchers = {c for r in ran.values() if r.code == 4 and (c := caught_by(r.err))}
        for catcher in catchers:
            tally[f"caught by {catcher}"] += 1
        if codes["verify"] == 1:
            tally["verify: TAMPERED (ledger or agreement)"] += 1
            if codes["report"] != 4:
                tally["verify: TAMPERED, report scored it (store intact, data changed)"] += 1
        if not catchers and codes["verify"] == 0:
            changed = sorted(n for n, r in ran.items() if r.out != baseline[n].out)
            tally["changed output, refused by nothing: " + ",".join(changed)] += 1
            failures.append(f"{where}: changed {', '.join(changed)}, refused by nothing")

    print(f"\n{FLIPS} single-byte changes (seed {SEED}) of a {len(pristine.data)}-byte store:")
    for name, count in sorted(tally.items()):
        print(f"  {count:4d}  {name}")
    assert not failures, "\n".join(failures)
    assert tally["changed something"] >= 20  # the sweep does hit data and structure


def test_empty_store_is_not_read_as_no_runs(pristine: Pristine, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "audit.sqlite").write_bytes(b"")
    for name in COMMANDS:
        ran = cli(workspace, *command(name, pristine.run_id))
        assert ran.code == 4, (name, ran)
        assert "is empty (0 bytes)" in ran.err and str(workspace / "audit.sqlite") in ran.err
        assert "no runs" not in ran.out
    assert (workspace / "audit.sqlite").stat().st_size == 0  # left as found, not made a store


@pytest.mark.parametrize(
    "content",
    [b"SQLite format 2\x00" + b"\x00" * 4080, b"run_id,status\n20260101T000000Z-1,complete\n" * 90],
    ids=["wrong-header", "text"],
)
def test_not_sqlite_is_named(pristine: Pristine, tmp_path: Path, content: bytes) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "audit.sqlite").write_bytes(content)
    for name in COMMANDS:
        ran = cli(workspace, *command(name, pristine.run_id))
        assert ran.code == 4, (name, ran)
        assert "is not a SQLite database" in ran.err, ran.err
        assert ran.err.count("\n") == 1 and "Traceback" not in ran.err
    assert (workspace / "audit.sqlite").read_bytes() == content


def test_foreign_database_is_left_alone(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    db = sqlite3.connect(workspace / "audit.sqlite")
    db.execute("CREATE TABLE notes (body TEXT)")
    db.commit()
    db.close()
    ran = cli(workspace, "runs")
    assert ran.code == 4, ran
    assert "not a platform-audit workspace store" in ran.err and "notes" in ran.err
    db = sqlite3.connect(workspace / "audit.sqlite")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert tables == {"notes"}  # none of ours added to someone else's database


def test_changed_schema_is_refused(pristine: Pristine, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    place(workspace, pristine.data)
    db = sqlite3.connect(workspace / "audit.sqlite")
    db.execute("ALTER TABLE probes RENAME COLUMN note TO notes")
    db.commit()
    db.close()
    for name in COMMANDS:
        ran = cli(workspace, *command(name, pristine.run_id))
        assert ran.code == 4, (name, ran)
        assert "table probes does not have this tool's columns" in ran.err


def test_index_missing_a_row_writes_no_scorecard(pristine: Pristine, tmp_path: Path) -> None:
    """The case of the issue: quick_check passes, an index lacks rows, and the scorecard built
    through it leaves observations out. integrity_check sees it; report and verify refuse."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    place(workspace, pristine.data)
    db = sqlite3.connect(workspace / "audit.sqlite")
    full = db.execute("SELECT sql FROM sqlite_master WHERE name = 'observations_probe'").fetchone()[
        0
    ]
    db.execute("DROP INDEX observations_probe")
    db.execute(f"{full} WHERE id % 3 != 0")  # the index built without every third row
    db.execute("PRAGMA writable_schema = ON")
    db.execute(
        "UPDATE sqlite_master SET sql = ? WHERE name = 'observations_probe'", (full,)
    )  # ... now claims to hold every row
    db.commit()
    db.close()
    db = sqlite3.connect(workspace / "audit.sqlite")
    assert [r[0] for r in db.execute("PRAGMA quick_check")] == ["ok"]
    assert [r[0] for r in db.execute("PRAGMA integrity_check")] != ["ok"]
    db.close()
    for name in ("report", "verify", "resume"):
        ran = cli(workspace, *command(name, pristine.run_id))
        assert ran.code == 4, (name, ran)
        assert "integrity_check" in ran.err and "missing from index" in ran.err, ran.err
        assert not scorecards(workspace)
