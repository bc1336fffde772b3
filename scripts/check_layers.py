"""The import contracts of the ``audit`` package: which parts may import which.

Run by ``make lint`` (and by tests/test_layers.py). Every import is read from the source with
``ast`` — module level and inside functions (the command line imports lazily) — and checked
against the contracts below; each broken one is printed as ``importer -> imported: why``, and
the exit code is 1 when any is found.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "audit"

_COMMAND_LINE = ("audit.cli", "audit.commands", "audit.__main__")
_CROSS_CHECK = tuple(
    f"audit.statements.{m}"
    for m in ("rules", "load", "statement", "observed", "match", "check", "crosscheck", "model")
)
_REPORTING = ("audit.scorecard", "audit.report", "audit.evidence.bundle")
# the report package's modules that render: the templates, the formats and their registry
_RENDERING = tuple(
    f"audit.report.{m}"
    for m in (
        "templating",
        "renderer",
        "registry",
        "views",
        "html",
        "markdown",
        "json",
        "junit",
        "csv",
        "pdf",
        "chromium",
    )
)


@dataclass(frozen=True)
class Forbidden:
    """Modules under ``importers`` must not import modules under ``imported``."""

    why: str
    importers: tuple[str, ...]
    imported: tuple[str, ...]
    exempt: tuple[str, ...] = ()


CONTRACTS = (
    Forbidden(
        "adapters talk to platforms: they get an evidence sink, never the evidence, the store, "
        "the engine, the reports or the command line",
        ("audit.adapters",),
        (
            "audit.evidence",
            "audit.store",
            "audit.engine",
            "audit.runner",
            "audit.workspace",
            *_REPORTING,
            *_COMMAND_LINE,
        ),
    ),
    Forbidden(
        "library code never imports the command line",
        ("audit",),
        _COMMAND_LINE,
        exempt=_COMMAND_LINE,
    ),
    Forbidden(
        "the engine and the rules it applies do not depend on reporting or on how a run is driven",
        ("audit.engine", "audit.outcomes", "audit.polling", "audit.reachability"),
        (*_REPORTING, "audit.runner", "audit.workspace", *_COMMAND_LINE),
    ),
    Forbidden(
        "the ledger and the keys are the evidence's bottom layer",
        ("audit.evidence.ledger", "audit.evidence.keys"),
        (
            "audit.evidence.manifest",
            "audit.evidence.archive",
            "audit.evidence.rederive",
            "audit.evidence.bundle",
            "audit.adapters",
            "audit.engine",
            "audit.runner",
            *_REPORTING,
            *_COMMAND_LINE,
        ),
    ),
    Forbidden(
        "the statements schema is data at the bottom: the sandbox emits statements with it",
        ("audit.statements.schema",),
        ("audit",),
    ),
    Forbidden(
        "the sandbox emits statements with their schema and dump layout only, never the "
        "cross-check that judges them (nor does the dump layout)",
        ("audit.sandbox", "audit.statements.dump"),
        _CROSS_CHECK,
    ),
    Forbidden(
        "the statements cross-check sits beside the statistics: below the reports and the "
        "command line, never driving a run",
        ("audit.statements",),
        (*_REPORTING, "audit.runner", "audit.workspace", "audit.adapters", *_COMMAND_LINE),
    ),
    Forbidden(
        "chart geometry is drawn from the figures it is given: it knows nothing of the page, "
        "the templates or the formats",
        ("audit.report.charts",),
        ("audit.report",),
    ),
    Forbidden(
        "the page view model is what a page shows, for any format: it never renders",
        ("audit.report.page",),
        _RENDERING,
    ),
    Forbidden(
        "escaping and the model's words are the report's bottom: every format and the "
        "scorecard's sentences use them, and they use nothing of the report",
        ("audit.report.escape", "audit.report.words"),
        ("audit.report", "audit.scorecard"),
    ),
    Forbidden(
        "manifest, archive and re-derivation sit below the bundle",
        ("audit.evidence.manifest", "audit.evidence.archive", "audit.evidence.rederive"),
        ("audit.evidence.bundle", *_COMMAND_LINE),
    ),
)


def _module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # ``from audit import bundle`` imports the module audit.bundle
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def broken(package: Path = PACKAGE) -> list[str]:
    """Every import that breaks a contract, as ``importer -> imported: why``."""
    found: list[str] = []
    for path in sorted(package.rglob("*.py")):
        importer = _module(path, package.parent)
        for imported in sorted(set(_imports(path))):
            if not imported.startswith("audit"):
                continue
            for c in CONTRACTS:
                if (
                    _under(importer, c.importers)
                    and not _under(importer, c.exempt)
                    and _under(imported, c.imported)
                    and not _under(imported, (importer,))
                ):
                    found.append(f"{importer} -> {imported}: {c.why}")
    return found


def main() -> int:
    problems = broken()
    for line in problems:
        print(line)
    print(f"import contracts: {len(CONTRACTS)} kept" if not problems else "contracts broken")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
