"""The controller's statistics: exact one-sided tests, and verdicts from guardrails and limits."""

from __future__ import annotations

import pytest
from scipy import stats

from {{ cookiecutter.package }}.rollout.spec import parse_rollout
from {{ cookiecutter.package }}.rollout.verdict import (
    binomial_greater,
    fisher_greater,
    judge_canary,
    judge_shadow,
)
from {{ cookiecutter.package }}.rollout.window import EDGES_S, Window

SPEC = parse_rollout(
    {
        "steps": [{"weight": 5, "pause_s": 5}, {"weight": 100, "pause_s": 0}],
        "analysis": {"interval_s": 1, "min_requests": 40},
        "guardrails": {"max_error_rate": 0.05, "max_p99_ms": 250},
        "relative": {"max_error_rate_increase": 0.02, "max_p99_ratio": 2.0, "alpha": 0.01},
    }
)


def latency_window(n: int, errors: int, ms: float) -> Window:
    bucket = next(i for i, edge in enumerate(EDGES_S) if edge * 1000 >= ms)
    return Window(n, errors, 0, {bucket: n})


@pytest.mark.parametrize(
    ("k", "n", "p"), [(0, 10, 0.1), (3, 40, 0.05), (12, 40, 0.05), (50, 1000, 0.05)]
)
def test_binomial_tail_matches_scipy(k, n, p):
    assert binomial_greater(k, n, p) == pytest.approx(
        stats.binom.sf(k - 1, n, p), rel=1e-9, abs=1e-15
    )


@pytest.mark.parametrize(
    "table", [(5, 40, 0, 760), (1, 40, 10, 760), (3, 50, 2, 50), (0, 40, 0, 700), (20, 20, 0, 20)]
)
def test_fisher_tail_matches_scipy(table):
    a_err, a_n, b_err, b_n = table
    expected = stats.fisher_exact(
        [[a_err, a_n - a_err], [b_err, b_n - b_err]], alternative="greater"
    ).pvalue
    assert fisher_greater(*table) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_no_verdict_before_the_minimum_number_of_canary_requests():
    verdict = judge_canary(latency_window(39, 39, 5), latency_window(800, 0, 5), SPEC, 0.01)
    assert verdict.result == "inconclusive"
    assert "39 of the 40" in verdict.reason


def test_a_healthy_canary_passes_every_check():
    verdict = judge_canary(latency_window(60, 0, 5), latency_window(900, 1, 5), SPEC, 0.01)
    assert verdict.result == "pass"
    assert {c.name for c in verdict.checks} == {
        "error_rate",
        "p99_ms",
        "error_rate_vs_stable",
        "p99_ratio",
    }


def test_a_canary_that_clearly_errs_more_than_stable_fails_with_evidence():
    verdict = judge_canary(latency_window(60, 12, 5), latency_window(900, 1, 5), SPEC, 0.01)
    assert verdict.result == "fail"
    assert verdict.evidence["fisher_p"] < 1e-6
    assert verdict.evidence["canary"] == {"n": 60, "errors": 12, "rate": 0.2}


def test_one_unlucky_error_is_not_a_failure():
    verdict = judge_canary(latency_window(40, 1, 5), latency_window(800, 0, 5), SPEC, 0.01)
    assert verdict.result != "fail"


def test_a_rate_above_the_limit_without_significance_waits_for_more_data():
    verdict = judge_canary(latency_window(40, 4, 5), latency_window(800, 30, 5), SPEC, 0.001)
    assert verdict.result == "inconclusive"


def test_latency_guardrail_and_ratio_against_stable():
    slow = judge_canary(latency_window(60, 0, 400), latency_window(900, 0, 5), SPEC, 0.01)
    assert slow.result == "fail"
    assert "p99" in slow.reason
    # 40 ms against 5 ms is over 2x, but stable's p99 is under the 25 ms floor: 40/25 < 2
    floored = judge_canary(latency_window(60, 0, 40), latency_window(900, 0, 5), SPEC, 0.01)
    assert floored.result == "pass"
    ratio = judge_canary(latency_window(60, 0, 120), latency_window(900, 0, 50), SPEC, 0.01)
    assert ratio.result == "fail"
    assert "x stable" in ratio.reason


def test_shadow_disagreement_fails_and_agreement_passes():
    base = {"dropped": 0, "timeouts": 0, "diff_sum": 1.0, "rows": 100, "latency_diff_ms": 10.0}
    good = judge_shadow(
        {**base, "compared": 100, "disagree": 2}, latency_window(100, 0, 5), SPEC, 0.01
    )
    assert good.result == "pass"
    assert good.evidence["agreement"] == 0.98
    bad = judge_shadow(
        {**base, "compared": 100, "disagree": 45}, latency_window(100, 0, 5), SPEC, 0.01
    )
    assert bad.result == "fail"
    assert "disagreement" in bad.reason
