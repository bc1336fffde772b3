"""The command line: help everywhere, one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from audit.cli import cli, main

PACK = Path(__file__).resolve().parents[1] / "probes" / "vn-superstition" / "pack.yaml"


def walk(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    names: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        names.append((*prefix, name))
        if isinstance(command, click.Group):
            names.extend(walk(command, (*prefix, name)))
    return names


@pytest.mark.parametrize("path", walk(cli))
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help, f"{' '.join(path)} has no help text"


@pytest.mark.parametrize("path", walk(cli))
def test_the_readme_lists_every_command(path: tuple[str, ...]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"platform-audit {' '.join(path)}" in readme, f"README lists no `{' '.join(path)}`"


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    return int(exit_info.value.code or 0), err


def write_plan(tmp_path: Path, pack: str, extra: str = "") -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "plan:\n"
        "  name: t\n"
        f"  packs: [{pack}]\n"
        "  targets:\n"
        "    - {name: sb, base_url: 'http://127.0.0.1:9', " + extra + "}\n",
        encoding="utf-8",
    )
    return plan


def test_broken_deadline_in_pack_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "pack.yaml"
    broken.write_text(
        PACK.read_text(encoding="utf-8").replace("deadline: PT24H", "deadline: -PT5M", 1),
        encoding="utf-8",
    )
    plan = write_plan(tmp_path, str(broken))
    code, err = run_main(["--workspace", str(tmp_path / "ws"), "run", "--plan", str(plan)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "'deadline'" in lines[0] and "ISO 8601" in lines[0] and "-PT5M" in lines[0]
    assert str(broken) in lines[0] and "criterion VN-SUP-01" in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("plan: [1, 2]", "'plan' "),
        ("plan:\n  name: x\n", "'plan.packs' is required"),
        (
            "plan: {name: x, packs: [vn-superstition], targets: [{name: a, base_url: 'http://h'}],"
            " colour: red}",
            "'plan.colour' is not a known field",
        ),
        (": : :", "not valid YAML"),
    ],
)
def test_bad_plan_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(content, encoding="utf-8")
    code, err = run_main(["--workspace", str(tmp_path / "ws"), "run", "--plan", str(plan)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err and str(plan) in err


def test_production_target_is_refused_without_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path, "vn-superstition", "environment: production")
    code, err = run_main(["--workspace", str(tmp_path / "ws"), "run", "--plan", str(plan)], capsys)
    assert code == 2
    assert "production" in err and "--allow-production" in err


def test_missing_token_is_refused_before_anything_is_posted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    plan = write_plan(tmp_path, "vn-superstition", "token_env: NO_SUCH_TOKEN_VAR")
    code, err = run_main(["--workspace", str(tmp_path / "ws"), "run", "--plan", str(plan)], capsys)
    assert code == 2 and "NO_SUCH_TOKEN_VAR" in err


def test_unknown_run_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(["--workspace", str(tmp_path / "ws"), "report", "nope"], capsys)
    assert code == 2 and "no run 'nope'" in err


def test_python_dash_m_audit_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "audit", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "platform-audit" in result.stdout
