"""The scorecard read in one pass over the store is the scorecard built from the whole run."""

from __future__ import annotations

from pathlib import Path

from audit.evidence.ledger import GENESIS
from audit.scorecard import build_scorecard, scorecard_from_store
from tests.conftest import run_virtual_audit, virtual_plan


def test_one_pass_over_the_store_gives_the_same_scorecard(tmp_path: Path) -> None:
    audit = run_virtual_audit(tmp_path, virtual_plan(violating=30, controls=8))
    store, run_id = audit.store, audit.run_id
    run = store.run(run_id)
    seq, head = store.last_exchange(run_id)
    ledger = (seq, head or GENESIS)
    whole = build_scorecard(
        run, store.probes(run_id), store.observations(run_id), ledger, "k", store.media_sent(run_id)
    )
    streamed = scorecard_from_store(store, run, ledger, "k")
    assert streamed.model_dump(mode="json") == whole.model_dump(mode="json")
    assert streamed.filings.probes > 0 and streamed.look_views is not None


def test_each_probe_comes_with_exactly_its_own_observations(tmp_path: Path) -> None:
    audit = run_virtual_audit(tmp_path, virtual_plan(violating=6, controls=2))
    store, run_id = audit.store, audit.run_id
    observations = store.observations(run_id)
    seen = {row.probe_id: looks for row, looks in store.probes_with_observations(run_id)}
    assert sorted(seen) == sorted(row.probe_id for row in store.probes(run_id))
    assert seen == {p: observations.get(p, []) for p in seen}
    assert sum(len(v) for v in seen.values()) == sum(len(v) for v in observations.values()) > 0
