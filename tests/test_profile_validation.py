"""Broken profiles and targets give one line naming the file, the field, what was expected and
what was found; through the CLI that line comes with exit code 2 and no traceback. Also: every
shipped profile loads, and the exported JSON Schema is up to date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from audit.adapters.profile_load import (
    BUILTIN_PROFILES_DIR,
    builtin_profiles,
    check_target,
    load_profile,
    profile_json_schema,
)
from audit.cli import main
from audit.errors import InputError
from audit.plan import SecretRef, Target

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "target-profile.schema.json"
SANDBOX = (BUILTIN_PROFILES_DIR / "sandbox.yaml").read_text(encoding="utf-8")


def test_builtin_profiles_are_the_documented_three() -> None:
    assert builtin_profiles() == ["mastodon", "matrix", "sandbox"]


@pytest.mark.parametrize(
    "path",
    sorted(BUILTIN_PROFILES_DIR.glob("*.yaml")) + sorted((ROOT / "examples/profiles").glob("*")),
    ids=lambda p: p.name,
)
def test_shipped_profiles_load(path: Path) -> None:
    assert load_profile(path).title


def test_json_schema_is_up_to_date() -> None:
    expected = json.dumps(profile_json_schema(), indent=2, ensure_ascii=False) + "\n"
    assert SCHEMA.read_text(encoding="utf-8") == expected, (
        "regenerate with: python -m audit.adapters.profile_load schemas/target-profile.schema.json"
    )


def test_json_schema_accepts_the_yaml_names() -> None:
    schema = profile_json_schema()
    request = schema["$defs"]["RequestSpec"]["properties"]
    assert "json" in request and "body" not in request
    assert schema["additionalProperties"] is False


BROKEN = [
    # (replace this, with that, expected fragments of the message)
    ("idempotent: true", "idempotent: true\ncolour: red", ["'colour' is not a known field"]),
    ("path: /api/v1/posts\n", "path: api/v1/posts\n", ["'submit.request.path'", "'api/v1/posts'"]),
    ("{post.id}/reports", "{post.room}/reports", ["'notice.request.path'", "{post.room}", "id"]),
    ('"{probe.text}"', '"{vars.text}"', ["'submit.request.json'", "{vars.text}", "not declared"]),
    (
        '"{idempotency_key}"',
        '"{post_id}"',
        ["'submit.request.headers.Idempotency-Key'", "{post_id}"],
    ),
    ('"{probe.text}"', '"{probe text}"', ["'submit.request.json'", "malformed placeholder"]),
    ("capture: {id: id}", "capture: {id: 'id[['}", ["'submit.capture.id'", "JMESPath", "id[["]),
    ("{equals: visible}", "{equals: visible, exists: true}", ["exactly one of", "equals, exists"]),
    ("{equals: visible}", "{matches: '(unclosed'}", ["not a valid regular expression"]),
    ("status: 410,", "status: 99,", ["'status.outcomes.1.when.status'", "99"]),
    ("kind: bearer", "kind: kerberos", ["'auth'", "kerberos"]),
    (
        "method: DELETE",
        "method: DELETE\n    auth: notifier",
        ["'withdraw.request.auth'", "notifier_auth"],
    ),
    ("schema_version: 1", "schema_version: 2", ["'schema_version'", "2"]),
    ("result: withdrawn", "result: deleted", ["'withdraw.outcomes.0.result'", "deleted"]),
]


@pytest.mark.parametrize(("old", "new", "fragments"), BROKEN, ids=[b[1][:30] for b in BROKEN])
def test_broken_profile_is_one_clear_line(
    tmp_path: Path, old: str, new: str, fragments: list[str]
) -> None:
    assert old in SANDBOX
    path = tmp_path / "broken.yaml"
    path.write_text(SANDBOX.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("submit: [", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_profile(path)
    path.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(InputError, match="mapping"):
        load_profile(path)


def target(**fields: object) -> Target:
    return Target.model_validate({"name": "t", "base_url": "http://127.0.0.1:9", **fields})


def test_a_profile_makes_the_adapter_profile() -> None:
    assert target(profile="matrix").adapter == "profile"
    assert target().adapter == "sandbox"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"adapter": "profile"}, "needs 'profile'"),
        ({"adapter": "sandbox", "profile": "matrix"}, "need adapter: profile"),
        ({"variables": {"room_id": "!r:x"}}, "need adapter: profile"),
        ({"profile": "matrix", "secrets": {"token": {"env": "A", "file": "b"}}}, "exactly one"),
        (
            {"profile": "matrix", "token_env": "A", "secrets": {"token": {"env": "B"}}},
            "either as secrets.token",
        ),
    ],
)
def test_bad_target_fields(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        target(**fields)


def test_target_must_fit_its_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_TOKEN", "tok-123456")
    with pytest.raises(InputError, match=r"'variables.room' is not a variable.*room_id"):
        check_target(target(profile="matrix", token_env="T_TOKEN", variables={"room": "x"}))
    with pytest.raises(InputError, match=r"'secrets.token' is required but missing"):
        check_target(target(profile="matrix"))
    with pytest.raises(InputError, match=r"'secrets.other' is not a secret"):
        check_target(
            target(profile="matrix", token_env="T_TOKEN", secrets={"other": SecretRef(env="X")})
        )
    with pytest.raises(InputError, match="T_MISSING, which is not set"):
        target(profile="matrix", secrets={"token": SecretRef(env="T_MISSING")}).token()


def test_production_profile_needs_a_production_target(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(SANDBOX.replace("idempotent: true", "environment: production"), "utf-8")
    with pytest.raises(InputError, match="'environment' must be 'production'"):
        check_target(target(profile=str(path)))
    assert check_target(target(profile=str(path), environment="production")).name == "sandbox"


# --- through the command line ---------------------------------------------------------------


def run_cli(tmp_path: Path, target_yaml: str, capsys: pytest.CaptureFixture[str]) -> str:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "plan:\n  name: t\n  packs: [vn-superstition]\n  targets:\n"
        f"    - {{name: tg, base_url: 'http://127.0.0.1:9', {target_yaml}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["--workspace", str(tmp_path / "ws"), "run", "--plan", str(plan)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_cli_broken_profile_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "profiles" / "broken.yaml"
    broken.parent.mkdir()
    broken.write_text(SANDBOX.replace("{post.id}/reports", "{post.room}/reports"), "utf-8")
    err = run_cli(tmp_path, "profile: profiles/broken.yaml", capsys)  # relative to the plan
    assert str(broken) in err and "'notice.request.path'" in err and "{post.room}" in err


def test_cli_unknown_builtin_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run_cli(tmp_path, "profile: matrx", capsys)
    assert "'profile' must name a built-in profile" in err and "matrix" in err
    assert str(tmp_path / "plan.yaml") in err and "target tg" in err


def test_cli_missing_secret_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = ROOT / "examples" / "profiles" / "acme-oauth.yaml"
    err = run_cli(tmp_path, f"profile: '{example}', secrets: {{client_id: {{env: X}}}}", capsys)
    assert "'secrets.client_secret' is required but missing" in err and "target tg" in err


def test_cli_profile_with_bad_yaml_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "bad.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    err = run_cli(tmp_path, "profile: bad.yaml", capsys)
    assert "profile is not valid YAML" in err and str(broken) in err


def test_example_plan_loads() -> None:
    from audit.plan import load_plan

    plan = load_plan(ROOT / "examples" / "plan-matrix.yaml")
    (matrix,) = plan.targets
    assert matrix.adapter == "profile" and matrix.profile == "matrix"
    assert yaml.safe_load((ROOT / "examples" / "plan-matrix.yaml").read_text("utf-8"))
