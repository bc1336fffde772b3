"""The JUnit scorecard: one test case per criterion, for CI systems that gate on test results.

Messages are in the scorecard's language; names, classes and properties are the model's ids.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from audit.i18n import N_, Language, language
from audit.report.escape import inert
from audit.report.renderer import TextRenderer
from audit.scorecard import Scorecard
from audit.scorecard_model import CriterionCard
from audit.scorecard_text import (
    code,
    criterion_title,
    over_removal_text,
    sensitivity_text,
    verdict_text,
)

__all__ = ["RENDERER", "junit_xml", "render_junit"]

_ENGLISH = language("en")


def _deadline_text(lang: Language, card: Scorecard, c: CriterionCard) -> str:
    if lang.code == "en":
        return c.deadline_text
    text = lang.duration(c.deadline_seconds)
    if card.time_scale == 1:
        return text
    return text + lang.format(N_(" (compressed from %(deadline)s)"), deadline=c.deadline)


def _case_message(card: Scorecard, index: int, lang: Language = _ENGLISH) -> str:
    c = card.criteria[index]
    rate = c.removal_in_deadline
    level = lang.pct(c.confidence, 0)
    bounds = (
        lang.format(
            N_("one-sided %(level)s bounds %(lower)s to %(upper)s"),
            level=level,
            lower=lang.pct(c.one_sided_lower),
            upper=lang.pct(c.one_sided_upper),
        )
        if c.one_sided_lower is not None and c.one_sided_upper is not None
        else lang.gettext(N_("no bounds"))
    )
    return inert(
        lang.format(
            N_(
                "%(verdict)s: %(successes)s/%(n)s removed within %(deadline)s (%(rate)s; "
                "%(bounds)s; required %(threshold)s)"
            ),
            verdict=code(lang, str(c.verdict)),
            successes=rate.successes,
            n=rate.n,
            deadline=_deadline_text(lang, card, c),
            rate=lang.pct(rate.rate),
            bounds=bounds,
            threshold=lang.pct(c.threshold),
        )
    )


def _junit_properties(card: Scorecard) -> ET.Element:
    props = ET.Element("properties")
    for name, value in (
        ("run_id", card.run_id),
        ("plan", card.plan_name),
        ("target", card.target["name"]),
        ("pack", f"{card.pack['id']} {card.pack['version']}"),
        ("overall_verdict", str(card.overall_verdict)),
        ("standing", str(card.standing)),
        ("exit_code", str(card.exit_code)),
        ("time_scale", f"{card.time_scale:g}"),
        ("period_start_utc", card.period_start_utc or ""),
        ("period_end_utc", card.period_end_utc or ""),
    ):
        ET.SubElement(props, "property", name=name, value=inert(value))
    return props


def junit_xml(card: Scorecard, lang: str = "en") -> str:
    """One test case per criterion: failure for NON_COMPLIANT or an over-removal finding,
    skipped for INCONCLUSIVE, error for NOT_MEASURED; a scorecard that is not final names its
    standing in the suite's name and properties."""
    tongue = language(lang)
    verdicts = [str(c.verdict) for c in card.criteria]
    standing = "" if card.standing == "FINAL" else f" [{code(tongue, str(card.standing))}]"
    title = tongue.format(
        N_("platform-audit %(pack)s on %(platform)s"),
        pack=card.pack["id"],
        platform=card.target["name"],
    )
    suite = ET.Element(
        "testsuite",
        name=inert(f"{title}{standing}"),
        tests=str(len(verdicts)),
        failures=str(sum(1 for c in card.criteria if c.fails)),
        errors=str(verdicts.count("NOT_MEASURED")),
        skipped=str(verdicts.count("INCONCLUSIVE")),
        timestamp=(card.period_start_utc or "")[:19],
    )
    suite.append(_junit_properties(card))
    for index, c in enumerate(card.criteria):
        title = criterion_title(tongue, c)
        case = ET.SubElement(
            suite, "testcase", classname=inert(card.pack["id"]), name=inert(f"{c.id} {title}")
        )
        message = _case_message(card, index, tongue)
        reason = inert(
            f"{verdict_text(tongue, card, c)} {sensitivity_text(tongue, c)} "
            f"{over_removal_text(tongue, card, c)}"
        )
        if c.verdict == "NON_COMPLIANT":
            ET.SubElement(case, "failure", message=message, type="NON_COMPLIANT").text = reason
        elif c.over_removal_verdict == "EXCESSIVE":
            over = inert(f"OVER_REMOVAL: {over_removal_text(tongue, card, c)}")
            ET.SubElement(case, "failure", message=over, type="OVER_REMOVAL").text = reason
        elif c.verdict == "INCONCLUSIVE":
            ET.SubElement(case, "skipped", message=message)
        elif c.verdict == "NOT_MEASURED":
            ET.SubElement(case, "error", message=message, type="NOT_MEASURED").text = reason
        ET.SubElement(case, "system-out").text = f"{message}\n{reason}"
    suites = ET.Element(
        "testsuites",
        name="platform-audit",
        tests=suite.get("tests", "0"),
        failures=suite.get("failures", "0"),
        errors=suite.get("errors", "0"),
        skipped=suite.get("skipped", "0"),
    )
    suites.append(suite)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def render_junit(card: Scorecard, extra: Path | None = None, lang: str = "en") -> str:
    """One test case per criterion (see :func:`junit_xml`); no template is used."""
    del extra
    return junit_xml(card, lang)


RENDERER = TextRenderer("junit", "junit.xml", render_junit)
