"""The methodology annex: it ties the scorecard to the plan frozen at run creation (the digest
the signed manifest carries), states criteria, thresholds, sampling and procedures, and lists
every deviation that happened — and none where there was none."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from audit.clock import VirtualClock
from audit.errors import TargetUnreachable
from audit.evidence.bundle import export_bundle
from audit.findings import Standing
from audit.outcomes import Outcome
from audit.report.html import render_html
from audit.report.markdown import render_markdown
from audit.runner import create_runs, execute_run
from audit.scorecard_annex import REGULATION, build_annex, plan_digest
from audit.workspace import scorecard_for
from tests.conftest import VirtualAudit, virtual_plan
from tests.store_backends import open_store

pytestmark = pytest.mark.both_stores


def test_the_annex_carries_the_frozen_plan_the_manifest_signs(
    virtual_audit: VirtualAudit, tmp_path: Path
) -> None:
    card = scorecard_for(virtual_audit.store, virtual_audit.run_id)
    annex = card.annex
    assert annex is not None
    run = virtual_audit.store.run(virtual_audit.run_id)
    assert annex.plan == run.plan and annex.plan_digest == plan_digest(run.plan)
    out = tmp_path / "bundle"
    export_bundle(virtual_audit.store, tmp_path / "ws", virtual_audit.run_id, out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["signed"]["digests"]["plan"] == annex.plan_digest
    assert [c.id for c in annex.criteria] == [c.id for c in card.criteria]
    first = annex.criteria[0]
    assert (first.threshold, first.confidence, first.deadline) == (0.95, 0.95, "PT24H")
    assert any("Seed 7" in line for line in annex.sampling)
    assert any(line.startswith("Polling: 16 looks per probe") for line in annex.procedures)
    assert annex.deviations == []  # a clean run on the virtual clock departs from nothing
    html, markdown = render_html(card), render_markdown(card)
    for text in (html, markdown):
        assert "Methodology annex" in text and annex.plan_digest in text
        assert "2024/436" in text and "None: every planned probe was sent" in text
    assert "2024/436" in REGULATION and "Article 10" in REGULATION


def _refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_probes_never_sent_after_an_outage_are_listed(tmp_path: Path) -> None:
    clock = VirtualClock()
    store = open_store(tmp_path / "audit.sqlite")
    plan = virtual_plan(violating=4, controls=1).model_copy(update={"time_scale": 60.0})
    (prepared,) = create_runs(store, plan, None, clock)
    with pytest.raises(TargetUnreachable):
        asyncio.run(
            execute_run(store, prepared.run_id, clock, transport=httpx.MockTransport(_refusing))
        )
    card = scorecard_for(store, prepared.run_id)
    assert card.annex is not None
    found = {d.kind: d for d in card.annex.deviations}
    assert found["probes not sent"].count == prepared.probes
    assert found["probes not sent"].detail == "never submitted"
    assert found["time scale"].detail.startswith("every deadline and window divided by 60")
    assert "run not complete" in found
    markdown = render_markdown(card)
    assert "| probes not sent | 15 | never submitted |" in markdown
    store.close()


def test_posts_after_the_window_and_a_compressed_clock_are_listed(
    virtual_audit: VirtualAudit,
) -> None:
    store, run_id = virtual_audit.store, virtual_audit.run_id
    run = store.run(run_id)
    rows = store.probes(run_id)
    closes = run.created_at + 3600.0  # the virtual plan's window: PT1H at time scale 1
    late = [dataclasses.replace(rows[0], submitted_at=closes + 7200.0), *rows[1:]]
    judged = [
        (row.submitted_at, row.state, Outcome(row.outcome) if row.outcome else None, "")
        for row in late
    ]
    card = scorecard_for(store, run_id)
    annex = build_annex(run, judged, card.criteria, Standing.FINAL, card.filings, (1, "h"))
    (missed,) = [d for d in annex.deviations if d.kind == "windows missed"]
    assert missed.count == 1 and "up to 2 h (platform time) late" in missed.detail
    scaled = dataclasses.replace(run, time_scale=10.0)
    annex = build_annex(scaled, judged[1:], card.criteria, Standing.FINAL, card.filings, (1, "h"))
    found = {d.kind: d for d in annex.deviations}
    assert found["time scale"].detail.startswith("every deadline and window divided by 10")
