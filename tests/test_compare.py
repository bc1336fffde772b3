"""diff, compare and trend on runs made on the virtual clock, through the library and the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audit.cli import main
from audit.commands.reports import diff_text, exit_code
from audit.compare import (
    BOSCHLOO_MAX_N,
    RateCell,
    compare_runs,
    criterion_change,
    diff_runs,
    holm,
    rate_test,
    trend_of,
)
from audit.errors import InputError
from audit.report.views import render_view
from audit.scorecard import Scorecard
from audit.stats import Verdict
from audit.store import Store
from audit.workspace import scorecard_for
from tests.scorecards import DAY, START, WEAK_RITUALS, gold_plan, platform, run_on_virtual_clock

STRONG_RITUALS = {"paid-ritual": 1.0}
# Weekly runs, an hour later each week: start times that keep the bootstrap behind the time
# figures quick (its cost depends on the data, from 1 s to 10 s a scorecard).
WEEK = 7 * DAY + 3600


@dataclass(frozen=True)
class Workspace:
    root: Path
    weekly: list[str]  # plan "weekly" on "sandbox": weak, strong, weak platform
    peer: str  # plan "peers" on "platform-b": strong platform
    cards: dict[str, Scorecard]

    def cli(self, *args: str) -> int:
        base = ["--workspace", str(self.root / "ws"), "--reports", str(self.root / "reports")]
        return _main([*base, *args])


def _main(args: list[str]) -> int:
    """The CLI's exit code (commands that succeed may return without raising SystemExit)."""
    try:
        main(args)
    except SystemExit as exited:
        return int(exited.code or 0)
    return 0


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("compare")
    store = Store(root / "ws" / "audit.sqlite")
    weekly = [
        run_on_virtual_clock(store, gold_plan("weekly"), platform(behaviour), START + i * WEEK)
        for i, behaviour in enumerate((WEAK_RITUALS, STRONG_RITUALS, WEAK_RITUALS))
    ]
    peer = run_on_virtual_clock(
        store, gold_plan("peers", target="platform-b"), platform(STRONG_RITUALS), START
    )
    cards = {r: scorecard_for(store, r) for r in [*weekly, peer]}
    store.close()
    return Workspace(root, weekly, peer, cards)


def _cell(
    successes: int, n: int, verdict: Verdict = Verdict.INCONCLUSIVE, unknown: int = 0
) -> RateCell:
    return RateCell(
        unknown=unknown,
        run_id=f"r{successes}-{n}",
        target="t",
        label=f"t (run r{successes}-{n})",
        period_start_utc=None,
        verdict=verdict,
        successes=successes,
        n=n,
        rate=successes / n if n else None,
        lower=None,
        upper=None,
        threshold=0.95,
        confidence=0.95,
        median_time="–",
        over_removed=0,
        controls_measured=0,
    )


# statistics -------------------------------------------------------------------------------
def test_rate_test_uses_boschloo_for_small_samples() -> None:
    result = rate_test(_cell(60, 60), _cell(50, 60), 0.95)
    assert result.test == "Boschloo exact"
    assert result.p_value == pytest.approx(0.000714, rel=0.02)
    assert result.significant and result.alpha == pytest.approx(0.05)


def test_rate_test_uses_fisher_beyond_the_boschloo_limit() -> None:
    n = BOSCHLOO_MAX_N
    result = rate_test(_cell(n - 10, n), _cell(n - 30, n), 0.95)
    assert result.test == "Fisher exact"
    assert result.significant


def test_equal_rates_and_empty_samples_are_not_significant() -> None:
    assert not rate_test(_cell(14, 14), _cell(14, 14), 0.95).significant
    empty = rate_test(_cell(0, 0), _cell(5, 10), 0.95)
    assert empty.test == "none" and empty.p_value is None and not empty.significant


def test_holm_steps_down() -> None:
    # sorted p: .01 < .05/3, .02 < .05/2, .04 < .05/1: all rejected; then .03 blocks .04
    assert holm([0.01, 0.04, 0.02], 0.05) == [True, True, True]
    assert holm([0.01, 0.04, 0.03], 0.05) == [True, False, False]
    assert holm([None, 0.001], 0.05) == [False, True]


def test_a_verdict_flip_within_noise_is_not_a_change() -> None:
    change = criterion_change(
        "X", "x", _cell(14, 14, Verdict.INCONCLUSIVE), _cell(13, 14, Verdict.NON_COMPLIANT)
    )
    assert change.verdict_changed and not change.changed and not change.test.significant
    assert change.direction == "same"
    assert "no change beyond noise" in change.note
    unmeasured = criterion_change("X", "x", _cell(14, 14), _cell(0, 0, Verdict.NOT_MEASURED))
    assert unmeasured.direction == "changed"


def test_unknown_outcomes_never_make_a_regression() -> None:
    # 57 of 60 seen removed before; after, 30 seen removed and 30 unknown: the best case (60/60)
    # is not worse, so no regression is called however bad the worst case (30/60) looks
    change = criterion_change("X", "x", _cell(57, 60), _cell(30, 60, unknown=30))
    assert not change.changed
    assert change.direction == "same"
    # the same after-run with its unknowns resolved as failures is a regression
    worse = criterion_change("X", "x", _cell(57, 60), _cell(30, 60))
    assert worse.changed
    assert worse.direction == "worse"


def test_a_criterion_measured_in_one_run_only_is_reported() -> None:
    change = criterion_change("X", "x", _cell(3, 4), None)
    assert change.changed and change.note == "measured only in the first run"


# library views on real runs ---------------------------------------------------------------
def test_diff_finds_the_criterion_that_changed(ws: Workspace) -> None:
    weak, strong, _ = (ws.cards[r] for r in ws.weekly)
    view = diff_runs(weak, strong)
    changed = {c.criterion_id: c for c in view.changed}
    assert "VN-SUP-02" in changed
    assert changed["VN-SUP-02"].direction == "better"
    assert changed["VN-SUP-02"].test.significant
    assert diff_runs(weak, weak).changed == []


def test_runs_of_different_packs_are_refused(ws: Workspace) -> None:
    card = ws.cards[ws.weekly[0]]
    other = card.model_copy(update={"pack": {**card.pack, "id": "other-pack"}, "run_id": "x"})
    with pytest.raises(InputError, match="one criteria pack"):
        diff_runs(card, other)
    with pytest.raises(InputError, match="one criteria pack"):
        compare_runs([card, other])


def test_compare_tests_every_pair_with_holm(ws: Workspace) -> None:
    view = compare_runs([ws.cards[ws.weekly[0]], ws.cards[ws.peer]])
    assert [r.target for r in view.runs] == ["sandbox", "platform-b"]
    rituals = next(c for c in view.criteria if c.criterion_id == "VN-SUP-02")
    (pair,) = rituals.pairs
    assert pair.holm_significant and pair.difference is not None and pair.difference > 0
    with pytest.raises(InputError, match="at least two"):
        compare_runs([ws.cards[ws.peer]])


def test_runs_on_the_same_target_are_named_apart(ws: Workspace) -> None:
    first, second = (ws.cards[r] for r in ws.weekly[:2])
    view = compare_runs([first, second])
    labels = [r.label for r in view.runs]
    assert len(set(labels)) == 2
    for card, label in zip((first, second), labels, strict=True):
        assert label.startswith("sandbox (run ") and card.run_id in label
        assert card.period_start_utc is not None and card.period_start_utc[:10] in label
    markdown = render_view(view, "md")
    rituals = markdown[markdown.index("## VN-SUP-02") :]
    assert all(card.run_id in rituals.split("\n\n", 3)[2] for card in (first, second))
    page = render_view(view, "html")
    assert all(f"{label}: rate" in page for label in labels)


def test_trend_orders_runs_and_flags_the_latest_regression(ws: Workspace) -> None:
    view = trend_of([ws.cards[r] for r in reversed(ws.weekly)])
    assert [r.run_id for r in view.runs] == ws.weekly
    assert [c.criterion_id for c in view.latest_regressions] == ["VN-SUP-02"]
    rituals = next(s for s in view.series if s.criterion_id == "VN-SUP-02")
    assert [s.direction for s in rituals.steps] == ["better", "worse"]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)


@pytest.mark.parametrize("kind", ["comparison", "trend"])
def test_views_render_in_every_format(ws: Workspace, kind: str) -> None:
    cards = [ws.cards[r] for r in ws.weekly]
    view = trend_of(cards) if kind == "trend" else compare_runs([cards[0], ws.cards[ws.peer]])
    parser = _Tags()
    parser.feed(render_view(view, "html"))
    assert "script" not in parser.tags and "svg" in parser.tags
    assert "VN-SUP-02" in render_view(view, "md")
    assert json.loads(render_view(view, "json"))["kind"] == kind


# the CLI ----------------------------------------------------------------------------------
def test_diff_exit_code_follows_fail_on(ws: Workspace) -> None:
    weak, strong, weaker = (ws.cards[r] for r in ws.weekly)
    better, worse = diff_runs(weak, strong), diff_runs(strong, weaker)
    assert [exit_code(better, f) for f in ("change", "regression", "never")] == [1, 0, 0]
    assert [exit_code(worse, f) for f in ("change", "regression", "never")] == [1, 1, 0]
    assert exit_code(diff_runs(weak, weak), "change") == 0
    assert "No criterion changed beyond noise." in diff_text(diff_runs(weak, weak))


def test_diff_command(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert ws.cli("diff", ws.weekly[0], ws.weekly[1], "--format", "json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "diff" and data["before"]["run_id"] == ws.weekly[0]
    assert "VN-SUP-02" in [c["criterion_id"] for c in data["changes"] if c["changed"]]
    assert ws.cli("diff", "no-such-run", ws.weekly[0]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_compare_command_writes_three_files(ws: Workspace) -> None:
    out = ws.root / "cmp"
    assert ws.cli("compare", ws.weekly[0], ws.peer, "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.html",
        "comparison.json",
        "comparison.md",
    ]
    assert ws.cli("compare", ws.peer) == 2


def test_trend_command_exit_codes(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert ws.cli("trend", "weekly", "--format", "json") == 1
    assert "worse beyond noise on VN-SUP-02" in capsys.readouterr().out
    assert (ws.root / "reports" / "trend-weekly" / "trend.json").exists()
    assert ws.cli("trend", "peers", "--format", "md") == 0
    assert ws.cli("trend", "no-such-plan") == 2
    assert "plans: peers, weekly" in capsys.readouterr().err
    assert ws.cli("trend", "weekly", "--format", "pdf") == 2


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    main(["schema"])
    assert json.loads(capsys.readouterr().out)["$id"].startswith("urn:platform-audit:scorecard:")


@pytest.mark.parametrize("command", ["diff", "compare", "trend", "schema"])
def test_commands_document_their_exit_codes(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main([command, "--help"]) == 0
    assert "Exit code" in capsys.readouterr().out
