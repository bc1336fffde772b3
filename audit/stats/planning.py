"""Sample-size planning for the verdict rule in :mod:`audit.stats.verdict`.

All answers are exact: they use the same one-sided Clopper–Pearson bounds as the verdict and the
exact binomial distribution of the number of removals, so a plan computed here gives exactly the
verdicts :func:`audit.stats.verdict.decide` will give.

The power calculations use the identity ``P(Binomial(n, p) >= k) = I_p(k, n - k + 1)`` (the
regularised incomplete beta function), so "the smallest rate at which the plan passes with
probability ``power``" is a beta quantile, computed as :func:`scipy.stats.beta.ppf` does
(:func:`audit.stats.distributions.beta_quantile`).
"""

from __future__ import annotations

from audit.stats.binomial import exact_lower_bound, exact_upper_bound
from audit.stats.distributions import beta_quantile

__all__ = [
    "can_reach_non_compliant",
    "can_reach_verdict",
    "detectable_rate",
    "detectable_shortfall",
    "max_successes_non_compliant",
    "min_successes_compliant",
    "probes_needed",
]

_MAX_PROBES = 10_000_000


def _check_threshold(threshold: float) -> None:
    if not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
        raise ValueError(f"'threshold' must be a rate strictly between 0 and 1 (got {threshold!r})")


def _check_confidence(confidence: float) -> None:
    if not isinstance(confidence, (int, float)) or not 0.5 <= confidence < 1.0:
        raise ValueError(f"'confidence' must be at least 0.5 and below 1 (got {confidence!r})")


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"'n' must be a positive number of probes (got {n!r})")


def _check_power(power: float) -> None:
    if not isinstance(power, (int, float)) or not 0.0 < power < 1.0:
        raise ValueError(f"'power' must be a probability strictly between 0 and 1 (got {power!r})")


def min_successes_compliant(n: int, threshold: float, confidence: float) -> int | None:
    """Fewest removals in time out of ``n`` that give COMPLIANT, or ``None`` if none do."""
    _check_n(n)
    _check_threshold(threshold)
    _check_confidence(confidence)
    if exact_lower_bound(n, n, confidence) < threshold:
        return None
    low, high = 0, n  # the lower bound rises with k: find the first k that passes
    while low < high:
        mid = (low + high) // 2
        if exact_lower_bound(mid, n, confidence) >= threshold:
            high = mid
        else:
            low = mid + 1
    return low


def max_successes_non_compliant(n: int, threshold: float, confidence: float) -> int | None:
    """Most removals in time out of ``n`` that still give NON_COMPLIANT, or ``None``."""
    _check_n(n)
    _check_threshold(threshold)
    _check_confidence(confidence)
    if exact_upper_bound(0, n, confidence) >= threshold:
        return None
    low, high = 0, n  # the upper bound rises with k: find the last k that fails
    while low < high:
        mid = (low + high + 1) // 2
        if exact_upper_bound(mid, n, confidence) < threshold:
            low = mid
        else:
            high = mid - 1
    return low


def can_reach_verdict(n: int, threshold: float, confidence: float) -> bool:
    """Whether ``n`` probes can give COMPLIANT at all (``False`` when even n/n cannot)."""
    return min_successes_compliant(n, threshold, confidence) is not None


def can_reach_non_compliant(n: int, threshold: float, confidence: float) -> bool:
    """Whether ``n`` probes can give NON_COMPLIANT at all (``False`` when even 0/n cannot)."""
    return max_successes_non_compliant(n, threshold, confidence) is not None


def probes_needed(threshold: float, confidence: float, allowed_failures: int = 0) -> int:
    """Smallest ``n`` such that ``n - allowed_failures`` removals out of ``n`` give COMPLIANT.

    For threshold 0.95 at confidence 0.95 this is 59, 93 and 124 probes for 0, 1 and 2 allowed
    failures (zero failures: the smallest n with 0.05 ** (1/n) >= 0.95).
    """
    _check_threshold(threshold)
    _check_confidence(confidence)
    if isinstance(allowed_failures, bool) or not isinstance(allowed_failures, int):
        raise ValueError(f"'allowed_failures' must be an integer (got {allowed_failures!r})")
    if allowed_failures < 0:
        raise ValueError(f"'allowed_failures' must be 0 or more (got {allowed_failures})")

    def passes(n: int) -> bool:
        return exact_lower_bound(n - allowed_failures, n, confidence) >= threshold

    low = allowed_failures + 1  # the bound rises with n for a fixed number of failures
    high = low
    while not passes(high):
        low = high + 1
        high *= 2
        if high > _MAX_PROBES:
            raise ValueError(
                f"no plan of up to {_MAX_PROBES} probes reaches threshold {threshold} "
                f"at confidence {confidence}"
            )
    while low < high:
        mid = (low + high) // 2
        if passes(mid):
            high = mid
        else:
            low = mid + 1
    return low


def detectable_rate(n: int, threshold: float, confidence: float, power: float = 0.8) -> float:
    """Smallest true rate at which ``n`` probes say COMPLIANT with probability ``>= power``.

    The answer is a true removal-in-time rate above ``threshold`` (or ``threshold`` itself in the
    degenerate case where the plan already passes that often at the threshold). It raises
    ``ValueError`` when ``n`` probes can never give COMPLIANT (see :func:`can_reach_verdict`).
    """
    _check_power(power)
    k = min_successes_compliant(n, threshold, confidence)
    if k is None:
        raise ValueError(
            f"{n} probes can never show compliance with threshold {threshold} at confidence "
            f"{confidence}; at least {probes_needed(threshold, confidence)} are needed"
        )
    # P(K >= k | p) = I_p(k, n - k + 1) rises with p; solve I_p = power.
    rate = beta_quantile(power, k, n - k + 1) if k > 0 else 0.0
    return max(rate, float(threshold))


def detectable_shortfall(n: int, threshold: float, confidence: float, power: float = 0.8) -> float:
    """Largest true rate at which ``n`` probes say NON_COMPLIANT with probability ``>= power``.

    The answer is a true removal-in-time rate below ``threshold``: a platform that removes that
    share or less is caught with at least the given power. It raises ``ValueError`` when ``n``
    probes can never give NON_COMPLIANT (see :func:`can_reach_non_compliant`).
    """
    _check_power(power)
    k = max_successes_non_compliant(n, threshold, confidence)
    if k is None:
        raise ValueError(
            f"{n} probes can never show non-compliance with threshold {threshold} at "
            f"confidence {confidence}"
        )
    # P(K <= k | p) = 1 - I_p(k + 1, n - k) falls with p; solve I_p = 1 - power.
    rate = beta_quantile(1.0 - power, k + 1, n - k) if k < n else 1.0
    return min(rate, float(threshold))
