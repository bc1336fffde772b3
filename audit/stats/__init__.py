"""Statistics for platform-audit: pure, typed functions of probe counts and removal times.

* :mod:`~audit.stats.binomial` — Clopper–Pearson and Wilson intervals, one-sided exact bounds.
* :mod:`~audit.stats.verdict` — the verdict rule (COMPLIANT / NON_COMPLIANT / INCONCLUSIVE /
  NOT_MEASURED) where the worst case decides: unknown outcomes never help the platform.
* :mod:`~audit.stats.over_removal` — the over-removal finding of a criterion's controls.
* :mod:`~audit.stats.planning` — probes needed, detectable rates, whether a plan can decide.
* :mod:`~audit.stats.survival` — time to removal as interval-censored data (Turnbull NPMLE) with
  bootstrap and exact intervals.

See ``docs/statistics.md`` for the methodology and the simulation study behind it.
"""

from __future__ import annotations

from audit.stats.binomial import (
    Interval,
    clopper_pearson,
    exact_lower_bound,
    exact_upper_bound,
    wilson,
)
from audit.stats.over_removal import (
    DEFAULT_MAX_OVER_REMOVAL,
    OverRemoval,
    OverRemovalVerdict,
    judge_over_removal,
)
from audit.stats.planning import (
    can_reach_non_compliant,
    can_reach_verdict,
    detectable_rate,
    detectable_shortfall,
    max_successes_non_compliant,
    min_successes_compliant,
    probes_needed,
)
from audit.stats.survival import (
    CensoredTime,
    SurvivalEstimate,
    cdf_interval,
    quantile_interval,
    quantile_intervals,
    turnbull,
)
from audit.stats.verdict import (
    DEFAULT_MIN_MEASURED_SHARE,
    Verdict,
    VerdictDecision,
    decide,
    most_unknowns_tolerated,
)

__all__ = [
    "DEFAULT_MAX_OVER_REMOVAL",
    "DEFAULT_MIN_MEASURED_SHARE",
    "CensoredTime",
    "Interval",
    "OverRemoval",
    "OverRemovalVerdict",
    "SurvivalEstimate",
    "Verdict",
    "VerdictDecision",
    "can_reach_non_compliant",
    "can_reach_verdict",
    "cdf_interval",
    "clopper_pearson",
    "decide",
    "detectable_rate",
    "detectable_shortfall",
    "exact_lower_bound",
    "exact_upper_bound",
    "judge_over_removal",
    "max_successes_non_compliant",
    "min_successes_compliant",
    "most_unknowns_tolerated",
    "probes_needed",
    "quantile_interval",
    "quantile_intervals",
    "turnbull",
    "wilson",
]
