"""The plan's JSON Schema is generated from the model and up to date; it accepts every example
plan (and the plans in the docs) and refuses what the model refuses; docs/plans.md names every
field the model has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel, ValidationError

from audit.cli import cli
from audit.plan import Plan, PlanFile, plan_json_schema
from audit.report.escape import json_text

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "plan.schema.json"
REFERENCE = ROOT / "docs" / "plans.md"
EXAMPLES = sorted((ROOT / "examples").rglob("plan*.yaml"))


def _doc_plans() -> list[tuple[str, dict[str, Any]]]:
    """Every YAML block in the docs that is a plan file."""
    found = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        blocks = re.findall(r"```yaml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
        for number, block in enumerate(blocks):
            if not re.search(r"^plan:", block, re.M):
                continue  # not a plan (packs, profiles, fragments)
            data = yaml.safe_load(block)
            if isinstance(data, dict) and "plan" in data:
                found.append((f"{doc.name}#{number}", data))
    return found


def test_schema_file_is_up_to_date() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == json_text(plan_json_schema()), (
        "regenerate with: platform-audit schema plan > schemas/plan.schema.json"
    )


def test_schema_command_prints_it() -> None:
    result = CliRunner().invoke(cli, ["schema", "plan"])
    assert result.exit_code == 0
    assert result.output == SCHEMA.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_schema_accepts_every_example_plan(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, plan_json_schema())
    PlanFile.model_validate(data)


def test_the_docs_hold_plans_and_the_schema_accepts_them() -> None:
    plans = _doc_plans()
    assert {name.split("#")[0] for name, _ in plans} >= {"plans.md", "audit-your-sandbox.md"}
    for _, data in plans:
        jsonschema.validate(data, plan_json_schema())
        PlanFile.model_validate(data)


@pytest.mark.parametrize(
    "change",
    [
        {"colour": "red"},
        {"time_scale": 0},
        {"sample": {"violating_per_criterion": 0}},
        {"polling": {"jitter": "sometimes"}},
        {"targets": [{"name": "x", "base_url": "ftp://x"}]},
    ],
    ids=["unknown field", "time_scale 0", "no probes", "jitter", "base_url"],
)
def test_schema_refuses_what_the_model_refuses(change: dict[str, Any]) -> None:
    plan = {"name": "p", "packs": ["vn-superstition"], "targets": [], **change}
    plan["targets"] = plan["targets"] or [{"name": "t", "base_url": "http://127.0.0.1:1"}]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"plan": plan}, plan_json_schema())
    with pytest.raises(ValidationError):
        PlanFile.model_validate({"plan": plan})


def _fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted names of every field, nested models included."""
    names = []
    for name, info in model.model_fields.items():
        names.append(prefix + name)
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names += _fields(kind, f"{prefix}{name}.")
    return names


def test_every_field_has_a_description_and_is_in_the_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    schema = plan_json_schema()["$defs"]
    for model in ("Plan", "Target", "Sample", "Schedule", "PollingPolicy", "SecretRef"):
        for name, spec in schema[model]["properties"].items():
            assert spec.get("description"), f"{model}.{name} has no description"
    missing = [name for name in _fields(Plan) if f"`{name.rsplit('.', 1)[-1]}`" not in text]
    target_fields = [f"`{name}`" for name in schema["Target"]["properties"]]
    missing += [name for name in target_fields if name not in text]
    assert not missing, f"docs/plans.md does not document {missing}"
