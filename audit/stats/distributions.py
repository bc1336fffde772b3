"""The three distribution functions the statistics use, without importing :mod:`scipy.stats`.

``scipy.stats`` costs about 1.2 s of CPU and 50 MB to import, more than building the
scorecard of a 10,000-probe run; every report needs only a beta quantile, a normal quantile and
a binomial distribution function. Each is evaluated here by the very :mod:`scipy.special`
ufunc that ``scipy.stats`` evaluates for it (``beta.ppf`` → ``_beta_ppf``, ``norm.ppf`` →
``ndtri``, ``binom.cdf`` → ``_binom_cdf``), so every figure is the same to the last bit. A
SciPy without one of these private ufuncs falls back to ``scipy.stats`` itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from scipy import special

__all__ = ["beta_quantile", "binomial_cdf", "normal_quantile"]


def _ufunc(name: str) -> Callable[..., Any] | None:
    found: Callable[..., Any] | None = getattr(
        importlib.import_module("scipy.special._ufuncs"), name, None
    )
    return found


_BETA_PPF = _ufunc("_beta_ppf")
_BINOM_CDF = _ufunc("_binom_cdf")


def beta_quantile(q: float, a: float, b: float) -> float:
    """``scipy.stats.beta.ppf(q, a, b)`` for ``0 < q < 1`` and positive ``a``, ``b``."""
    if _BETA_PPF is None:  # pragma: no cover - a SciPy that names it otherwise
        from scipy.stats import beta

        return float(beta.ppf(q, a, b))
    return float(_BETA_PPF(q, a, b))


def normal_quantile(q: float) -> float:
    """``scipy.stats.norm.ppf(q)`` for ``0 < q < 1``."""
    return float(special.ndtri(q))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """``scipy.stats.binom.cdf(k, n, p)``: ``P(X <= k)`` for ``X ~ Binomial(n, p)``."""
    if _BINOM_CDF is None:  # pragma: no cover - a SciPy that names it otherwise
        from scipy.stats import binom

        return float(binom.cdf(k, n, p))
    return float(_BINOM_CDF(k, n, p))
