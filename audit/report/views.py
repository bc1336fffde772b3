"""The comparison, trend and diff views (:mod:`audit.compare`) as HTML, Markdown or JSON.

Their templates are ``templates/<kind>.<format>.j2``; a diff has no HTML. The rate bars of a
comparison share one axis, and a trend draws one chart per criterion
(:mod:`audit.report.charts`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.compare import Comparison, RunDiff, Trend
from audit.errors import InputError
from audit.report.charts import rate_axis, rate_bar, trend_chart
from audit.report.escape import json_text
from audit.report.templating import minute_label, render_page

__all__ = ["VIEW_FORMATS", "comparison_context", "render_view", "trend_context"]

VIEW_FORMATS = ("html", "md", "json")


def comparison_context(comparison: Comparison) -> dict[str, Any]:
    cells = [cell for c in comparison.criteria for cell in c.cells]
    values = [v for cell in cells for v in (cell.lower, cell.rate, cell.threshold)]
    axis = rate_axis(values, width=240)
    bars = {
        (c.criterion_id, cell.run_id): rate_bar(
            axis, cell.rate, cell.lower, cell.upper, c.threshold
        )
        for c in comparison.criteria
        for cell in c.cells
    }
    return {"view": comparison, "axis": axis, "bars": bars}


def trend_context(trend: Trend) -> dict[str, Any]:
    charts = {
        s.criterion_id: trend_chart(
            [
                (p.rate, p.lower, p.upper, str(p.verdict), minute_label(p.period_start_utc))
                for p in s.points
            ],
            s.threshold,
        )
        for s in trend.series
    }
    return {"view": trend, "trend_charts": charts}


def render_view(view: Comparison | Trend | RunDiff, fmt: str, extra: Path | None = None) -> str:
    """A comparison, trend or diff as ``html``, ``md`` or ``json``."""
    if fmt == "json":
        return json_text(view.model_dump(mode="json"))
    if fmt not in VIEW_FORMATS or (fmt == "html" and isinstance(view, RunDiff)):
        raise InputError(f"--format must be among {', '.join(VIEW_FORMATS)} (got {fmt})")
    if isinstance(view, Comparison):
        context = comparison_context(view)
    elif isinstance(view, Trend):
        context = trend_context(view)
    else:
        context = {"view": view}
    return render_page(f"{view.kind}.{fmt}.j2", extra, **context)
