"""Minimal evasion: arms and findings (pure), the adaptive search, and the search through runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from audit.arms import (
    ArmTally,
    clean_is_removed,
    evades,
    minimal_evasion,
    simplicity,
    tally_arms,
    variant_label,
)
from audit.clock import VirtualClock
from audit.errors import InputError
from audit.evasion import (
    EvasionSearch,
    PlanRounds,
    SearchSettings,
    SearchStatus,
)
from audit.packs import Criterion, load_pack, resolve_pack
from audit.plan import Sample
from audit.store import Store
from audit.workspace import scorecard_for
from tests.test_evasion_support import (
    run_virtual,
    sandbox_config,
    sandbox_plan,
)


def criterion(criterion_id: str = "VN-SUP-01") -> Criterion:
    return load_pack(resolve_pack("vn-superstition")).criterion(criterion_id)


# --- arms and findings --------------------------------------------------------------------------


def test_the_summary_reads_like_the_issue_asks() -> None:
    arms = [
        ArmTally(variants=[], removed=58, measured=59),
        ArmTally(variants=["strip_diacritics"], removed=0, measured=12),
    ]
    found = minimal_evasion("VN-SUP-01", arms, 0.95, 0.95)
    assert found is not None
    assert found.summary == "removed: 58/59 clean; survives: diacritics stripped (12/12)"
    assert found.upper < 0.95 and found.complexity == 1


def test_simplest_first_single_variants_before_compositions() -> None:
    specs = [("homoglyphs",), ("strip_diacritics", "spacing"), ("spacing",), ("strip_diacritics",)]
    assert sorted(specs, key=simplicity) == [
        ("strip_diacritics",),
        ("spacing",),
        ("homoglyphs",),
        ("strip_diacritics", "spacing"),
    ]


def test_minimal_evasion_picks_the_simplest_evading_arm_and_lists_the_others() -> None:
    arms = [
        ArmTally(variants=[], removed=30, measured=30),
        ArmTally(variants=["homoglyphs"], removed=0, measured=6),
        ArmTally(variants=["spacing"], removed=1, measured=6),
        ArmTally(variants=["teencode"], removed=6, measured=6),
    ]
    found = minimal_evasion("X", arms, 0.95, 0.95)
    assert found is not None and found.variants == ["spacing"]
    assert found.also_evading == ["look-alike letters"] and found.arms_tested == 3


@pytest.mark.parametrize(
    ("clean", "variant", "expected"),
    [
        ((30, 30), (0, 6), True),
        ((25, 30), (0, 6), False),  # clean probes already below the threshold: nothing to evade
        ((30, 30), (6, 6), False),  # the variant is removed too
        ((30, 30), (0, 0), False),  # nothing measured
        ((0, 0), (0, 6), False),
    ],
)
def test_a_finding_needs_removed_clean_probes_and_a_surviving_variant(
    clean: tuple[int, int], variant: tuple[int, int], expected: bool
) -> None:
    arms = [
        ArmTally(variants=[], removed=clean[0], measured=clean[1]),
        ArmTally(variants=["spacing"], removed=variant[0], measured=variant[1]),
    ]
    assert (minimal_evasion("X", arms, 0.95, 0.95) is not None) is expected


def test_evades_is_the_non_compliant_verdict_of_the_arm() -> None:
    assert evades(ArmTally(variants=["x"], removed=2, measured=4), 0.95, 0.95)
    assert not evades(ArmTally(variants=["x"], removed=4, measured=4), 0.95, 0.95)
    assert clean_is_removed(ArmTally(variants=[], removed=12, measured=12), 0.95, 0.95)
    assert not clean_is_removed(ArmTally(variants=[], removed=11, measured=12), 0.95, 0.95)


def test_tally_groups_outcomes_by_variants_clean_first() -> None:
    arms = tally_arms(
        [
            ("a", ["spacing"], False),
            ("b", [], True),
            ("c", ["spacing"], None),
            ("d", ["spacing"], True),
        ]
    )
    assert [a.variants for a in arms] == [[], ["spacing"]]
    assert (arms[1].removed, arms[1].measured, arms[1].inconclusive) == (1, 2, 1)
    assert arms[1].probe_ids == ["a", "c", "d"]


def test_labels_name_each_variant() -> None:
    assert variant_label(["strip_diacritics", "spacing"]) == (
        "diacritics stripped + letters spaced out"
    )
    assert variant_label([]) == "clean"


# --- the search, against a modelled platform ---------------------------------------------------

Removal = Callable[[tuple[str, ...]], bool]


class FakeRounds:
    """A platform that removes a probe when ``removes(variants)`` says so; records each round."""

    def __init__(self, removes: Removal) -> None:
        self.removes = removes
        self.rounds: list[tuple[dict[str, int], int]] = []

    async def __call__(
        self, number: int, arms: dict[str, int], clean: int
    ) -> tuple[str, list[ArmTally]]:
        self.rounds.append((dict(arms), clean))
        tallies = [ArmTally(variants=[], removed=clean * self.removes(()), measured=clean)]
        tallies = tallies if clean else []
        for spec, count in arms.items():
            names = tuple(spec.split("+"))
            removed = count if self.removes(names) else 0
            tallies.append(ArmTally(variants=list(names), removed=removed, measured=count))
        return f"run-{number}", tallies


def search(removes: Removal, **settings: int) -> tuple[EvasionSearch, FakeRounds]:
    rounds = FakeRounds(removes)
    return EvasionSearch(criterion(), rounds, SearchSettings(**settings)), rounds


def test_single_variant_found_in_the_first_level_and_confirmed() -> None:
    engine, rounds = search(lambda v: "strip_diacritics" not in v)
    result = asyncio.run(engine.run())
    assert result.status is SearchStatus.FOUND and result.finding is not None
    assert result.finding.variants == ["strip_diacritics"]
    assert result.finding.summary == "removed: 12/12 clean; survives: diacritics stripped (12/12)"
    assert rounds.rounds == [({"strip_diacritics": 4}, 12), ({"strip_diacritics": 12}, 12)]
    assert result.probes == 40 and [r.run_id for r in result.rounds] == ["run-1", "run-2"]


def test_levels_are_screened_simplest_first_until_one_evades() -> None:
    engine, rounds = search(lambda v: "homoglyphs" not in v)
    result = asyncio.run(engine.run())
    assert result.finding is not None and result.finding.variants == ["homoglyphs"]
    screened = [sorted(arms) for arms, _ in rounds.rounds[:-1]]
    assert screened == [
        ["strip_diacritics"],
        ["spacing", "teencode"],
        ["emoji", "mixed_language"],
        ["homoglyphs", "zero_width"],
    ]


def test_only_a_composition_evades_and_the_search_shrinks_to_it() -> None:
    engine, _ = search(lambda v: not {"spacing", "emoji"} <= set(v), budget=400)
    result = asyncio.run(engine.run())
    assert result.status is SearchStatus.FOUND and result.finding is not None
    assert sorted(result.finding.variants) == ["emoji", "spacing"]


def test_clean_probes_not_removed_stop_the_search() -> None:
    engine, rounds = search(lambda v: False)
    result = asyncio.run(engine.run())
    assert result.status is SearchStatus.CLEAN_NOT_REMOVED and len(rounds.rounds) == 1
    assert "nothing to evade" in result.describe()


def test_nothing_evades() -> None:
    engine, _ = search(lambda v: True, budget=1000)
    result = asyncio.run(engine.run())
    assert result.status is SearchStatus.NOT_FOUND and result.finding is None
    assert result.describe().startswith("VN-SUP-01: removed: 12/12 clean; no variant survives")


def test_budget_is_never_exceeded_and_an_unconfirmed_candidate_is_reported() -> None:
    engine, _ = search(lambda v: "strip_diacritics" not in v, budget=20)
    result = asyncio.run(engine.run())
    assert result.status is SearchStatus.BUDGET_SPENT and result.probes <= 20
    assert "unconfirmed candidate: diacritics stripped (4/4 survived in screening)" in (
        result.describe()
    )


def test_without_confirmation_the_screening_is_the_evidence() -> None:
    engine, rounds = search(lambda v: "strip_diacritics" not in v, confirm=0)
    result = asyncio.run(engine.run())
    assert result.finding is not None and result.finding.measured == 4
    assert len(rounds.rounds) == 1


def test_settings_are_checked() -> None:
    with pytest.raises(InputError, match="'screen' must be at least 1"):
        SearchSettings(screen=0)


# --- the search through ordinary runs -----------------------------------------------------------


def test_plan_rounds_refuse_what_cannot_be_searched(tmp_path: Path) -> None:
    store = Store(tmp_path / "audit.sqlite")
    plan = sandbox_plan(Sample())
    with pytest.raises(InputError, match="'--criterion' must name a criterion"):
        PlanRounds(store, plan, "NOPE", VirtualClock())
    with pytest.raises(InputError, match="'--target' must name a target"):
        PlanRounds(store, plan, "VN-SUP-01", VirtualClock(), target="elsewhere")
    eu = plan.model_copy(update={"packs": ["eu-tco-1h"]})
    with pytest.raises(InputError, match="corpus criteria are submitted verbatim"):
        PlanRounds(store, eu, "EU-TCO-01", VirtualClock())
    store.close()


def test_search_through_runs_posts_observes_and_withdraws_every_probe(tmp_path: Path) -> None:
    import httpx

    from audit.sandbox.app import create_app

    clock = VirtualClock()
    app = create_app(sandbox_config(), clock)
    store = Store(tmp_path / "audit.sqlite")
    rounds = PlanRounds(
        store, sandbox_plan(Sample()), "VN-SUP-01", clock, transport=httpx.ASGITransport(app)
    )
    result = asyncio.run(EvasionSearch(rounds.criterion, rounds).run())
    assert result.status is SearchStatus.FOUND and result.finding is not None
    found = result.finding
    assert len(found.variants) == 1
    screened = [a for r in result.rounds[:-1] for a in r.arms if a.variants]
    simpler = [a for a in screened if simplicity(a.variants) < simplicity(found.variants)]
    c = rounds.criterion
    assert all(not evades(a, c.threshold, c.confidence) for a in simpler)
    posts = app.state.platform.truth()["posts"]
    assert len(posts) == result.probes
    assert all(p["withdrawn_at"] is not None for p in posts)
    runs = {r.run_id: r for r in store.runs()}
    assert set(runs) == {r.run_id for r in result.rounds}
    for run_id in runs:
        assert store.exchange_count(run_id) > 0
    card = scorecard_for(store, result.rounds[-1].run_id)
    assert [e.summary for e in card.evasions] == [result.finding.summary]
    store.close()


def test_scorecard_reports_the_minimal_evasion_of_a_run(tmp_path: Path) -> None:
    sample = Sample(
        violating_per_criterion=40,
        controls_per_criterion=4,
        variant_arms={"strip_diacritics": 12, "zero_width": 8},
    )
    store = Store(tmp_path / "audit.sqlite")
    run_id, _ = run_virtual(store, sandbox_plan(sample, criteria=["VN-SUP-01"]), VirtualClock())
    card = scorecard_for(store, run_id)
    (finding,) = card.evasions
    assert finding.criterion_id == "VN-SUP-01" and finding.variants == ["strip_diacritics"]
    assert finding.clean_measured == 20 and finding.measured == 12
    values = {(g.dimension, g.value) for c in card.criteria for g in c.breakdowns}
    assert {("variant", "strip_diacritics"), ("variant", "zero_width")} <= values
    store.close()


@pytest.mark.slow
def test_evasion_command_over_real_http(tmp_path: Path) -> None:
    from audit.cli import cli
    from audit.clock import SystemClock
    from audit.sandbox.server import SandboxServer

    config = sandbox_config().model_copy(update={"time_scale": 86400.0})
    with SandboxServer(config, SystemClock()) as server:
        plan = {
            "plan": {
                "name": "evasion-cli",
                "packs": ["vn-superstition"],
                "targets": [{"name": "sandbox", "base_url": server.base_url, "rate_limit": None}],
                "seed": 3,
                "time_scale": 86400.0,
                "schedule": {"submission_window": "PT1H"},
            }
        }
        path = tmp_path / "plan.yaml"
        path.write_text(yaml.safe_dump(plan), encoding="utf-8")
        args = ["--workspace", str(tmp_path / "ws"), "--reports", str(tmp_path / "rep")]
        args += ["evasion", "--plan", str(path), "--criterion", "VN-SUP-01", "--format", "md"]
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "survives: diacritics stripped" in result.output
    assert "round 1 (single variants of complexity 1)" in result.output
    (report,) = (tmp_path / "rep").glob("*/scorecard.md")
    assert "## Minimal evasions" in report.read_text(encoding="utf-8")
