"""The benchmarks in bench/ run at a tiny size and print their figures. No timing is checked:
performance targets live in the benchmarks and docs/performance.md, not in tests."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from audit.sandbox.app import create_app
from tests.conftest import run_virtual_audit, virtual_plan

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _json(script: str, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_run(script, *args))
    return data


def _bench_module(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_virtual_day_prints_its_figure() -> None:
    data = _json("virtual_day.py", "--probes", "30", "--repeat", "1")
    assert data["probes"] == 30
    assert sum(data["outcomes"].values()) == 30
    assert data["run_seconds_median"] > 0
    assert data["requests"] >= 30


def test_bootstrap_error_prints_its_table() -> None:
    out = _run("bootstrap_error.py", "--seeds", "2", "--sizes", "40")
    assert "| 40 | 400 |" in out


def test_throughput_prints_the_ratio() -> None:
    data = _json("throughput.py", "--probes", "9", "--repeat", "1")
    assert len(data["pairs"]) == 1
    assert data["pairs"][0]["requests"] > 9
    assert data["ratio_engine_to_bare_median"] > 0


@pytest.mark.slow
def test_scale_plans_runs_kills_resumes_and_reports(tmp_path: Path) -> None:
    data = _json("scale.py", "--probes", "600", "--kill-at", "0.05", "--workspace", str(tmp_path))
    assert data["probes"] == 600
    assert data["report"]["probes"] == 600
    assert data["store_rows"]["probes"] == 600
    assert data["report"]["file_mb"].keys() == {
        "junit.xml",
        "probes.csv",
        "scorecard.html",
        "scorecard.json",
        "scorecard.md",
    }
    if data["run"]["killed"]:  # the run may end before the first look at its progress
        assert data["resume"]["replayed_exchanges"] > 0
    again = _json("scale.py", "--phase", "report", "--workspace", str(tmp_path))
    assert again["probes"] == 600


def test_platform_rebuilt_from_the_ledger_is_the_platform(tmp_path: Path) -> None:
    """The scale benchmark resumes a killed run against a simulated platform rebuilt from the
    run's evidence ledger: every post, with the fate the sandbox drew for it, its notices and
    its withdrawal, must be as the platform the run talked to had them."""
    scale = _bench_module("scale")
    audit = run_virtual_audit(tmp_path, virtual_plan(violating=12, controls=4))
    try:
        rebuilt = create_app(audit.platform.config, audit.clock).state.platform
        replayed = scale.rebuild_platform(audit.store, audit.run_id, rebuilt)
        assert replayed > 0
        assert rebuilt.posts.keys() == audit.platform.posts.keys()
        for post_id, post in audit.platform.posts.items():
            assert dataclasses.asdict(rebuilt.posts[post_id]) == dataclasses.asdict(post)
        assert rebuilt.by_key == audit.platform.by_key
        assert len(rebuilt.blocked) == len(audit.platform.blocked)
    finally:
        audit.store.close()


def test_store_bytes_accounts_for_the_store(tmp_path: Path) -> None:
    audit = run_virtual_audit(tmp_path, virtual_plan(violating=6, controls=2))
    audit.store.close()
    data = _json("store_bytes.py", str(tmp_path), "--probes", "8")
    tables = data["tables_and_indexes"]
    assert {"exchanges", "probes", "observations", "observations_probe"} <= set(tables)
    # every page but the free ones is in some table or index (each figure rounded per probe)
    assert 0 < sum(tables.values()) * 8 <= data["file_bytes"] + 4 * len(tables)
    assert data["ledger_entries"] > 8
    assert 0 < data["entry_stored_bytes"] < data["entry_text_bytes"]  # kept compressed
    fields = data["entry_fields"]
    assert {"response_body", "started_at", "url"} <= set(fields)
    assert sum(fields.values()) <= data["entry_text_bytes"]


def test_startup_prints_its_figures() -> None:
    data = _json("startup.py", "--repeat", "1", "--json")
    figures = data["figures"]["this"]
    assert set(figures) == {
        "python -c pass",
        "python -m audit --help",
        "python -m audit --version",
        "sandbox serve until /_sandbox/health answers",
    }
    for row in figures.values():
        assert row["median_s"] > 0
        assert row["peak_rss_mb"] > 0


def test_fault_share_at_a_tiny_size_finds_no_false_outcome() -> None:
    result = _bench_module("fault_share").measure(24, 0.10, 3)
    assert sum(result["faults"].values()) > 0
    assert result["false_outcomes"] == 0, result["false_by_kind"]
    assert sum(result["outcomes"].values()) > 0


def test_workers_prints_its_scaling_figures() -> None:
    from tests.pg_server import require_postgresql

    require_postgresql()  # skips without the server binaries (fails under CI)
    data = _json(
        "workers.py", "--probes", "12", "--sandboxes", "2", "--workers", "1,2",
        "--max-probes", "3", "--repeat", "1",
    )  # fmt: skip
    assert [p["workers"] for p in data["passes"]] == [1, 2]
    for one in data["passes"]:
        assert one["probes"] == 12 and one["run_statuses"] == ["complete"]
        assert one["requests"] >= 12 and one["cpu_seconds"]["workers"] > 0
    assert data["scaling_ratio_to_first"]["1"] == 1.0
    assert data["requests_per_s_per_worker"]["2"] > 0
