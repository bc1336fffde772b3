"""``statements check`` through the command line against the reference sandbox served on loopback
by ``platform-audit sandbox serve`` (a real process, configured to misreport its statements of
reasons): every misreport on a removal the audit saw is found, and no correctly reported probe
has a finding.

The sandbox's moderation is set so that each sequence the checks rely on is observed: the
proactive criterion's rule removes within two minutes (platform time) of receipt; the notice
and order criteria's rules never act proactively and remove eight hours after the filing, long
after the first look. The automation window is wide (20 h of platform time) so that a look a
busy machine delays still falls within it. Time is compressed 14400x (a 24 h deadline lasts
6 s)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from audit.cli import main
from audit.plan import Plan, Sample, Schedule, Target
from audit.polling import PollingPolicy
from audit.sandbox.moderation import SandboxConfig, default_config_path, load_sandbox_config
from audit.sandbox.statements import StatementSettings
from tests.durable_support import ServedSandbox, served_sandbox, write_plan

SCALE = 14400.0
MISREPORT_KIND = {
    "missing": "missing_statement",
    "wrong_automation": "automation",
    "wrong_source": "source_type",
    "wrong_category": "category",
}


def _config() -> SandboxConfig:
    base = load_sandbox_config(default_config_path(), time_scale=SCALE, seed=11)
    rules = []
    for rule in base.rules:
        if rule.id == "lottery-numbers":
            update: dict[str, Any] = {
                "proactive": 1.0,
                "latency": {"median": "PT2M", "spread": 0.0},
                "modality_factor": {"text": 1.0, "image": 1.0, "speech": 1.0},
            }
        else:
            update = {
                "proactive": 0.0,
                "notice": 1.0,
                "order": 1.0,
                "notice_latency": {"median": "PT8H", "spread": 0.0},
            }
        rules.append(rule.model_validate({**rule.model_dump(), **update}))
    misreporting = StatementSettings.model_validate(
        {
            **base.statements.model_dump(),
            "missing": 0.2,
            "wrong_automation": 0.2,
            "wrong_source": 0.2,
            "wrong_category": 0.2,
        }
    )
    return base.model_copy(
        update={
            "rules": rules,
            "false_positive_notice": 0.0,
            "statements": misreporting,
        }
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedSandbox]:
    """``platform-audit sandbox serve --config`` with the misreporting, as a real process."""
    config = tmp_path_factory.mktemp("sandbox") / "moderation.yaml"
    settings = _config()
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")), encoding="utf-8")
    with served_sandbox(settings.seed, settings.time_scale, config) as running:
        yield running


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _plan(tmp_path: Path, server: ServedSandbox) -> Path:
    plan = Plan(
        name="statements",
        packs=["scam-ads"],
        targets=[Target(name="sandbox", base_url=server.base_url, rate_limit=None, concurrency=64)],
        seed=5,
        sample=Sample(violating_per_criterion=14, controls_per_criterion=2),
        schedule=Schedule(submission_window="PT1H"),
        polling=PollingPolicy(first=0.002),
        time_scale=SCALE,
    )
    return write_plan(tmp_path / "plan.yaml", plan)


def _ws(tmp_path: Path, *args: str) -> list[str]:
    return ["--workspace", str(tmp_path / "ws"), "--reports", str(tmp_path / "reports"), *args]


@pytest.fixture(scope="module")
def audited(
    tmp_path_factory: pytest.TempPathFactory, server: ServedSandbox
) -> tuple[Path, str, Path]:
    tmp_path = tmp_path_factory.mktemp("statements")
    with contextlib.suppress(SystemExit):  # the run's verdict is not what is tested here
        main(_ws(tmp_path, "run", "--plan", str(_plan(tmp_path, server)), "--format", "json"))
    run_id = json.loads(next((tmp_path / "reports").glob("*/scorecard.json")).read_text())["run_id"]
    dump = tmp_path / "sor-reference-sandbox-full.zip"
    dump.write_bytes(httpx.get(f"{server.base_url}/api/v1/statements/dump").content)
    return tmp_path, run_id, dump


def test_every_misreport_is_found_and_nothing_else(
    audited: tuple[Path, str, Path], server: ServedSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, run_id, dump = audited
    args = _ws(tmp_path, "statements", "check", run_id, str(dump), "--automation-window", "PT20H")
    code, out, err = cli([*args, "--format", "json,md,html"], capsys)
    assert code == 1, out + err
    assert "bad row" not in err
    card = json.loads((tmp_path / "reports" / run_id / "scorecard.json").read_text())
    section = card["statements"]
    assert section["matching"] == "puid"
    assert section["ambiguous"] == []
    probes = {p["post_id"]: p for p in card["probes"] if p["post_id"]}
    found: dict[str, set[str]] = {}
    assert {f["match"] for f in section["findings"] if f["statement"]} == {"puid"}
    for f in section["findings"]:
        found.setdefault(f["post_id"], set()).add(f["kind"])
    expected: dict[str, set[str]] = {}
    seen_kinds: set[str] = set()
    for entry in server.truth()["statements"]:
        probe = probes.get(entry["post_id"])
        if probe is None or probe["first_down_utc"] is None:
            continue  # a removal the audit did not see: not known to it
        wrong = set(entry["misreported"])
        if "missing" in wrong:
            wrong = {"missing"}
        if probe["expectation"] != "violating":
            wrong.discard("wrong_category")
        seen_kinds |= wrong
        if wrong:
            expected[entry["post_id"]] = {MISREPORT_KIND[w] for w in wrong}
    assert seen_kinds == set(MISREPORT_KIND), "the run must exercise every kind of misreport"
    assert found == expected
    assert "Statements of reasons" in (tmp_path / "reports" / run_id / "scorecard.md").read_text()
    assert 'id="statements"' in (tmp_path / "reports" / run_id / "scorecard.html").read_text()


def test_the_statements_section_stays_in_later_scorecards(
    audited: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, run_id, dump = audited
    cli(_ws(tmp_path, "statements", "check", run_id, str(dump)), capsys)
    cli(_ws(tmp_path, "report", run_id, "--format", "json", "--quiet"), capsys)
    card = json.loads((tmp_path / "reports" / run_id / "scorecard.json").read_text())
    assert [f["name"] for f in card["statements"]["sources"]] == [dump.name]
    assert card["schema_version"] == "2.1.0"
    assert {r["kind"] for r in card["statements"]["overall"]} >= {"missing_statement", "dates"}


def test_validate_against_the_run_reports_the_contradictions(
    audited: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, run_id, dump = audited
    code, out, _ = cli(_ws(tmp_path, "statements", "validate", str(dump), "--run", run_id), capsys)
    assert code == 1
    assert "missing_statement" in out
    # a dump writes dates as 'YYYY-MM-DD 00:00:00': not what the submission API takes
    assert "must be a date YYYY-MM-DD" in out


def test_check_an_unknown_run_is_an_input_error(
    audited: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, _, dump = audited
    code, _, err = cli(_ws(tmp_path, "statements", "check", "nope", str(dump)), capsys)
    assert code == 2
    assert "nope" in err


def test_diff_shows_each_statements_rate_of_both_runs(
    audited: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, run_id, dump = audited
    cli(_ws(tmp_path, "statements", "check", run_id, str(dump)), capsys)
    code, out, _ = cli(_ws(tmp_path, "diff", run_id, run_id), capsys)
    assert code == 0
    line = next(n for n in out.splitlines() if "removal seen, no statement of reasons" in n)
    assert line.startswith("note: statements, ")
    assert "within noise, p = 1" in line


def test_by_attributes_reports_ambiguity_and_never_guesses(
    audited: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, run_id, dump = audited
    args = _ws(tmp_path, "statements", "check", run_id, str(dump), "--by-attributes")
    _, out, _ = cli([*args, "--format", "json"], capsys)
    section = json.loads((tmp_path / "reports" / run_id / "scorecard.json").read_text())[
        "statements"
    ]
    assert section["matching"] == "attributes"
    ambiguous = {a["probe_id"] for a in section["ambiguous"]}
    assert ambiguous  # posts removed the same day with the same attributes cannot be told apart
    assert "ambiguous: probe" in out
    assert not ambiguous & {f["probe_id"] for f in section["findings"]}
    assert all(f["match"].startswith("attributes (") for f in section["findings"] if f["statement"])
    cli(_ws(tmp_path, "statements", "check", run_id, str(dump)), capsys)  # back to puid


def test_two_api_json_files_with_a_foreign_statement_give_the_dumps_findings(
    audited: tuple[Path, str, Path], server: ServedSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, run_id, dump = audited
    issued = httpx.get(f"{server.base_url}/api/v1/statements").json()["statements"]
    half = len(issued) // 2
    first, second = tmp_path / "day-1.json", tmp_path / "day-2.jsonl"
    foreign = {**issued[0], "puid": "elsewhere-1"}
    first.write_text(json.dumps({"statements": [*issued[:half], foreign]}), encoding="utf-8")
    second.write_text("\n".join(json.dumps(s) for s in issued[half:]), encoding="utf-8")
    cli(_ws(tmp_path, "statements", "check", run_id, str(dump), "--format", "json"), capsys)
    from_dump = json.loads((tmp_path / "reports" / run_id / "scorecard.json").read_text())
    args = ["statements", "check", run_id, str(first), str(second), "--format", "json"]
    code, out, _ = cli(_ws(tmp_path, *args), capsys)
    from_api = json.loads((tmp_path / "reports" / run_id / "scorecard.json").read_text())
    assert code == 1
    section = from_api["statements"]
    assert [f["name"] for f in section["sources"]] == ["day-1.json", "day-2.jsonl"]
    assert section["not_about_the_run"] == 1
    assert section["rows"] == len(issued) + 1
    assert "1 about other posts or days" in out
    kinds = sorted((f["post_id"], f["kind"]) for f in section["findings"])
    assert kinds == sorted((f["post_id"], f["kind"]) for f in from_dump["statements"]["findings"])
    cli(_ws(tmp_path, "statements", "check", run_id, str(dump)), capsys)  # back to the dump
