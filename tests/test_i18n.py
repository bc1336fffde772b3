"""Scorecards in Vietnamese: catalogs complete and in step with the code, no English left in a
``vi`` scorecard (apart from ids and platform strings), and the English unchanged."""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from audit.arms import EvasionFinding, variant_label
from audit.cli import main
from audit.clock import VirtualClock
from audit.errors import InputError
from audit.i18n import DOMAIN, LOCALE_DIR, language
from audit.report.html import render_html
from audit.report.junit import render_junit
from audit.report.markdown import render_markdown
from audit.runner import create_runs
from audit.scorecard import NOT_DELIVERED, Scorecard
from audit.scorecard_annex import INTERRUPTED, KINDS, LATE, NOT_COMPLETE, SCALED, Deviation
from audit.scorecard_model import Group, LookViews
from audit.scorecard_text import (
    headline_text,
    methodology_text,
    over_removal_text,
    overall_rule_text,
    reason_text,
    sensitivity_text,
    standing_text,
    verdict_text,
)
from audit.scorecard_text_annex import annex_text, authority_text, deviation_text
from audit.scorecard_views import views_line
from audit.statements.check import MESSAGES
from audit.statements.crosscheck import BY_ATTRIBUTES, LIMITS
from audit.statements.model import (
    TITLES,
    FindingKind,
    KindRate,
    StatementFinding,
    StatementSource,
    StatementsSection,
)
from audit.store import Store
from audit.ui import print_summary
from audit.workspace import scorecard_for
from tests.scorecards import START, gold_plan, gold_scorecard, platform, run_on_virtual_clock

ROOT = Path(__file__).resolve().parent.parent
PO = LOCALE_DIR / "vi" / "LC_MESSAGES" / f"{DOMAIN}.po"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"

# Words a Vietnamese scorecard keeps as they are: names of methods, standards and formats.
NAMES = {
    "clopper",
    "pearson",
    "turnbull",
    "wilson",
    "holm",
    "bootstrap",
    "dsa",
    "eu",
    "utc",
    "json",
    "csv",
    "ed25519",
    "sha256",
    "sha",
    "puid",
    "platform",
    "audit",
    "verify",
    "export",
    "probes",
}
# The DSA statements database's field names and values, quoted as the database spells them.
STATEMENT_FIELDS = (
    "application_date",
    "content_date",
    "automated_detection",
    "automated_decision",
    "decision_visibility",
    "content_type",
    "source_type",
    "SOURCE_VOLUNTARY",
    "category",
    "Yes",
)
# Names of protocol fields a Vietnamese sentence quotes as they are.
PROTOCOL = ("Retry-After", *STATEMENT_FIELDS)


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> list[Scorecard]:
    """The gold run (final), and a run just planned on a compressed clock (preliminary, every
    probe pending): between them most sentences of a scorecard."""
    gold = gold_scorecard(tmp_path_factory.mktemp("gold"))
    store = Store(tmp_path_factory.mktemp("planned") / "audit.sqlite")
    try:
        plan = gold_plan(name="planned").model_copy(update={"time_scale": 60.0})
        (prepared,) = create_runs(store, plan, None, VirtualClock(START))
        planned = scorecard_for(store, prepared.run_id)
    finally:
        store.close()
    return [gold, planned, _with_evasion(gold), _with_observer_and_statements(gold)]


def _with_evasion(card: Scorecard) -> Scorecard:
    """The gold scorecard with an evasion finding, as the arms analysis writes one."""
    label = variant_label(["strip_diacritics"])
    finding = EvasionFinding(
        criterion_id=card.criteria[1].id,
        variants=["strip_diacritics"],
        label=label,
        complexity=1,
        clean_removed=10,
        clean_measured=10,
        removed=1,
        measured=10,
        upper=0.39,
        threshold=0.95,
        confidence=0.95,
        arms_tested=3,
        also_evading=[variant_label(["spacing", "emoji"])],
        probe_ids=[],
        summary=f"removed: 10/10 clean; survives: {label} (9/10)",
    )
    return card.model_copy(update={"evasions": [finding]})


def _with_observer_and_statements(card: Scorecard) -> Scorecard:
    """The gold scorecard as an observer decided its looks, the author's view disagreeing on
    two probes, with a statements section holding every kind of finding and the annex's
    deviations of every kind the run can record."""
    views = LookViews(
        decided_by="observer",
        observer="anonymous",
        author_view_too=True,
        looks=40,
        disagreements=3,
        probes_disagreeing=2,
    )
    probes = [
        p.model_copy(update={"view": "observer", "view_disagreements": 2 if i < 2 else 0})
        for i, p in enumerate(card.probes)
    ]
    assert card.annex is not None
    annex = card.annex.model_copy(update={"deviations": _every_deviation()})
    assert card.look_views is not None
    author_line = views_line(card.look_views)
    methodology = [views_line(views) if line == author_line else line for line in card.methodology]
    first = card.criteria[0]
    undelivered = Group(
        dimension="modality", value=f"image ({NOT_DELIVERED})", rate=first.removal_in_deadline
    )
    criteria = [first.model_copy(update={"breakdowns": [*first.breakdowns, undelivered]})]
    update = {"look_views": views, "probes": probes, "annex": annex, "methodology": methodology}
    update["criteria"] = criteria + card.criteria[1:]
    return card.model_copy(update={**update, "statements": _statements(card)})


def _every_deviation() -> list[Deviation]:
    causes = ["never submitted", "notice not filed", "still pending"]
    found = [Deviation(kind=KINDS[0], count=1, detail=cause) for cause in causes]
    return [
        *found,
        Deviation(kind="windows missed", count=2, detail=LATE % {"late": "1 h 30 min"}),
        Deviation(
            kind="filings interrupted",
            count=3,
            detail=INTERRUPTED % {"sent_again": 2, "not_sent_again": 1},
        ),
        Deviation(kind="time scale", count=5, detail=SCALED % {"scale": "3600"}),
        Deviation(kind="run not complete", count=4, detail=NOT_COMPLETE % {"status": "running"}),
    ]


def _statements(card: Scorecard) -> StatementsSection:
    probe = card.probes[0]
    messages = [
        m % dict.fromkeys(re.findall(r"%\((\w+)\)s", m), "2026-01-01") if "%(" in m else m
        for m in MESSAGES
    ]
    findings = [
        StatementFinding(
            probe_id=probe.probe_id,
            criterion_id=probe.criterion_id,
            post_id=probe.post_id,
            kind=kind,
            statement="dump.csv:2",
            match="attributes (content_type, category)",
            message=message,
        )
        for kind, message in zip(FindingKind, messages, strict=False)
    ]
    rates = [
        KindRate(
            kind=k, title=TITLES[k], found=1, checked=4, rate=0.25, low=0.01, high=0.8, level=0.95
        )
        for k in FindingKind
    ]
    return StatementsSection(
        sources=[StatementSource(name="dump.csv", sha256="ab" * 32, rows=10)],
        rows=10,
        bad_rows=1,
        not_about_the_run=2,
        matching="attributes",
        puid_template=None,
        platform="sandbox",
        automation_window_s=72_000.0,
        statements_used=7,
        matched=6,
        unmatched_statements=1,
        other_platform=0,
        ambiguous=[],
        overall=rates,
        criteria=[],
        findings=findings,
        limits=[*LIMITS, BY_ATTRIBUTES],
    )


def test_committed_catalogs_are_what_the_catalog_script_writes() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import catalogs
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    stale = [
        str(path.relative_to(ROOT))
        for path, data in catalogs.planned().items()
        if not path.is_file() or path.read_bytes() != data
    ]
    assert not stale, f"out of date (run python scripts/catalogs.py): {stale}"


def test_every_message_has_a_vietnamese_translation() -> None:
    with TEMPLATE.open("rb") as pot:
        expected = {m.id for m in read_po(pot) if m.id}
    with PO.open("rb") as po:
        catalog = read_po(po, locale="vi", domain=DOMAIN)
    translated = {m.id for m in catalog if m.id and not m.fuzzy and all(_strings(m.string))}
    assert expected, "no message extracted"
    missing = sorted(str(m) for m in expected - translated)
    assert not missing, f"messages without a Vietnamese translation: {missing}"
    problems = [  # "10 % unless" is no placeholder: only named ones are filled in
        (str(m.id), errors) for m, errors in catalog.check() if "%(" in str(m.id)
    ]
    assert not problems, f"placeholders differ between message and translation: {problems}"


def _strings(value: object) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (str(value or ""),)


def _english_words() -> set[str]:
    """Every word of the English messages, but the names kept as they are."""
    with TEMPLATE.open("rb") as pot:
        ids = [s for m in read_po(pot) if m.id for s in _strings(m.id)]
    text = re.sub(r"%\(\w+\)s", " ", " ".join(ids))
    return {w.lower() for w in re.findall(r"[A-Za-z]{3,}", text)} - NAMES


def _platform_strings(card: Scorecard) -> list[str]:
    """What a scorecard quotes from the platform, the plan and the pack's untranslated data."""
    quoted = [card.run_id, card.plan_name, *card.target.values(), str(card.pack["id"])]
    quoted += [str(card.pack["digest"]), card.ledger_head, card.signing_key or ""]
    for c in card.criteria:
        quoted += [c.id, c.dsa_category, c.deadline]
    for p in card.probes:
        quoted += [p.probe_id, p.text, p.post_id or "", p.template_id, *p.variants]
    for e in card.evasions:  # variant names are ids
        quoted += e.variants
    if card.statements is not None:  # finding kinds are ids
        quoted += [f.kind.value for f in card.statements.findings]
    if card.annex is not None:  # the frozen plan is quoted as it was frozen
        plan = card.annex.plan
        quoted += [json.dumps(plan, indent=2, sort_keys=True), card.annex.plan_digest]
        quoted += _plan_values(plan)
    quoted += PROTOCOL
    return sorted((q for q in quoted if q), key=len, reverse=True)


def _plan_values(value: object) -> list[str]:
    """The plan's own strings (its notice reason, durations, names)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _plan_values(v)]
    if isinstance(value, list):
        return [s for v in value for s in _plan_values(v)]
    return [value] if isinstance(value, str) else []


def _leaks(text: str, card: Scorecard, words: set[str]) -> list[str]:
    for quoted in _platform_strings(card):
        text = text.replace(quoted, " ")
    return sorted({w for w in re.findall(r"[A-Za-z]{3,}", text) if w.lower() in words})


def _visible(page: str) -> str:
    """The text of an HTML page a reader sees, with its <title> and SVG titles."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    page = re.sub(r"<meta[^>]*>", " ", page)
    page = re.sub(r'aria-label="([^"]*)"', r"> \1 <", page)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _markdown_prose(text: str) -> str:
    """Markdown without its code spans (where platform strings go) and its escapes."""
    return re.sub(r"\\(.)", r"\1", re.sub(r"`[^`]*`", " ", text))


def _junit_prose(xml: str) -> str:
    """The names, messages and texts of a JUnit file: not its element names or its properties
    (the model's ids)."""
    xml = re.sub(r"<properties>.*?</properties>", " ", xml, flags=re.S)
    xml = re.sub(r'<testsuites [^>]*>|classname="[^"]*"', " ", xml)
    messages = re.findall(r'(?:name|message)="([^"]*)"|>([^<]+)<', xml)
    return html.unescape(" ".join(a or b for a, b in messages))


def test_no_english_is_left_in_a_vietnamese_scorecard(cards: list[Scorecard]) -> None:
    words = _english_words()
    for card in cards:
        pages = {
            "html": _visible(render_html(card, None, "vi")),
            "md": _markdown_prose(render_markdown(card, None, "vi")),
            "junit": _junit_prose(render_junit(card, None, "vi")),
        }
        for fmt, text in pages.items():
            assert not _leaks(text, card, words), (card.run_id, fmt, _leaks(text, card, words))


def test_the_vietnamese_page_names_its_language_and_uses_the_regulators_terms(
    cards: list[Scorecard],
) -> None:
    page = render_html(cards[0], None, "vi")
    assert '<html lang="vi">' in page
    for term in ("Không tuân thủ", "Chưa đủ căn cứ kết luận", "gỡ bỏ", "thời hạn", "24 giờ"):
        assert term in page, term
    assert "Nghị định 147/2024/NĐ-CP" in page  # the pack's own Vietnamese citation
    assert "42,9%" in page and "42.9 %" not in page  # Vietnamese number and percent forms
    assert '<html lang="en">' in render_html(cards[0])


def test_english_built_from_the_figures_is_the_models_text(cards: list[Scorecard]) -> None:
    """The English path shows the model's sentences; built from the figures through the
    catalogs' msgids they must come out the same, or the translations describe other text."""
    en = language("en")
    for card in cards:
        assert standing_text(en, card, built=True) == card.standing_note
        assert overall_rule_text(en, card, built=True) == card.overall_rule
        assert methodology_text(en, card, built=True) == card.methodology
        assert headline_text(en, card) != ""
        assert card.annex is not None
        built = annex_text(en, card, built=True)
        assert built == annex_text(en, card)
        assert built["procedures"] == card.annex.procedures
        if card.look_views is not None:
            assert views_line(card.look_views, en) == views_line(card.look_views)
        for m in card.authority:
            for field in ("name", "source", "note"):
                assert authority_text(en, m, field, built=True) == getattr(m, field)
        for c in card.criteria:
            assert verdict_text(en, card, c, built=True) == c.verdict_reason
            assert sensitivity_text(en, c, built=True) == c.sensitivity
            assert over_removal_text(en, card, c, built=True) == c.over_removal_reason


def test_every_deviation_and_finding_reads_in_vietnamese(cards: list[Scorecard]) -> None:
    vi, words = language("vi"), _english_words()
    card = cards[-1]
    assert card.annex is not None
    for d in card.annex.deviations:
        text = deviation_text(vi, d)
        assert text != d.detail and not _leaks(text, card, words), (d.detail, text)
    page = render_html(card, None, "vi")
    assert "1 giờ 30 phút" in page  # the lateness, read back from the detail, in Vietnamese
    assert "<dt>Góc nhìn khi kiểm tra</dt><dd>do một người quan sát ẩn danh quyết định" in page
    assert "Bản giải trình lý do" in page
    assert "hình ảnh (chưa chứng minh được đã gửi tệp)" in page  # a modality's undelivered media


def test_vietnamese_figures_follow_the_locale() -> None:
    vi = language("vi")
    assert vi.clock(86_400) == "24 giờ"
    assert vi.duration(5_400) == "1 giờ 30 phút"
    assert vi.duration(7 * 86_400) == "7 ngày"
    assert vi.pct(0.717) == "71,7%"
    assert vi.number(0.95, 4) == "0,9500"
    assert vi.timestamp("2026-01-05T10:03:00.000Z") == ("5/1/2026", "10:03:00 UTC")
    en = language("en")
    assert (en.clock(86_400), en.pct(0.717), en.duration(5_400)) == ("24 h", "71.7 %", "1 h 30 min")


def test_an_unknown_language_is_an_input_error(cards: list[Scorecard]) -> None:
    with pytest.raises(InputError, match="'lang' must be one of en, vi"):
        render_html(cards[0], None, "fr")


@pytest.mark.parametrize("width", [200, 80])  # 80: short column names and their legend
def test_the_terminal_summary_speaks_vietnamese(
    cards: list[Scorecard], capsys: pytest.CaptureFixture[str], width: int
) -> None:
    from rich.console import Console

    print_summary(cards[0], Console(width=width, force_terminal=False), lang="vi")
    out = capsys.readouterr().out
    assert "KHÔNG TUÂN THỦ" in out and "Kết luận chung" in out and "24 giờ" in out
    assert not _leaks(out, cards[0], _english_words())


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("submission failed: HTTP 503", "đăng không thành công: HTTP 503"),
        ("the notice could not be filed", "không gửi được thông báo"),
        (
            "no usable look at or after the deadline",
            "không có lần kiểm tra hợp lệ nào tại hoặc sau thời hạn",
        ),
        ("refused at submission", "bị từ chối khi đăng"),
        ("a platform's own words", "a platform's own words"),  # quoted as recorded
    ],
)
def test_probe_reasons_are_translated_and_platform_words_kept(reason: str, expected: str) -> None:
    assert reason_text(language("vi"), reason) == expected
    assert reason_text(language("en"), reason) == reason


def _workspace_run(tmp_path: Path, report_language: str) -> tuple[Path, str]:
    workspace = tmp_path / "ws"
    store = Store(workspace / "audit.sqlite")
    plan = gold_plan(violating=4, controls=1).model_copy(
        update={"report_language": report_language}
    )
    try:
        return workspace, run_on_virtual_clock(store, plan, platform())
    finally:
        store.close()


@pytest.mark.parametrize(
    ("planned", "flag", "expected"), [("en", "vi", "vi"), ("vi", None, "vi"), ("vi", "en", "en")]
)
def test_report_writes_the_language_of_the_flag_else_the_plans(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    planned: str,
    flag: str | None,
    expected: str,
) -> None:
    workspace, run_id = _workspace_run(tmp_path, planned)
    reports = tmp_path / "reports"
    args = ["--workspace", str(workspace), "--reports", str(reports), "report", run_id]
    args += ["--format", "html,md,junit", *(["--lang", flag] if flag else [])]
    with pytest.raises(SystemExit):
        main(args)
    out = capsys.readouterr().out
    page = (reports / run_id / "scorecard.html").read_text(encoding="utf-8")
    assert f'<html lang="{expected}">' in page
    summary = "Kết luận chung" if expected == "vi" else "Overall:"
    assert summary in out
    markdown = (reports / run_id / "scorecard.md").read_text(encoding="utf-8")
    assert ("Bảng đánh giá" in markdown) == (expected == "vi")


def test_an_unknown_lang_flag_is_a_usage_error(tmp_path: Path) -> None:
    workspace, run_id = _workspace_run(tmp_path, "en")
    with pytest.raises(SystemExit) as exited:
        main(["--workspace", str(workspace), "report", run_id, "--lang", "fr"])
    assert exited.value.code == 2


def test_a_pack_translation_without_a_title_is_refused_naming_the_field(tmp_path: Path) -> None:
    import yaml

    from audit.packs import load_pack

    source = ROOT / "probes" / "vn-superstition" / "pack.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["pack"]["translations"] = {"vi": {"instrument": "Nghị định 147/2024/NĐ-CP"}}
    bad = tmp_path / "pack.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InputError, match=r"translations.*title"):
        load_pack(bad)
