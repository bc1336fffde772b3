"""`report --from-evidence` rebuilds the same scorecard from an exported bundle alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from audit.cli import main
from tests.conftest import run_virtual_audit, virtual_plan

pytestmark = pytest.mark.both_stores


def cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return 0


def test_scorecard_rebuilt_from_bundle_matches_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    audit = run_virtual_audit(workspace, virtual_plan(violating=8, controls=2))
    audit.store.close()
    bundle = tmp_path / "bundle.tar.gz"
    assert cli(["--workspace", str(workspace), "export", audit.run_id, "--out", str(bundle)]) == 0
    direct = tmp_path / "direct"
    code = cli(
        [
            "--workspace",
            str(workspace),
            "--reports",
            str(direct),
            "report",
            audit.run_id,
            "--format",
            "json",
            "--quiet",
        ]
    )
    # the bundle alone, on "another machine": no workspace at all
    shutil.rmtree(workspace)
    rebuilt = tmp_path / "rebuilt"
    code_again = cli(
        [
            "--workspace",
            str(tmp_path / "empty"),
            "--reports",
            str(rebuilt),
            "report",
            "--from-evidence",
            str(bundle),
            "--format",
            "json",
            "--quiet",
        ]
    )
    assert code == code_again
    a = json.loads((direct / audit.run_id / "scorecard.json").read_text(encoding="utf-8"))
    b = json.loads((rebuilt / audit.run_id / "scorecard.json").read_text(encoding="utf-8"))
    assert a["criteria"] == b["criteria"]
    assert a["probes"] == b["probes"]
    assert a["ledger_head"] == b["ledger_head"]


def test_report_needs_a_run_or_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--workspace", str(tmp_path), "report"]) == 2
    assert "RUN_ID" in capsys.readouterr().err
