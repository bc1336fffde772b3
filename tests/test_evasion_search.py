"""Minimal evasion: arms and findings (pure), the adaptive search, and the search through runs."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.arms import (
    ArmTally,
    arm_spec,
    clean_is_removed,
    evades,
    minimal_evasion,
    minimal_evasions,
    simplicity,
    spec_arm,
    tally_arms,
    variant_label,
)
from audit.clock import VirtualClock
from audit.errors import InputError
from audit.evasion import (
    EvasionSearch,
    PlanRounds,
    SearchResult,
    SearchSettings,
    SearchStatus,
    search_candidates,
    search_modalities,
)
from audit.media import (
    IMAGE_VARIANTS,
    MEDIA_COMPLEXITY,
    SPEECH_VARIANTS,
    media_variant_names,
)
from audit.packs import Criterion, load_pack, resolve_pack
from audit.plan import Sample
from audit.sandbox.moderation import SandboxConfig
from audit.store import Store
from audit.workspace import scorecard_for
from tests.test_evasion_support import (
    run_virtual,
    sandbox_config,
    sandbox_plan,
)
from tests.test_media import require_program


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
            ("a", "text", ["spacing"], False),
            ("b", "text", [], True),
            ("c", "text", ["spacing"], None),
            ("d", "text", ["spacing"], True),
            ("e", "image", [], True),
            ("f", "image", ["image_noise"], False),
        ]
    )
    assert [(a.modality, a.variants) for a in arms] == [
        ("text", []),
        ("image", []),
        ("text", ["spacing"]),
        ("image", ["image_noise"]),
    ]
    assert (arms[2].removed, arms[2].measured, arms[2].inconclusive) == (1, 2, 1)
    assert arms[2].probe_ids == ["a", "c", "d"]


def test_a_media_style_is_judged_against_the_plain_media_of_its_modality() -> None:
    arms = [
        ArmTally(variants=[], removed=2, measured=12),  # clean text is not removed
        ArmTally(variants=["spacing"], removed=0, measured=8),
        ArmTally(variants=[], modality="image", removed=12, measured=12),
        ArmTally(variants=["image_low_contrast"], modality="image", removed=0, measured=8),
    ]
    assert minimal_evasion("X", arms, 0.95, 0.95) is None
    (found,) = minimal_evasions("X", arms, 0.95, 0.95)
    assert found.variants == ["image_low_contrast"]
    assert found.summary == "removed: 12/12 plain banners; survives: low-contrast banner (8/8)"


def test_arm_specs_name_the_plain_style_for_clean_media() -> None:
    assert spec_arm("image_plain") == ("image", [])
    assert spec_arm("speech_fast") == ("speech", ["speech_fast"])
    assert spec_arm("teencode+spacing") == ("text", ["teencode", "spacing"])
    assert arm_spec("speech", []) == "speech_plain" and arm_spec("text", []) == ""


def test_labels_name_each_variant() -> None:
    assert variant_label(["strip_diacritics", "spacing"]) == (
        "diacritics stripped + letters spaced out"
    )
    assert variant_label([]) == "clean"


@pytest.mark.parametrize("name", media_variant_names())
def test_every_media_variant_has_a_label_a_rank_and_a_style(name: str) -> None:
    assert name in IMAGE_VARIANTS or name in SPEECH_VARIANTS
    if name not in ("image_plain", "speech_plain"):
        assert variant_label([name]) != name.replace("_", " ")
        assert 1 <= MEDIA_COMPLEXITY[name] <= 4


def test_media_styles_are_registered_with_a_rank() -> None:
    assert set(MEDIA_COMPLEXITY) == set(IMAGE_VARIANTS) | set(SPEECH_VARIANTS)


# --- the search, against a modelled platform ---------------------------------------------------

Removal = Callable[[tuple[str, ...]], bool]


class FakeRounds:
    """A platform that removes a probe when ``removes(names)`` says so, ``names`` being its
    arm's spec (``()`` for clean text, ``("image_plain",)`` for a plain banner); records each
    round."""

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
            modality, variants = spec_arm(spec)
            removed = count if self.removes(tuple(spec.split("+"))) else 0
            arm = ArmTally(variants=variants, modality=modality, removed=removed, measured=count)
            tallies.append(arm)
        return f"run-{number}", tallies


def search(
    removes: Removal, modalities: tuple[str, ...] = ("text",), **settings: int
) -> tuple[EvasionSearch, FakeRounds]:
    rounds = FakeRounds(removes)
    found = EvasionSearch(criterion(), rounds, SearchSettings(**settings), modalities=modalities)
    return found, rounds


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


ALL = ("text", "image", "speech")


def test_candidates_mix_text_variants_and_media_styles_simplest_first() -> None:
    names = [c[0] for c in search_candidates(criterion(), ALL)]
    assert names == [
        "image_serif",
        "image_small_text",
        "speech_fast",
        "strip_diacritics",
        "image_low_contrast",
        "image_rotated",
        "spacing",
        "speech_voice",
        "teencode",
        "emoji",
        "image_noise",
        "image_watermark",
        "mixed_language",
        "speech_noise",
        "homoglyphs",
        "zero_width",
    ]
    assert [c[0] for c in search_candidates(criterion(), ("image",))] == [
        "image_serif",
        "image_small_text",
        "image_low_contrast",
        "image_rotated",
        "image_noise",
        "image_watermark",
    ]


def test_a_surviving_image_style_is_found_beside_plain_banners_and_confirmed() -> None:
    engine, rounds = search(lambda v: "image_low_contrast" not in v, ALL)
    result = asyncio.run(engine.run())
    assert result.status is SearchStatus.FOUND and result.finding is not None
    assert result.finding.variants == ["image_low_contrast"]
    assert result.finding.summary == (
        "removed: 12/12 plain banners; survives: low-contrast banner (12/12)"
    )
    first, second, confirm = rounds.rounds
    assert first == (
        {
            "image_serif": 4,
            "image_plain": 12,
            "image_small_text": 4,
            "speech_fast": 4,
            "speech_plain": 12,
            "strip_diacritics": 4,
        },
        12,
    )
    assert sorted(second[0]) == [
        "image_low_contrast",
        "image_rotated",
        "spacing",
        "speech_voice",
        "teencode",
    ]
    assert second[1] == 0  # every baseline was taken in the first round
    assert confirm == ({"image_low_contrast": 12, "image_plain": 12}, 0)
    assert result.probes == 52 + 20 + 24
    baselines = SearchResult("X", baselines=result.baselines).describe()
    assert baselines.startswith("X: removed: 12/12 clean, 12/12 plain banners, 12/12 plain speech")


def test_a_modality_whose_plain_media_stay_up_is_searched_no_further() -> None:
    engine, rounds = search(lambda v: not v or not v[0].startswith("image_"), ALL, budget=1000)
    result = asyncio.run(engine.run())
    assert result.status is SearchStatus.NOT_FOUND
    later = [name for arms, _ in rounds.rounds[1:] for name in arms]
    assert later and not [name for name in later if name.startswith("image_")]
    assert "0/12 plain banners" in result.describe()


def test_clean_probes_of_every_modality_not_removed_stop_the_search() -> None:
    engine, rounds = search(lambda v: False, ALL)
    result = asyncio.run(engine.run())
    assert result.status is SearchStatus.CLEAN_NOT_REMOVED and len(rounds.rounds) == 1


@settings(max_examples=60, deadline=None)
@given(
    budget=st.integers(1, 200),
    evading=st.sets(st.sampled_from([c[0] for c in search_candidates(criterion(), ALL)])),
    plain_removed=st.booleans(),
)
def test_the_budget_holds_for_any_platform(
    budget: int, evading: set[str], plain_removed: bool
) -> None:
    def removes(names: tuple[str, ...]) -> bool:
        if not names or names[0] in ("image_plain", "speech_plain"):
            return plain_removed
        return not evading & set(names)

    engine, rounds = search(removes, ALL, budget=budget)
    result = asyncio.run(engine.run())
    assert result.probes <= budget
    assert result.probes == sum(sum(arms.values()) + clean for arms, clean in rounds.rounds)
    if result.finding is not None:
        assert set(result.finding.variants) & evading


def test_search_modalities_follow_the_criterion_and_espeak_ng(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = criterion()
    with pytest.raises(InputError, match="'--modality' must be one that criterion VN-SUP-02"):
        search_modalities(criterion("VN-SUP-02"), ("speech",))
    monkeypatch.setenv("PATH", "")
    chosen, note = search_modalities(c, ())
    assert chosen == ["text", "image"] and "apt-get install espeak-ng" in note
    with pytest.raises(InputError, match="apt-get install espeak-ng"):
        search_modalities(c, ("speech",))
    assert search_modalities(c, ("image",)) == (["image"], "")


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


def detecting(**chances: float) -> SandboxConfig:
    """The default sandbox whose simulated media classifier reads each named style with the
    given chance."""
    data = {**sandbox_config().model_dump(), "media_variant_detection": chances}
    return SandboxConfig.model_validate(data)


def test_a_style_the_sandbox_misses_is_found_through_runs(tmp_path: Path) -> None:
    import httpx

    from audit.sandbox.app import create_app

    clock = VirtualClock()
    app = create_app(detecting(image_low_contrast=0.0), clock)
    store = Store(tmp_path / "audit.sqlite")
    rounds = PlanRounds(
        store, sandbox_plan(Sample()), "VN-SUP-01", clock, transport=httpx.ASGITransport(app)
    )
    result = asyncio.run(EvasionSearch(rounds.criterion, rounds, modalities=["image"]).run())
    assert result.status is SearchStatus.FOUND and result.finding is not None
    assert result.finding.variants == ["image_low_contrast"]
    assert result.finding.summary.startswith("removed: 12/12 plain banners; survives: low-contrast")
    assert [r.purpose for r in result.rounds] == [
        "single variants of complexity 1",
        "single variants of complexity 2",
        "confirm low-contrast banner",
    ]
    posts = app.state.platform.truth()["posts"]
    assert len(posts) == result.probes and all(p["modality"] == "image" for p in posts)
    assert all(p["withdrawn_at"] is not None for p in posts)
    card = scorecard_for(store, result.rounds[-1].run_id)
    assert [e.summary for e in card.evasions] == [result.finding.summary]
    store.close()


def evasion_cli(
    tmp_path: Path, config: SandboxConfig, *options: str, time_scale: float = 86400.0
) -> tuple[Result, str]:
    """``evasion`` for VN-SUP-01 against a real sandbox server; its output and Markdown report.
    A 24-hour deadline lasts 86400 / ``time_scale`` seconds."""
    from audit.cli import cli
    from audit.clock import SystemClock
    from audit.sandbox.server import SandboxServer

    config = config.model_copy(update={"time_scale": time_scale})
    with SandboxServer(config, SystemClock()) as server:
        plan = {
            "plan": {
                "name": "evasion-cli",
                "packs": ["vn-superstition"],
                "targets": [{"name": "sandbox", "base_url": server.base_url, "rate_limit": None}],
                "seed": 3,
                "time_scale": time_scale,
                "schedule": {"submission_window": "PT1H"},
            }
        }
        path = tmp_path / "plan.yaml"
        path.write_text(yaml.safe_dump(plan), encoding="utf-8")
        args = ["--workspace", str(tmp_path / "ws"), "--reports", str(tmp_path / "rep")]
        args += ["evasion", "--plan", str(path), "--criterion", "VN-SUP-01", "--format", "md"]
        result = CliRunner().invoke(cli, [*args, *options])
    reports = list((tmp_path / "rep").glob("*/scorecard.md"))
    return result, reports[0].read_text(encoding="utf-8") if len(reports) == 1 else ""


@pytest.mark.slow
def test_evasion_command_over_real_http(tmp_path: Path) -> None:
    result, report = evasion_cli(tmp_path, sandbox_config(), "--modality", "text")
    assert result.exit_code == 1, result.output
    assert "survives: diacritics stripped" in result.output
    assert "round 1 (single variants of complexity 1)" in result.output
    assert "## Minimal evasions" in report


# 24 hours in 4 seconds: a late look at a plain banner would unsettle the baseline
MEDIA_SCALE = 21600.0


def all_of(pattern: str, text: str) -> bool:
    """``pattern`` is found with its ``N/M`` (written ``{N}``) all of the measured probes, N = M
    > 0: under a loaded machine's real clock a probe may go unmeasured, never a wrong count."""
    found = re.search(re.escape(pattern).replace(re.escape("{N}"), r"(\d+)/(\d+)"), text)
    return found is not None and found[1] == found[2] != "0"


@pytest.mark.slow
def test_evasion_command_finds_the_image_style_the_sandbox_misses(tmp_path: Path) -> None:
    config = detecting(image_low_contrast=0.0)
    result, report = evasion_cli(tmp_path, config, "--modality", "image", time_scale=MEDIA_SCALE)
    out = result.output
    assert result.exit_code == 1, out
    assert "round 1 (single variants of complexity 1)" in out
    for arm in ("image_plain", "image_serif", "image_small_text", "image_rotated"):
        assert all_of(f"{arm} {{N}} removed", out), out
    assert all_of("VN-SUP-01: removed: {N} plain banners; survives: low-contrast banner (", out)
    assert all_of("| VN-SUP-01 | low-contrast banner (image\\_low\\_contrast) | {N} |", report)
    assert "survives: low-contrast banner (" in report


@pytest.mark.slow
def test_evasion_command_finds_the_speech_style_the_sandbox_misses(tmp_path: Path) -> None:
    require_program("espeak-ng", "espeak-ng")  # skips locally without it, fails under CI
    config = detecting(speech_voice=0.0)
    result, report = evasion_cli(tmp_path, config, "--modality", "speech", time_scale=MEDIA_SCALE)
    out = result.output
    assert result.exit_code == 1, out
    assert all_of("speech_plain {N} removed", out) and all_of("speech_fast {N} removed", out)
    assert all_of("removed: {N} plain speech; survives: speech in another voice (", out), out
    assert "survives: speech in another voice (" in report


def test_a_modality_the_criterion_does_not_declare_is_refused_before_any_post(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audit.cli import main

    plan = {
        "plan": {
            "name": "evasion-refused",
            "packs": ["vn-superstition"],
            "targets": [{"name": "sandbox", "base_url": "http://127.0.0.1:9", "rate_limit": None}],
            "seed": 3,
        }
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    args = ["--workspace", str(tmp_path / "ws"), "evasion", "--plan", str(path)]
    args += ["--criterion", "VN-SUP-02", "--modality", "speech"]
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    shown = capsys.readouterr()
    assert shown.err.strip() == (
        "error: '--modality' must be one that criterion VN-SUP-02 declares (text, image) "
        "(got 'speech')"
    )
    assert "round 1" not in shown.out
