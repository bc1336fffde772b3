"""The import contracts of the package hold (scripts/check_layers.py, also run by `make lint`),
and the checker finds a broken one, at module level or inside a function."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_layers", ROOT / "scripts" / "check_layers.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_layers"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_package_keeps_its_import_contracts() -> None:
    assert _checker().broken() == []


def test_a_broken_contract_is_found(tmp_path: Path) -> None:
    checker = _checker()
    package = tmp_path / "audit"
    shutil.copytree(ROOT / "audit", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "adapters" / "leaky.py").write_text(
        "def f():\n"
        "    from audit.evidence.ledger import EvidenceLedger\n"
        "    return EvidenceLedger\n"
    )
    (package / "engine_helper.py").write_text("from audit import cli\n")
    with (package / "report" / "charts.py").open("a", encoding="utf-8") as charts:
        charts.write("from audit.report.page import page_context\n")
    found = checker.broken(package)
    assert any(line.startswith("audit.report.charts -> audit.report.page") for line in found)
    assert any(line.startswith("audit.adapters.leaky -> audit.evidence.ledger") for line in found)
    assert any(line.startswith("audit.engine_helper -> audit.cli") for line in found)
