"""The reference sandbox's statements of reasons: one per removal made before the author
withdrew the post, honest by default, misreported as configured, listed in the ground truth,
served as API JSON and as a daily dump (full and light) that the loader reads back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from audit.clock import VirtualClock
from audit.sandbox.app import create_app
from audit.sandbox.moderation import ModerationRule, SandboxConfig
from audit.sandbox.statements import StatementSettings
from audit.statements.rules import check_statement
from audit.statements.statement import load_statements

RULES = [
    ModerationRule(
        id="fast",
        patterns=["lucky numbers"],
        proactive=1.0,
        latency={"median": "PT1H", "spread": 0.0},
    ),
    ModerationRule(
        id="reported",
        patterns=["easy tasks"],
        notice=1.0,
        notice_latency={"median": "PT2H", "spread": 0.0},
    ),
]


def _config(**misreporting: float) -> SandboxConfig:
    settings = StatementSettings(categories={"fast": "SCAMS_AND_FRAUD"}, **misreporting)
    return SandboxConfig(seed=3, rules=RULES, false_positive_notice=0.0, statements=settings)


async def _exchange(config: SandboxConfig, tmp_path: Path) -> dict[str, Any]:
    clock = VirtualClock()
    app = create_app(config, clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test"
    ) as client:

        async def post(text: str, key: str) -> str:
            answer = await client.post(
                "/api/v1/posts", json={"text": text}, headers={"Idempotency-Key": key}
            )
            return str(answer.json()["id"])

        fast = await post("lucky numbers, dm me", "k1")
        reported = await post("easy tasks, high pay", "k2")
        withdrawn = await post("lucky numbers again", "k3")
        await client.post(f"/api/v1/posts/{reported}/reports", json={"kind": "notice"})
        await client.delete(f"/api/v1/posts/{withdrawn}")
        clock.advance(3 * 3600)
        full = await client.get("/api/v1/statements/dump")
        light = await client.get("/api/v1/statements/dump", params={"variant": "light"})
        (tmp_path / "sor-reference-sandbox-full.zip").write_bytes(full.content)
        (tmp_path / "sor-reference-sandbox-light.zip").write_bytes(light.content)
        return {
            "ids": (fast, reported, withdrawn),
            "statements": (await client.get("/api/v1/statements")).json()["statements"],
            "truth": (await client.get("/_sandbox/truth")).json()["statements"],
            "disposition": full.headers["content-disposition"],
        }


def test_honest_statements_follow_the_ground_truth(tmp_path: Path) -> None:
    seen = asyncio.run(_exchange(_config(), tmp_path))
    fast, reported, _ = seen["ids"]
    by_puid = {s["puid"]: s for s in seen["statements"]}
    assert set(by_puid) == {fast, reported}  # the withdrawn post was never removed
    proactive, noticed = by_puid[fast], by_puid[reported]
    assert proactive["source_type"] == "SOURCE_VOLUNTARY"
    assert proactive["automated_detection"] == "Yes"
    assert proactive["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert proactive["category"] == "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"
    assert noticed["source_type"] == "SOURCE_ARTICLE_16"
    assert noticed["automated_detection"] == "No"
    assert noticed["category"] == "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"  # the default
    assert proactive["content_type"] == ["CONTENT_TYPE_TEXT"]
    assert proactive["content_date"] == proactive["application_date"] == "2026-01-01"
    for statement in seen["statements"]:
        body = {k: v for k, v in statement.items() if k not in ("uuid", "created_at")}
        assert check_statement(body) == []  # what the sandbox issues would be accepted
    assert all(t["misreported"] == [] for t in seen["truth"])


def test_the_dumps_load_back_in_both_variants(tmp_path: Path) -> None:
    seen = asyncio.run(_exchange(_config(), tmp_path))
    assert 'filename="sor-reference-sandbox-2026-01-01-full.zip"' in seen["disposition"]
    for variant in ("full", "light"):
        loaded = load_statements(tmp_path / f"sor-reference-sandbox-{variant}.zip")
        assert loaded.errors == []
        assert {s.puid for s in loaded.statements} == {s["puid"] for s in seen["statements"]}
        assert {s.platform_name for s in loaded.statements} == {"reference-sandbox"}


def test_misreporting_is_applied_and_listed_in_the_truth(tmp_path: Path) -> None:
    seen = asyncio.run(
        _exchange(_config(wrong_automation=1.0, wrong_source=1.0, wrong_category=1.0), tmp_path)
    )
    fast, reported, _ = seen["ids"]
    by_puid = {s["puid"]: s for s in seen["statements"]}
    assert by_puid[fast]["automated_detection"] == "No"
    assert by_puid[fast]["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert by_puid[fast]["source_type"] == "SOURCE_ARTICLE_16"
    assert by_puid[fast]["category"] == "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH"
    assert by_puid[reported]["automated_detection"] == "Yes"
    assert by_puid[reported]["source_type"] == "SOURCE_VOLUNTARY"
    truth = {t["puid"]: t for t in seen["truth"]}
    assert truth[fast]["misreported"] == ["wrong_automation", "wrong_source", "wrong_category"]
    assert truth[fast]["honest"]["source_type"] == "SOURCE_VOLUNTARY"


def test_missing_statements_are_not_issued_but_are_in_the_truth(tmp_path: Path) -> None:
    seen = asyncio.run(_exchange(_config(missing=1.0), tmp_path))
    assert seen["statements"] == []
    assert [t["misreported"] for t in seen["truth"]] == [["missing"], ["missing"]]


def test_how_decisions_are_reported_is_not_part_of_the_state_files_time_base(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.sqlite"
    clock = VirtualClock()
    create_app(_config(), clock, state).state.platform.state.close()
    reopened = create_app(_config(missing=0.5), clock, state)  # not refused
    assert reopened.state.platform.config.statements.missing == 0.5


def test_an_unknown_category_in_the_configuration_is_refused() -> None:
    with pytest.raises(ValidationError, match="statement-of-reasons category"):
        StatementSettings(categories={"fast": "SCAMZ"})
