"""Geometry for the inline SVG charts, computed here so templates only draw what they are given.

Four kinds of chart, each a frozen dataclass of plain numbers and labels:

* :class:`RateBar` — a removal rate with its verdict bounds against the threshold, on a
  :class:`RateAxis` shared by every bar of a page so bars can be compared by eye;
* :class:`CurveChart` — the share of violating probes removed over time (Turnbull bounds as a
  band), the deadline and the required share marked, with a text table of the same figures;
* :class:`OutcomeBar` — violating probes by outcome as one stacked bar;
* :class:`TrendChart` — one criterion's rate and bounds over a plan's runs, the threshold across.

Geometry only: a chart is made from the figures it draws (a criterion's curve, counts, rates)
and knows nothing of the page that shows it (:mod:`audit.report.page`) or of any format.

Times on axes are shown in platform time: a run on a compressed clock (``time_scale`` > 1) is
drawn as if it had run at full length, which is what the deadlines in the pack mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from audit.i18n import N_, Language, language
from audit.scorecard import CriterionCard, CurvePoint

__all__ = [
    "CurveChart",
    "OutcomeBar",
    "RateAxis",
    "RateBar",
    "Tick",
    "TrendChart",
    "clock_text",
    "curve_chart",
    "outcome_bar",
    "rate_axis",
    "rate_bar",
    "share_at",
    "trend_chart",
]

OUTCOME_COLOURS = {
    "removed_in_time": "#1b7f3b",
    "rejected_at_submission": "#0f5a29",
    "removed_late": "#d9822b",
    "survived": "#b3261e",
    "inconclusive": "#8c8c8c",
    "pending": "#c9c9c9",
}


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class RateAxis:
    """A horizontal rate axis from ``low`` to 100 %, ``width`` pixels long."""

    low: float
    width: float
    ticks: tuple[Tick, ...]

    def x(self, value: float) -> float:
        span = 1.0 - self.low
        return round(max(0.0, min(1.0, (value - self.low) / span)) * self.width, 1)


def rate_axis(
    values: Iterable[float | None], width: float = 420, lang: Language | None = None
) -> RateAxis:
    """An axis that starts at a round 10 % below every value given, so differences show."""
    lang = lang or language("en")
    present = [v for v in values if v is not None and not math.isnan(v)]
    smallest = max(0.0, min(present, default=0.0) - 0.02)
    span = 1.0 - math.floor(smallest * 10) / 10
    step = 0.05 if span <= 0.3 else (0.1 if span <= 0.6 else 0.2)
    count = math.floor(smallest / step + 1e-9)  # ticks below the axis start
    low = round(count * step, 10)
    axis = RateAxis(low=low, width=width, ticks=())
    ticks = tuple(
        Tick(axis.x(k * step), lang.pct(k * step, 0)) for k in range(count, round(1.0 / step) + 1)
    )
    return RateAxis(low=low, width=width, ticks=ticks)


@dataclass(frozen=True)
class RateBar:
    width: float
    lower: float | None  # x of the lower verdict bound
    upper: float | None
    point: float | None
    threshold: float
    ticks: tuple[Tick, ...]


def rate_bar(
    axis: RateAxis,
    rate: float | None,
    lower: float | None,
    upper: float | None,
    threshold: float,
) -> RateBar:
    return RateBar(
        width=axis.width,
        lower=None if lower is None else axis.x(lower),
        upper=None if upper is None else axis.x(upper),
        point=None if rate is None else axis.x(rate),
        threshold=axis.x(threshold),
        ticks=axis.ticks,
    )


@dataclass(frozen=True)
class ShareAt:
    """The share removed by a moment, as Turnbull bounds (equal when the data pin it down)."""

    label: str
    low: float
    high: float


def share_at(curve: Sequence[CurvePoint], t: float) -> tuple[float, float]:
    """Bounds on the share removed by ``t``: the estimate is non-decreasing between points."""
    lows = [p.low for p in curve if p.t <= t]
    highs = [p.high for p in curve if p.t >= t]
    low = max(lows, default=0.0)
    high = min(highs, default=max((p.high for p in curve), default=1.0))
    return low, max(low, high)


@dataclass(frozen=True)
class CurveChart:
    width: int
    height: int
    left: int
    top: int
    right: float
    bottom: float
    band: str  # polygon between the upper and lower step functions
    lower: str  # polyline
    upper: str  # polyline
    deadline_x: float
    threshold_y: float
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    shares: tuple[ShareAt, ...]
    axis_title: str


_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def clock_text(seconds: float) -> str:
    """A moment on a deadline's clock in the unit a legal deadline uses: ``6 h``, ``36 h``,
    ``7 d``, ``45 min``."""
    for unit, size, limit in (("d", 86400.0, 3 * 86400.0), ("h", 3600.0, 3600.0)):
        if seconds >= limit:
            return f"{seconds / size:.3g} {unit}"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def _steps(points: Sequence[tuple[float, float]], t_max: float) -> list[tuple[float, float]]:
    """A right-continuous step function through ``points`` (t, share), drawn up to ``t_max``."""
    path: list[tuple[float, float]] = []
    previous = 0.0
    for t, share in points:
        path += [(t, previous), (t, share)]
        previous = share
    path.append((t_max, previous))
    return path


def curve_chart(
    card: CriterionCard, time_scale: float, lang: Language | None = None
) -> CurveChart | None:
    if not card.curve:
        return None
    lang = lang or language("en")
    width, height, left, top, right_pad, bottom_pad = 460, 230, 46, 18, 16, 44
    deadline = card.deadline_seconds
    t_max = deadline * (1.5 if max(p.t for p in card.curve) > deadline * 1.25 else 1.25)
    inner_w, inner_h = width - left - right_pad, height - top - bottom_pad

    def px(t: float) -> float:
        return round(left + min(t, t_max) / t_max * inner_w, 1)

    def py(share: float) -> float:
        return round(top + (1.0 - share) * inner_h, 1)

    def points(steps: list[tuple[float, float]]) -> list[str]:
        return [f"{px(t)},{py(s)}" for t, s in steps]

    low = points(_steps([(p.t, p.low) for p in card.curve], t_max))
    high = points(_steps([(p.t, p.high) for p in card.curve], t_max))
    scaled = time_scale != 1
    return CurveChart(
        width=width,
        height=height,
        left=left,
        top=top,
        right=left + inner_w,
        bottom=top + inner_h,
        band=" ".join(high + low[::-1]),
        lower=" ".join(low),
        upper=" ".join(high),
        deadline_x=px(deadline),
        threshold_y=py(card.threshold),
        x_ticks=tuple(
            Tick(px(f * deadline), "0" if f == 0 else lang.clock(f * deadline * time_scale))
            for f in _FRACTIONS
            if f * deadline <= t_max + 1e-9
        ),
        y_ticks=tuple(Tick(py(s), lang.pct(s, 0)) for s in (0.0, 0.25, 0.5, 0.75, 1.0)),
        shares=_shares(card, time_scale, lang),
        axis_title=lang.gettext(N_("time after the deadline started"))
        + (
            lang.format(N_(" (platform time: run time × %(scale)s)"), scale=f"{time_scale:g}")
            if scaled
            else ""
        ),
    )


def _shares(card: CriterionCard, time_scale: float, lang: Language) -> tuple[ShareAt, ...]:
    rows: list[ShareAt] = []
    for fraction in (0.25, 0.5, 0.75, 1.0):
        t = fraction * card.deadline_seconds
        low, high = share_at(card.curve, t)
        label = lang.clock(t * time_scale)
        if fraction == 1.0:
            label += lang.gettext(N_(" (deadline)"))
        rows.append(ShareAt(label=label, low=low, high=high))
    return tuple(rows)


@dataclass(frozen=True)
class Segment:
    outcome: str
    count: int
    x: float
    width: float
    colour: str


@dataclass(frozen=True)
class OutcomeBar:
    width: float
    total: int
    segments: tuple[Segment, ...]


def outcome_bar(counts: dict[str, int], width: float = 420) -> OutcomeBar:
    total = sum(counts.values())
    segments: list[Segment] = []
    x = 0.0
    for outcome, count in counts.items():
        if count <= 0:
            continue
        w = round(count / total * width, 1)
        colour = OUTCOME_COLOURS.get(outcome, "#5f6368")
        segments.append(
            Segment(outcome=outcome, count=count, x=round(x, 1), width=w, colour=colour)
        )
        x += w
    return OutcomeBar(width=width, total=total, segments=tuple(segments))


# Trend: one criterion's rate over a plan's runs -------------------------------------------------
@dataclass(frozen=True)
class TrendPoint:
    x: float
    y: float | None
    y_lower: float | None
    y_upper: float | None
    verdict: str
    label: str


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    points: tuple[TrendPoint, ...]
    line: str
    threshold_y: float
    y_ticks: tuple[Tick, ...]


TrendInput = tuple[
    float | None, float | None, float | None, str, str
]  # rate, lo, hi, verdict, label


def trend_chart(points: Sequence[TrendInput], threshold: float) -> TrendChart:
    """Rates with their verdict bounds, one column per run, the threshold across."""
    width, height, left, top, right, bottom = 460, 200, 46, 14, 444, 166
    axis = rate_axis([v for p in points for v in p[:2]] + [threshold], width=bottom - top)

    def y(value: float | None) -> float | None:
        return None if value is None else round(bottom - axis.x(value), 1)

    step = (right - left) / max(1, len(points))
    drawn = tuple(
        TrendPoint(
            x=round(left + step * (i + 0.5), 1),
            y=y(rate),
            y_lower=y(lower),
            y_upper=y(upper),
            verdict=verdict,
            label=label,
        )
        for i, (rate, lower, upper, verdict, label) in enumerate(points)
    )
    line = " ".join(f"{p.x},{p.y}" for p in drawn if p.y is not None)
    ticks = tuple(Tick(round(bottom - t.x, 1), t.label) for t in axis.ticks)
    return TrendChart(
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        points=drawn,
        line=line,
        threshold_y=y(threshold) or bottom,
        y_ticks=ticks,
    )
