"""The distribution functions of audit.stats.distributions give scipy.stats' values exactly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import beta, binom, norm

from audit.stats.distributions import beta_quantile, binomial_cdf, normal_quantile

_PROBABILITY = st.floats(min_value=1e-9, max_value=1 - 1e-9)


@given(q=_PROBABILITY, a=st.integers(1, 200_000), b=st.integers(1, 200_000))
def test_beta_quantile_is_scipy_stats_beta_ppf(q: float, a: int, b: int) -> None:
    assert beta_quantile(q, a, b) == float(beta.ppf(q, a, b))


@given(q=_PROBABILITY)
def test_normal_quantile_is_scipy_stats_norm_ppf(q: float) -> None:
    assert normal_quantile(q) == float(norm.ppf(q))


@given(data=st.data(), n=st.integers(1, 200_000), p=st.floats(0.0, 1.0))
def test_binomial_cdf_is_scipy_stats_binom_cdf(data: st.DataObject, n: int, p: float) -> None:
    k = data.draw(st.integers(0, n))
    assert binomial_cdf(k, n, p) == float(binom.cdf(k, n, p))


def test_a_scorecard_does_not_import_scipy_stats() -> None:
    import subprocess
    import sys

    code = "import sys, audit.workspace; print('scipy.stats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
