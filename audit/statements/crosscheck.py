"""The cross-check of a run: its loaded statements, kept in the workspace, against its probes.

``platform-audit statements RUN_ID FILE`` keeps what it loaded in
``<workspace>/statements/<run_id>.json`` (the usable records, the file's name and digest, the
bad rows and the matching settings); every scorecard of the run then carries the section.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import InputError
from audit.i18n import N_
from audit.packs import Pack
from audit.statements.check import check_probe, criterion_rates, kind_rates
from audit.statements.load import iter_rows, normalise
from audit.statements.match import day_of, match_statements
from audit.statements.model import Ambiguous, StatementSource, StatementsSection
from audit.statements.observed import observed_probes
from audit.statements.statement import Statement, statement_from
from audit.store import ObservationRow, ProbeRow, RunRow

__all__ = [
    "BY_ATTRIBUTES",
    "LIMITS",
    "Stored",
    "cross_check",
    "load_stored",
    "read_file",
    "read_files",
    "run_filter",
    "save_stored",
    "stored_path",
]

FORMAT = 1
DEFAULT_WINDOW_S = 300.0


@dataclass(frozen=True)
class Stored:
    sources: list[dict[str, Any]]  # each file read: its path, sha256 and rows
    rows: int
    bad_rows: list[str]
    records: list[dict[str, Any]]  # usable rows, each with its "_label"
    puid_template: str | None
    platform: str | None
    automation_window_s: float
    skipped: int = 0  # usable rows left out as not about the run (another puid, day, platform)

    def statements(self) -> list[Statement]:
        out = []
        for record in self.records:
            body = {k: v for k, v in record.items() if k != "_label"}
            parsed = statement_from(str(record["_label"]), body)
            if isinstance(parsed, Statement):
                out.append(parsed)
        return out


def read_file(
    path: Path,
    puid_template: str | None,
    platform: str | None,
    window_s: float,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> Stored:
    """The usable rows of ``path`` that ``keep`` accepts, and one line per bad row."""
    return read_files([path], puid_template, platform, window_s, keep)


def read_files(
    paths: Sequence[Path],
    puid_template: str | None,
    platform: str | None,
    window_s: float,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> Stored:
    """The usable rows of every file in ``paths`` (the days of a run, say)."""
    if puid_template is not None and "{post_id}" not in puid_template:
        raise InputError(f"--puid must contain {{post_id}} (got {puid_template!r})")
    records: list[dict[str, Any]] = []
    bad: list[str] = []
    sources: list[dict[str, Any]] = []
    skipped = 0
    for path in paths:
        rows = 0
        for row in iter_rows(path):
            rows += 1
            parsed = statement_from(row.label, row.record) if row.record is not None else None
            if not isinstance(parsed, Statement) or row.record is None:
                bad.append(f"{row.label}: {parsed if isinstance(parsed, str) else row.error}")
            elif keep is not None and not keep(normalise(row.record)):
                skipped += 1
            else:
                records.append({**row.record, "_label": row.label})
        sources.append({"name": str(path), "sha256": _digest(path), "rows": rows})
    total = sum(int(source["rows"]) for source in sources)
    return Stored(sources, total, bad, records, puid_template, platform, window_s, skipped)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def run_filter(
    rows: Sequence[ProbeRow],
    observations: dict[str, list[ObservationRow]],
    puid_template: str | None,
    platform: str | None,
) -> Callable[[dict[str, Any]], bool]:
    """Which statements can be about the run: its probes' puids where they are known, else
    those applied on a day the run watched (and, with ``platform``, of that platform)."""
    puids = {
        puid_template.replace("{post_id}", r.post_id)
        for r in rows
        if puid_template and r.post_id is not None
    }
    times = [t for r in rows if (t := r.submitted_at) is not None]
    times += [o.ended_at for history in observations.values() for o in history]
    first = day_of(min(times)).isoformat() if times else ""
    last = day_of(max(times)).isoformat() if times else ""

    def keep(record: dict[str, Any]) -> bool:
        if platform is not None and record.get("platform_name") not in (None, platform):
            return False
        if puid_template is not None:
            return record.get("puid") in puids
        return first <= str(record.get("application_date", "")) <= last

    return keep


def stored_path(workspace: Path, run_id: str) -> Path:
    return workspace / "statements" / f"{run_id}.json"


def save_stored(workspace: Path, run_id: str, stored: Stored) -> Path:
    path = stored_path(workspace, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT, **stored.__dict__}
    path.write_text(json.dumps(body, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    return path


def load_stored(workspace: Path, run_id: str) -> Stored | None:
    path = stored_path(workspace, run_id)
    if not path.exists():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.pop("format") != FORMAT:
            raise ValueError("format")
        return Stored(**body)
    except (ValueError, TypeError, KeyError):
        raise InputError(
            f"{path} is not a statements file this version wrote: load the statements again "
            "with `platform-audit statements RUN_ID FILE`"
        ) from None


LIMITS = (  # what the cross-check cannot show, said under its tables
    N_(
        "Statement dates are days (UTC): they cannot show whether a removal met a deadline "
        "shorter than days; only the audit's own times can."
    ),
    N_(
        "A check whose premise the audit's looks do not show (a filing between the last look "
        "up and the first look down, a removal slower than the automation window) is not "
        "counted as checked."
    ),
    N_(
        "Missing statements are counted only for removals the audit saw; a removal after its "
        "last look is not known to it."
    ),
)
BY_ATTRIBUTES = N_(
    "Matched by attributes (no puid mapping): only removed probes can be matched, and the "
    "fields used to match (content type, category, language, source type) agree more often "
    "than a puid match would show."
)


def _limits(stored: Stored) -> list[str]:
    return [*LIMITS, *([BY_ATTRIBUTES] if stored.puid_template is None else [])]


def cross_check(
    run: RunRow,
    rows: Sequence[ProbeRow],
    observations: dict[str, list[ObservationRow]],
    stored: Stored,
) -> StatementsSection:
    """The run's statements section: matches, findings and rates."""
    probes = observed_probes(run, rows, observations)
    template = stored.puid_template
    puid_of = (lambda post_id: template.replace("{post_id}", post_id)) if template else None
    matching = match_statements(probes, stored.statements(), puid_of, stored.platform)
    window, scale = stored.automation_window_s, run.time_scale
    checks = [
        check_probe(
            p, matching.matched.get(p.probe_id), p.probe_id in matching.ambiguous, window, scale
        )
        for p in probes
    ]
    pack = Pack.model_validate(run.pack)
    levels = {c.id: c.confidence for c in pack.criteria}
    level = min(levels.values(), default=0.95)
    return StatementsSection(
        sources=[
            StatementSource(
                name=Path(str(f["name"])).name, sha256=str(f["sha256"]), rows=int(f["rows"])
            )
            for f in stored.sources
        ],
        rows=stored.rows,
        not_about_the_run=stored.skipped,
        bad_rows=len(stored.bad_rows),
        matching="puid" if template else "attributes",
        puid_template=template,
        platform=stored.platform,
        automation_window_s=window,
        statements_used=len(stored.records),
        matched=len(matching.matched),
        unmatched_statements=matching.unmatched_statements,
        other_platform=matching.other_platform,
        ambiguous=[Ambiguous(probe_id=p, statements=s) for p, s in matching.ambiguous.items()],
        overall=kind_rates(checks, level),
        criteria=criterion_rates(checks, matching, levels),
        findings=[f for c in checks for f in c.findings],
        limits=_limits(stored),
    )
