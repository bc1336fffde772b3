"""Geometry for the scorecard's inline SVG charts, computed here so templates stay logic-light."""

from __future__ import annotations

from typing import Any

from audit.scorecard import CriterionCard, Scorecard

__all__ = ["chart_context"]

BAR_W, BAR_H = 320, 28
CURVE_W, CURVE_H, PAD = 320, 140, 28


def _x(value: float, width: float = BAR_W) -> float:
    return round(max(0.0, min(1.0, value)) * width, 2)


def _rate_bar(card: CriterionCard) -> dict[str, Any]:
    rate = card.removal_in_deadline
    return {
        "width": BAR_W,
        "height": BAR_H,
        "low": _x(rate.low),
        "high": _x(rate.high),
        "point": _x(rate.rate) if rate.rate is not None else None,
        "threshold": _x(card.threshold),
    }


def _curve(card: CriterionCard) -> dict[str, Any]:
    if not card.curve:
        return {"points": "", "upper": "", "deadline": None, "width": CURVE_W, "height": CURVE_H}
    t_max = max(max(p.t for p in card.curve), card.deadline_seconds) or 1.0
    inner_w, inner_h = CURVE_W - 2 * PAD, CURVE_H - 2 * PAD

    def xy(t: float, f: float) -> str:
        return f"{PAD + t / t_max * inner_w:.1f},{PAD + (1 - f) * inner_h:.1f}"

    low: list[str] = []
    high: list[str] = []
    prev_low = prev_high = 0.0
    for point in card.curve:
        low += [xy(point.t, prev_low), xy(point.t, point.low)]
        high += [xy(point.t, prev_high), xy(point.t, point.high)]
        prev_low, prev_high = point.low, point.high
    low.append(xy(t_max, prev_low))
    high.append(xy(t_max, prev_high))
    return {
        "width": CURVE_W,
        "height": CURVE_H,
        "pad": PAD,
        "points": " ".join(low),
        "upper": " ".join(high),
        "deadline": round(PAD + card.deadline_seconds / t_max * inner_w, 1),
        "bottom": PAD + inner_h,
        "right": PAD + inner_w,
    }


def chart_context(card: Scorecard) -> dict[str, dict[str, Any]]:
    return {c.id: {"bar": _rate_bar(c), "curve": _curve(c)} for c in card.criteria}
