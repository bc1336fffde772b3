"""Sample-size planning and the ``plan-size`` command."""

from __future__ import annotations

import math

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom

from audit.commands.plan_size import plan_size
from audit.stats.binomial import exact_lower_bound
from audit.stats.planning import (
    can_reach_non_compliant,
    can_reach_verdict,
    detectable_rate,
    detectable_shortfall,
    max_successes_non_compliant,
    min_successes_compliant,
    probes_needed,
)
from audit.stats.verdict import Verdict, decide


@pytest.mark.parametrize(("failures", "needed"), [(0, 59), (1, 93), (2, 124)])
def test_probes_needed_at_095_095(failures: int, needed: int) -> None:
    assert probes_needed(0.95, 0.95, failures) == needed


def test_zero_failures_matches_the_closed_form() -> None:
    # 0.05 ** (1/n) >= 0.95  <=>  n >= log(0.05) / log(0.95) = 58.4
    for threshold, confidence in [(0.95, 0.95), (0.9, 0.99), (0.99, 0.95), (0.5, 0.9)]:
        expected = math.ceil(math.log(1 - confidence) / math.log(threshold))
        assert probes_needed(threshold, confidence) == expected


@given(
    st.floats(min_value=0.05, max_value=0.98),
    st.floats(min_value=0.5, max_value=0.995),
    st.integers(min_value=0, max_value=5),
)
def test_probes_needed_is_the_smallest_plan(
    threshold: float, confidence: float, failures: int
) -> None:
    n = probes_needed(threshold, confidence, failures)
    assert decide(n - failures, n, 0, threshold, confidence).verdict is Verdict.COMPLIANT
    if n - 1 > failures:
        smaller = decide(n - 1 - failures, n - 1, 0, threshold, confidence)
        assert smaller.verdict is not Verdict.COMPLIANT


def test_can_reach_verdict() -> None:
    assert not can_reach_verdict(58, 0.95, 0.95)
    assert can_reach_verdict(59, 0.95, 0.95)
    assert can_reach_non_compliant(1, 0.95, 0.5)
    assert not can_reach_non_compliant(1, 0.95, 0.95)  # 0/1 has upper bound 0.95


def test_success_cut_offs_agree_with_the_verdict() -> None:
    n = 124
    k_pass = min_successes_compliant(n, 0.95, 0.95)
    k_fail = max_successes_non_compliant(n, 0.95, 0.95)
    assert k_pass == 122
    assert k_fail is not None
    for k in range(n + 1):
        verdict = decide(k, n, 0, 0.95, 0.95).verdict
        if k >= k_pass:
            assert verdict is Verdict.COMPLIANT
        elif k <= k_fail:
            assert verdict is Verdict.NON_COMPLIANT
        else:
            assert verdict is Verdict.INCONCLUSIVE
    assert min_successes_compliant(58, 0.95, 0.95) is None


def test_detectable_rate_for_59_probes_is_the_closed_form() -> None:
    # 59 probes pass only on 59/59, which happens with probability p ** 59.
    assert detectable_rate(59, 0.95, 0.95, power=0.8) == pytest.approx(0.8 ** (1 / 59))


@given(
    st.integers(min_value=59, max_value=600),
    st.floats(min_value=0.5, max_value=0.95),
)
def test_detectable_rate_has_the_stated_power(n: int, power: float) -> None:
    rate = detectable_rate(n, 0.95, 0.95, power)
    k = min_successes_compliant(n, 0.95, 0.95)
    assert k is not None
    assert 0.95 <= rate <= 1.0
    assert binom.sf(k - 1, n, rate) == pytest.approx(power, abs=1e-9)
    # Slightly below, the plan passes less often than asked.
    if rate - 1e-4 > 0.95:
        assert binom.sf(k - 1, n, rate - 1e-4) < power


@given(
    st.integers(min_value=20, max_value=600),
    st.floats(min_value=0.5, max_value=0.95),
)
def test_detectable_shortfall_has_the_stated_power(n: int, power: float) -> None:
    rate = detectable_shortfall(n, 0.95, 0.95, power)
    k = max_successes_non_compliant(n, 0.95, 0.95)
    assert k is not None
    assert 0.0 <= rate <= 0.95
    assert binom.cdf(k, n, rate) == pytest.approx(power, abs=1e-9)


def test_detectable_rates_shrink_towards_the_threshold_as_n_grows() -> None:
    excess = [detectable_rate(n, 0.95, 0.95) - 0.95 for n in (59, 200, 1000, 5000)]
    shortfall = [0.95 - detectable_shortfall(n, 0.95, 0.95) for n in (59, 200, 1000, 5000)]
    assert excess == sorted(excess, reverse=True)
    assert shortfall == sorted(shortfall, reverse=True)
    assert excess[-1] < 0.01
    assert shortfall[-1] < 0.01


def test_impossible_plans_raise_a_clear_error() -> None:
    with pytest.raises(ValueError, match="58 probes can never show compliance"):
        detectable_rate(58, 0.95, 0.95)
    with pytest.raises(ValueError, match="1 probes can never show non-compliance"):
        detectable_shortfall(1, 0.95, 0.95)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: probes_needed(1.0, 0.95), "'threshold' must be a rate strictly between 0 and 1"),
        (lambda: probes_needed(0.95, 0.2), "'confidence' must be at least 0.5"),
        (lambda: probes_needed(0.95, 0.95, -1), "'allowed_failures' must be 0 or more"),
        (lambda: can_reach_verdict(0, 0.95, 0.95), "'n' must be a positive number of probes"),
        (lambda: detectable_rate(100, 0.95, 0.95, 1.0), "'power' must be a probability"),
    ],
)
def test_bad_input_is_refused(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=message):
        call()


def test_lower_bound_used_by_planning_is_the_verdict_bound() -> None:
    n = probes_needed(0.9, 0.99, 3)
    assert exact_lower_bound(n - 3, n, 0.99) >= 0.9
    assert exact_lower_bound(n - 4, n - 1, 0.99) < 0.9


# --- the plan-size command -------------------------------------------------------------------


def test_plan_size_is_a_click_command_with_help() -> None:
    assert isinstance(plan_size, click.Command)
    assert plan_size.name == "plan-size"
    result = CliRunner().invoke(plan_size, ["--help"])
    assert result.exit_code == 0
    for option in ("--threshold", "--confidence", "--failures", "--probes", "--power"):
        assert option in result.output


def test_plan_size_default_table() -> None:
    result = CliRunner().invoke(plan_size, [])
    assert result.exit_code == 0
    assert "| 0 | 59 |" in result.output
    assert "| 1 |" not in result.output


def test_plan_size_repeated_failures() -> None:
    args = ["--failures", "0", "--failures", "1", "--failures", "2"]
    result = CliRunner().invoke(plan_size, args)
    assert result.exit_code == 0
    rows = [line for line in result.output.splitlines() if line.startswith("| ")]
    assert rows[2:] == ["| 0 | 59 |", "| 1 | 93 |", "| 2 | 124 |"]


def test_plan_size_failure_range_and_other_threshold() -> None:
    result = CliRunner().invoke(
        plan_size, ["--threshold", "0.9", "--confidence", "0.99", "--failures", "0-1"]
    )
    assert result.exit_code == 0
    assert f"| 0 | {probes_needed(0.9, 0.99, 0)} |" in result.output
    assert f"| 1 | {probes_needed(0.9, 0.99, 1)} |" in result.output
    assert "threshold 0.9, confidence 0.99" in result.output


def test_plan_size_with_an_existing_plan() -> None:
    result = CliRunner().invoke(plan_size, ["--probes", "100"])
    assert result.exit_code == 0
    assert f"{detectable_rate(100, 0.95, 0.95):.4f} or more" in result.output
    assert f"{detectable_shortfall(100, 0.95, 0.95):.4f} or less" in result.output


def test_plan_size_with_a_plan_too_small_to_pass() -> None:
    result = CliRunner().invoke(plan_size, ["--probes", "20"])
    assert result.exit_code == 0
    assert "can never say COMPLIANT" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "1.5"], "Invalid value for '--threshold'"),
        (["--confidence", "0.3"], "Invalid value for '--confidence'"),
        (["--failures", "two"], "Invalid value for '--failures'"),
        (["--failures", "3-1"], "low end first"),
        (["--probes", "0"], "Invalid value for '--probes'"),
    ],
)
def test_plan_size_bad_flags_exit_2_without_traceback(args: list[str], message: str) -> None:
    result = CliRunner().invoke(plan_size, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
