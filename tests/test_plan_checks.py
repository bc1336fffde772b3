"""Plan-time warnings: a sample that can never reach COMPLIANT is said before anything is posted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from audit.cli import main
from audit.packs import load_pack, resolve_pack
from audit.plan_checks import criterion_warning, sample_warnings
from tests.scorecards import gold_plan


@pytest.mark.parametrize(
    ("planned", "expected"),
    [(20, "can never give COMPLIANT"), (59, "only if every one is measured"), (300, None)],
)
def test_criterion_warning_by_sample_size(planned: int, expected: str | None) -> None:
    pack = load_pack(resolve_pack("vn-superstition", None))
    warning = criterion_warning(pack.criteria[0], planned, 0.9)
    if expected is None:
        assert warning is None
    else:
        assert warning is not None
        assert expected in warning


def test_sample_warnings_name_each_criterion() -> None:
    pack = load_pack(resolve_pack("vn-superstition", None))
    lines = sample_warnings(gold_plan(violating=20), [pack])
    assert [line.split(",")[1].split(":")[0].strip() for line in lines] == [
        f"criterion {c.id}" for c in pack.criteria
    ]


def test_plan_size_checks_a_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = {
        "plan": {
            "name": "small",
            "packs": ["vn-superstition"],
            "targets": [{"name": "t", "base_url": "http://127.0.0.1:9"}],
            "sample": {"violating_per_criterion": 20, "controls_per_criterion": 2},
        }
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    code = 0
    try:
        main(["plan-size", "--plan", str(path)])
    except SystemExit as exited:
        code = int(exited.code or 0)
    assert code == 0
    out = capsys.readouterr()
    assert "VN-SUP-01: 20 violating probes" in out.out
    assert "cannot reach COMPLIANT" in out.out
    assert "warning: pack vn-superstition, criterion VN-SUP-01" in out.err
