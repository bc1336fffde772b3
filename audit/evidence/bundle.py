"""Evidence bundles: one run's ledger, records, scorecards and signed manifest, in one place.

A bundle is a folder or a ``.tar.gz`` archive holding, side by side::

    manifest.json        signed: digests of every other file, ledger head, run facts
    ledger.jsonl         the hash-chained evidence ledger, one canonical JSON line per exchange
    run.json             the run: plan, target (no secrets), pack, seed, time scale, status
    probes.jsonl         every probe and its stored state
    observations.jsonl   every look, submission, notice and withdrawal, as stored
    scorecard.*, junit.xml, probes.csv   the scorecards, rendered at export
    README.txt           how to verify, with or without this tool

:func:`verify_bundle` needs nothing but the bundle and names the first bad place: a manifest that
does not verify, a ledger line and entry, a file whose digest differs, a file the manifest does
not list, or a record that does not follow from the ledger (:mod:`audit.evidence.rederive`).
:func:`scorecard_from_evidence` rebuilds the scorecard from a verified bundle alone.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit import __version__
from audit.clock import Clock, SystemClock, utc_iso
from audit.errors import InputError
from audit.evidence.archive import is_archive_path, read_archive_stream, read_folder, write_archive
from audit.evidence.keys import SigningKey, workspace_key
from audit.evidence.ledger import (
    GENESIS,
    LEDGER_FILE,
    OBSERVATIONS_FILE,
    PROBES_FILE,
    RUN_FILE,
    RunEvidence,
    canonical_json,
    check_agreement,
    check_chain,
    first_line,
    parse_records,
    snapshot,
)
from audit.evidence.ledger import read_ledger as parse_ledger
from audit.evidence.manifest import FORMAT as MANIFEST_FORMAT
from audit.evidence.manifest import (
    MANIFEST_FILE,
    ManifestBody,
    file_digest,
    read_manifest,
    write_manifest,
)
from audit.evidence.rederive import RunDerivation, check_derivation
from audit.report.json import render_json
from audit.report.registry import RENDERERS, TEXT_FORMATS
from audit.scorecard import Scorecard, build_scorecard
from audit.store import ExchangeRecord, RunRow
from audit.store_protocol import RunStore
from audit.store_rows import media_sent_by_probe, side_by_side

__all__ = [
    "DEFAULT_ARCHIVE",
    "ExportResult",
    "Verification",
    "export_bundle",
    "scorecard_folder",
    "scorecard_from_evidence",
    "verify_bundle",
    "verify_store",
]

README_FILE = "README.txt"
DEFAULT_ARCHIVE = "evidence.tar.gz"
MAX_BUNDLE_BYTES = 1 << 30
#: the form of every run id (see ``audit.runner._run_id``): UTC stamp and six hex digits
RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")


def _scorecard(evidence: RunEvidence, signing_key: str | None) -> Scorecard:
    return build_scorecard(
        evidence.run,
        evidence.probes,
        evidence.observations,
        (len(evidence.records), evidence.head),
        signing_key,
        media_sent_by_probe(evidence.records),
    )


def _ledger_disagreements(evidence: RunEvidence) -> tuple[list[str], list[str]]:
    """Where the run's records do not follow from its ledger (problems), and what could not be
    checked (notes): every measurement rests on an answer, says what that answer says, and
    every outcome, deadline clock and probe text follows (see :mod:`audit.evidence.rederive`)."""
    found = check_agreement(evidence.probes, evidence.observations, evidence.records)
    derived = check_derivation(
        evidence.run, evidence.probes, evidence.observations, evidence.records
    )
    return _disagreements(found + derived.problems), derived.notes


def _sealable(store: RunStore, run_id: str) -> RunEvidence:
    evidence = snapshot(store, run_id)
    chain = check_chain(evidence.records)
    if not chain.ok:
        raise InputError(
            f"the evidence ledger of run {run_id} is broken at entry {chain.bad_seq} "
            f"({chain.problem}); it will not be signed",
            source=store.location,
        )
    problems, _ = _ledger_disagreements(evidence)
    if problems:
        more = f" (and {len(problems) - 1} more; `platform-audit verify {run_id}` lists them)"
        raise InputError(
            f"the records of run {run_id} do not follow from its evidence ledger: "
            f"{problems[0]}{more if len(problems) > 1 else ''}; it will not be signed",
            source=store.location,
        )
    return evidence


# export -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportResult:
    path: Path
    run_id: str
    fingerprint: str
    entries: int
    head: str
    files: int


def _scorecard_files(card: Scorecard) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for fmt in TEXT_FORMATS:  # a bundle is text, signed; PDF is printed from its HTML
        renderer = RENDERERS[fmt]
        files[renderer.filename] = renderer.render(card, None, "en")
    return files


def _readme(run_id: str, key: SigningKey) -> bytes:
    return f"""Evidence of platform-audit run {run_id}

Signed with Ed25519 key {key.fingerprint}. Check that this fingerprint is the
one the auditor published, then verify the bundle:

    platform-audit verify <this archive or folder> --key {key.fingerprint}

Without the tool: manifest.json holds 'signed' and 'signature'. The signature is Ed25519, by the
public key in signed.public_key.key (hex), over the canonical JSON of 'signed' (keys sorted, no
spaces, separators ',' and ':', UTF-8 without escaping). signed.files gives the SHA-256 of every
other file. Each line of ledger.jsonl is an exchange; its 'hash' is the SHA-256 of the canonical
JSON of {{"entry", "prev", "probe", "seq"}} (probe = the line's probe_id), and its 'prev' is the
hash of the line before (the first line's is sha256: followed by 64 zeros). signed.ledger gives
the number of entries and the hash of the last one.

A submission's entry may refer to its probe's text instead of holding it: its request_body is
the body with the text taken out, request_text_sha256 the SHA-256 of the text (UTF-8) and
request_text_at the places (in characters of that body, ascending) where the text stood, as the
content of a JSON string (json.dumps(text, ensure_ascii=False) without its quotes). The text
is the probe's in probes.jsonl (field probe.text): check its SHA-256, then put it back at each
place to get the body that was sent.
""".encode()


def _exchange_time(records: list[ExchangeRecord], index: int, key: str) -> str | None:
    """An exchange's time in UTC, from its epoch seconds (entries written before the ledger
    kept times once carry the text too)."""
    entry = records[index].entry if records else {}
    seconds = entry.get(key.replace("_utc", "_at"))
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return utc_iso(seconds)
    value = entry.get(key)
    return value if isinstance(value, str) else None


def _manifest_body(evidence: RunEvidence, files: dict[str, bytes], clock: Clock) -> dict[str, Any]:
    run, records = evidence.run, evidence.records
    profile = run.target.get("profile")
    meta = run.pack.get("pack", {})
    return {
        "format": MANIFEST_FORMAT,
        "tool": "platform-audit",
        "tool_version": __version__,
        "run_id": run.run_id,
        "plan_name": run.plan_name,
        "status": run.status,
        "target": {
            key: str(run.target.get(key, ""))
            for key in ("name", "adapter", "base_url", "environment")
        },
        "pack": {"id": str(meta.get("id", "")), "version": str(meta.get("version", ""))},
        "seed": run.seed,
        "time_scale": float(run.time_scale),
        "period": {
            "created_utc": utc_iso(run.created_at),
            "first_exchange_utc": _exchange_time(records, 0, "started_utc"),
            "last_exchange_utc": _exchange_time(records, -1, "ended_utc"),
            "finished_utc": utc_iso(run.finished_at),
        },
        "digests": {
            "plan": file_digest(canonical_json(run.plan).encode()),
            "pack": run.pack_digest,
            "target": file_digest(canonical_json(run.target).encode()),
            "profile": None if profile is None else file_digest(canonical_json(profile).encode()),
        },
        "ledger": {"file": LEDGER_FILE, "entries": len(records), "head": evidence.head},
        "files": {name: file_digest(data) for name, data in sorted(files.items())},
        "exported_utc": utc_iso(clock.now()),
    }


def _write_folder(files: dict[str, bytes], out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("the export folder is a file (name an archive .tar.gz)", source=out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST_FILE).exists():
        raise InputError("the export folder exists and is not an evidence bundle", source=out)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)


def _write_file(data: bytes, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_bundle(
    store: RunStore, workspace_root: Path, run_id: str, out: Path, clock: Clock | None = None
) -> ExportResult:
    """Write the evidence bundle of a run: an archive if ``out`` ends in .tar.gz, else a folder."""
    evidence = _sealable(store, run_id)
    key = workspace_key(workspace_root)
    files = evidence.files() | _scorecard_files(_scorecard(evidence, key.fingerprint))
    files[README_FILE] = _readme(run_id, key)
    body = _manifest_body(evidence, files, clock or SystemClock())
    files[MANIFEST_FILE] = write_manifest(body, key)
    try:
        if is_archive_path(out):
            _write_file(write_archive(files, f"evidence-{run_id}"), out)
        else:
            _write_folder(files, out)
    except OSError as exc:
        raise InputError(f"cannot write the bundle ({exc.strerror or exc})", source=out) from None
    return ExportResult(
        out, run_id, key.fingerprint, len(evidence.records), evidence.head, len(files)
    )


# verification -------------------------------------------------------------------------------
@dataclass
class Verification:
    """What verifying a bundle (or a run in the store) found; the first problem is the first
    bad place."""

    source: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run_id: str | None = None
    fingerprint: str | None = None
    entries: int = 0
    head: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _ledger_problems(data: bytes, signed: ManifestBody) -> tuple[list[ExchangeRecord], list[str]]:
    records, chain = parse_ledger(data)
    if not chain.ok:
        return records, [f"{LEDGER_FILE} {chain.place()}: {chain.problem}"]
    claimed = (signed.ledger.entries, signed.ledger.head)
    if (chain.entries, chain.head) != claimed:
        return records, [
            f"{LEDGER_FILE}: {chain.entries} entries ending in {chain.head}, but the manifest "
            f"records {claimed[0]} ending in {claimed[1]} (entries removed or added at the end)"
        ]
    if file_digest(data) != signed.files.get(LEDGER_FILE):
        return records, [f"{LEDGER_FILE}: differs from its digest in the manifest"]
    return records, []


def _file_problems(files: dict[str, bytes], signed: ManifestBody) -> list[str]:
    problems = []
    for name, digest in sorted(signed.files.items()):
        if name == LEDGER_FILE:
            continue
        if name not in files:
            problems.append(f"{name}: listed in the manifest but missing")
        elif file_digest(files[name]) != digest:
            problems.append(f"{name}: content differs from its digest in the signed manifest")
    for name in sorted(set(files) - set(signed.files) - {MANIFEST_FILE}):
        problems.append(f"{name}: not listed in the manifest (not covered by the signature)")
    return problems


def _examine(
    files: dict[str, bytes], result: Verification, expect_key: str | None
) -> RunEvidence | None:
    """Check a bundle's files; return its evidence when it could be read."""
    if MANIFEST_FILE not in files:
        result.problems.append(f"{MANIFEST_FILE}: missing")
        return None
    check = read_manifest(files[MANIFEST_FILE], expect_key)
    result.problems += check.problems
    if check.doc is None:
        return None
    signed = check.doc.signed
    result.run_id, result.fingerprint = signed.run_id, check.fingerprint
    if LEDGER_FILE not in files:
        result.problems.append(f"{LEDGER_FILE}: missing")
        return None
    records, problems = _ledger_problems(files[LEDGER_FILE], signed)
    result.problems += problems + _file_problems(files, signed)
    result.entries, result.head = len(records), records[-1].hash if records else GENESIS
    if problems or any(name not in files for name in (RUN_FILE, PROBES_FILE, OBSERVATIONS_FILE)):
        return None
    try:
        evidence = parse_records(files, records)
    except (ValueError, UnicodeDecodeError) as exc:
        result.problems.append(str(exc))
        return None
    problems, notes = _ledger_disagreements(evidence)
    result.problems += problems
    result.notes += notes
    return evidence


def _disagreements(found: list[str], shown: int = 20) -> list[str]:
    lines = [f"store and ledger disagree: {d}" for d in found[:shown]]
    if len(found) > shown:
        lines.append(f"store and ledger disagree: {len(found) - shown} more such observations")
    return lines


def _json_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first place where two JSON values differ, as a path such as ``criteria[0].verdict``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _json_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _json_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else (path or "(top level)")


def _compare_rebuild(files: dict[str, bytes], evidence: RunEvidence, result: Verification) -> None:
    rebuilt = json.loads(render_json(_scorecard(evidence, result.fingerprint)))
    try:
        signed = json.loads(files["scorecard.json"].decode("utf-8"))
    except (KeyError, ValueError, UnicodeDecodeError):
        result.problems.append("scorecard.json: missing or unreadable, nothing to compare")
        return
    place = _json_difference(signed, rebuilt)
    if place is None:
        result.notes.append("the scorecard rebuilt from the evidence equals the signed one")
        return
    text = f"scorecard.json: the scorecard rebuilt from the evidence differs at {place}"
    if signed.get("tool_version") == __version__:
        result.problems.append(text)
    else:
        result.notes.append(f"{text} (signed by version {signed.get('tool_version')})")


def _first_difference(a: bytes, b: bytes) -> str:
    offset = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    offset = min(len(a), len(b)) if offset is None else offset
    line = a.count(b"\n", 0, offset) + 1
    column = offset - (a.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _bundle_files(path: Path, result: Verification) -> dict[str, bytes]:
    """The files of a bundle at ``path``; InputError when it is no bundle at all."""
    if path.is_dir():
        try:
            files, problems, ignored = read_folder(path)
        except OSError as exc:
            raise InputError(
                f"the bundle folder cannot be read ({exc.strerror})", source=path
            ) from None
        result.problems += problems
        result.notes += [f"{name}: hidden file ignored" for name in ignored]
        return files
    if not path.is_file():
        raise InputError(
            "no such evidence bundle (give an archive, a folder or a run id)", source=path
        )
    if not is_archive_path(path):
        raise InputError(
            "not an evidence bundle (expected a .tar.gz archive or a folder)", source=path
        )
    if path.stat().st_size > MAX_BUNDLE_BYTES:
        raise InputError(f"the archive is larger than {MAX_BUNDLE_BYTES} bytes", source=path)
    with path.open("rb") as handle:
        files, problem = read_archive_stream(handle, path.stat().st_size)
    if problem is not None:
        result.problems.append(f"{path.name}: {problem}")
    return files


def _locate(path: Path) -> tuple[Path, Path | None]:
    """The bundle to check, and the report folder whose scorecards must equal its copies."""
    if path.is_dir() and not (path / MANIFEST_FILE).exists():
        archive = path / DEFAULT_ARCHIVE
        if archive.is_file():
            return archive, path
        raise InputError(
            f"not an evidence bundle: no {MANIFEST_FILE} or {DEFAULT_ARCHIVE} here "
            "(write one with `platform-audit export RUN_ID`)",
            source=path,
        )
    return path, None


def _check_report_copies(folder: Path, files: dict[str, bytes], result: Verification) -> None:
    for name, data in sorted(files.items()):
        copy = folder / name
        if name == MANIFEST_FILE or not copy.is_file() or copy.is_symlink():
            continue
        found = copy.read_bytes()
        if found != data:
            result.problems.append(
                f"{copy}: differs from the signed copy in {DEFAULT_ARCHIVE} "
                f"(first difference at {_first_difference(found, data)})"
            )


def _verify(
    path: Path, expect_key: str | None
) -> tuple[Verification, RunEvidence | None, dict[str, bytes]]:
    bundle, report_folder = _locate(path)
    result = Verification(str(path))
    files = _bundle_files(bundle, result)
    evidence = _examine(files, result, expect_key) if files else None
    if not files and not result.problems:
        result.problems.append(f"{bundle}: the bundle is empty")
    if report_folder is not None and files:
        _check_report_copies(report_folder, files, result)
    return result, evidence, files


def verify_bundle(path: Path, expect_key: str | None = None, rebuild: bool = False) -> Verification:
    """Check an evidence bundle (archive, folder, or report folder holding evidence.tar.gz).

    ``expect_key`` is the fingerprint the signer published; ``rebuild`` also recomputes the
    scorecard from the evidence and compares it with the signed ``scorecard.json``.
    """
    result, evidence, files = _verify(path, expect_key)
    if rebuild and evidence is not None and result.ok:
        _compare_rebuild(files, evidence, result)
    return result


def verify_store(store: RunStore, run_id: str) -> Verification:
    """Check a run's ledger in the workspace store, and that its records follow from it (its
    observations, outcomes, deadline clocks and probe texts: see :mod:`audit.evidence.rederive`)."""
    store.check_integrity()
    with store.snapshot_read():  # the chain walk and the probe-by-probe pass read one state
        run = store.run(run_id)
        walk = _LedgerWalk()
        chain = check_chain(walk.records(store.exchanges(run_id)))
        result = Verification(f"run {run_id} in {store.location}", run_id=run.run_id)
        result.entries, result.head = chain.entries, chain.head
        if not chain.ok:
            result.problems.append(f"ledger {chain.place()}: {chain.problem}")
            return result
        problems, notes = _streamed_disagreements(store, run, walk)
    result.problems += problems
    result.notes += notes
    return result


class _LedgerWalk:
    """What the derivation needs of the whole ledger, noted while the chain is walked: the
    records made for no probe, and whether any record carries media."""

    def __init__(self) -> None:
        self.run_records: list[ExchangeRecord] = []
        self.media_recorded = False

    def records(self, records: Iterable[ExchangeRecord]) -> Iterator[ExchangeRecord]:
        for record in records:
            if record.probe_id is None:
                self.run_records.append(record)
            if not self.media_recorded and "media" in record.entry:
                self.media_recorded = True
            yield record


def _streamed_disagreements(
    store: RunStore, run: RunRow, walk: _LedgerWalk
) -> tuple[list[str], list[str]]:
    """:func:`_ledger_disagreements` of a run in the store, probe by probe: each probe's
    observations and ledger records are read side by side in probe-id order, so memory holds
    one probe's records, not the run's."""
    derivation = RunDerivation(run, walk.run_records, walk.media_recorded)
    found: list[str] = []
    records = store.probe_exchanges(run.run_id)
    try:
        # records made for a probe id the run does not hold back nothing: passed over
        for (row, observations), mine in side_by_side(
            store.probes_with_observations(run.run_id),
            records,
            lambda probe: probe[0].probe_id,
            lambda record: str(record.probe_id),
        ):
            found += check_agreement([row], {row.probe_id: observations}, mine)
            derivation.probe(row, observations, mine)
    finally:
        records.close()
    derived = derivation.result()
    return _disagreements(found + derived.problems), derived.notes


def scorecard_from_evidence(path: Path) -> Scorecard:
    """The scorecard of a run, rebuilt from its evidence bundle alone (which must verify)."""
    result, evidence, _ = _verify(path, None)
    if not result.ok or evidence is None:
        first = result.problems[0] if result.problems else "its records cannot be read"
        raise InputError(
            f"the evidence bundle does not verify ({first}); `platform-audit verify` lists "
            "every problem",
            source=path,
        )
    try:
        card = _scorecard(evidence, result.fingerprint)
    except (ValueError, TypeError, KeyError, AssertionError, ArithmeticError) as exc:
        raise InputError(
            f"the evidence cannot be scored ({first_line(exc)})", source=path
        ) from None
    _checked_run_id(card, result, path)
    return card


def _checked_run_id(card: Scorecard, result: Verification, path: Path) -> str:
    """The bundle's run id, only if it is one this tool makes and the manifest signs it."""
    run_id = card.run_id
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise InputError(
            f"'run_id' must look like 20241112T080000Z-1a2b3c (got {run_id!r}); "
            "nothing was written",
            source=path,
        )
    if run_id != result.run_id:
        raise InputError(
            f"'run_id' of run.json ({run_id}) differs from the signed manifest's "
            f"({result.run_id}); nothing was written",
            source=path,
        )
    return run_id


def scorecard_folder(reports: Path, name: str, force: bool, scorecard_names: list[str]) -> Path:
    """``reports/name``, once it is sure to lie inside ``reports`` (links resolved) and to hold
    none of ``scorecard_names`` already unless ``force``; InputError otherwise."""
    root = reports.resolve()
    folder = (reports / name).resolve()
    if folder == root or not folder.is_relative_to(root):
        raise InputError(
            f"the scorecard folder {reports / name} lies outside --reports {reports}; "
            "nothing was written",
            source=reports,
        )
    existing = [n for n in scorecard_names if (folder / n).exists() or (folder / n).is_symlink()]
    if existing and not force:
        raise InputError(
            f"{folder} already holds scorecards of run {name} ({', '.join(existing)}); "
            "pass --force to overwrite them, or choose another --reports",
            source=reports,
        )
    links = [n for n in scorecard_names if (folder / n).is_symlink()]
    if links:
        raise InputError(f"{folder / links[0]} is a link; nothing was written", source=reports)
    return folder
