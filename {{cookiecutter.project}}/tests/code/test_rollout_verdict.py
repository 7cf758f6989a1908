"""The local evaluator: each declared check scores a window and classifies it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from {{ cookiecutter.package }}.config import parse_rollout
from {{ cookiecutter.package }}.rollout.policy import (
    Counts,
    build_policy,
    looks_in,
    rate_z,
    sequential_z,
)
from {{ cookiecutter.package }}.rollout.verdict import canary_counts, judge, shadow_counts
from {{ cookiecutter.package }}.rollout.window import EDGES_S, Window

SPEC = parse_rollout(
    {
        "steps": [{"weight": 5, "pause_s": 5}, {"weight": 100, "pause_s": 0}],
        "analysis": {"interval_s": 1, "min_requests": 40},
        "guardrails": {"max_error_rate": 0.05, "max_p99_ms": 250},
        "relative": {"max_error_rate_increase": 0.02, "max_p99_ratio": 2.0, "alpha": 0.01},
        "shadow": {"timeout_ms": 300},
    }
)
POLICY = build_policy(SPEC, looks_in(5, 1))


def counts(n: int, errors: int, ms: float, rejected: int = 0) -> Counts:
    bucket = next(i for i, edge in enumerate(EDGES_S) if edge * 1000 >= ms)
    return canary_counts(Window(n + rejected, errors, rejected, {bucket: n}), "excluded")


def test_the_bonferroni_z_is_scipys_at_the_corrected_level():
    looks = looks_in(5, 1)
    spec = SPEC.model_copy(
        update={"analysis": SPEC.analysis.model_copy(update={"correction": "bonferroni"})}
    )
    policy = build_policy(spec, looks)
    assert policy.alpha_per_look(looks) == pytest.approx(0.01 / looks)
    assert policy.z_critical(looks) == pytest.approx(stats.norm.ppf(1 - 0.01 / looks))
    assert rate_z(12, 40, 0.05) == pytest.approx((0.3 - 0.05) / math.sqrt(0.05 * 0.95 / 40))


@pytest.mark.parametrize("looks", [2, 3, 5])
def test_the_sequential_z_keeps_the_steps_false_fail_rate_at_alpha(looks):
    """The z of growing windows at equal shares of traffic are correlated sqrt(i / j); with
    the sequential bound, scipy's multivariate normal says a healthy canary crosses it at
    some look with chance alpha (not more), and the bound is below Bonferroni's."""
    z = build_policy(SPEC, looks).z_critical(looks)
    i = np.arange(1, looks + 1)
    correlation = np.sqrt(np.minimum.outer(i, i) / np.maximum.outer(i, i))
    crossed = 1 - stats.multivariate_normal(np.zeros(looks), correlation).cdf(np.full(looks, z))
    assert 0.0095 <= crossed <= 0.01
    assert stats.norm.isf(0.01) < z < stats.norm.isf(0.01 / looks)
    # and for a long step, where Bonferroni's price is highest (a simulation of the walk)
    walks = np.cumsum(np.random.default_rng(5).standard_normal((40_000, 60)), axis=1)
    peak = (walks / np.sqrt(np.arange(1, 61))).max(axis=1)
    assert (peak > sequential_z(0.01, 60)).mean() == pytest.approx(0.01, abs=0.0025)


def test_no_verdict_before_the_minimum_number_of_canary_requests():
    verdict = judge(POLICY, "canary", counts(39, 39, 5), counts(800, 0, 5))
    assert verdict.result == "inconclusive"
    assert verdict.results()["canary-requests"] == "inconclusive"
    assert verdict.results()["error-rate"] == "inconclusive"


def test_a_healthy_canary_passes_every_check():
    verdict = judge(POLICY, "canary", counts(60, 0, 5), counts(900, 1, 5))
    assert verdict.result == "pass"
    assert set(verdict.results()) == {
        "canary-requests",
        "error-rate",
        "p99-latency-ms",
        "error-rate-increase",
        "p99-ratio",
    }


def test_a_canary_that_clearly_errs_fails_with_evidence():
    verdict = judge(POLICY, "canary", counts(60, 18, 5), counts(900, 1, 5))
    assert verdict.result == "fail"
    assert verdict.results()["error-rate"] == "fail"
    assert verdict.evidence["canary"] == {
        "n": 60,
        "errors": 18,
        "p99_ms": pytest.approx(5, rel=0.1),
    }


def test_one_unlucky_error_is_not_a_failure():
    assert judge(POLICY, "canary", counts(40, 1, 5), counts(800, 0, 5)).result != "fail"


def test_a_rate_above_the_limit_without_significance_waits_for_more_data():
    verdict = judge(POLICY, "canary", counts(40, 4, 5), counts(800, 30, 5))
    assert verdict.result == "inconclusive"
    assert verdict.results()["error-rate"] == "inconclusive"


def test_client_errors_are_left_out_of_the_judged_requests():
    many_4xx = counts(40, 0, 5, rejected=400)
    assert many_4xx.n == 40
    assert judge(POLICY, "canary", many_4xx, counts(800, 0, 5)).result == "pass"


def test_latency_guardrail_and_ratio_against_stable():
    slow = judge(POLICY, "canary", counts(60, 0, 400), counts(900, 0, 5))
    assert slow.results()["p99-latency-ms"] == "fail"
    # 40 ms against 5 ms is over 2x, but stable's p99 is under the 25 ms floor: 40/25 < 2
    assert judge(POLICY, "canary", counts(60, 0, 40), counts(900, 0, 5)).result == "pass"
    ratio = judge(POLICY, "canary", counts(60, 0, 120), counts(900, 0, 50))
    assert ratio.results()["p99-ratio"] == "fail"


def shadow(agree: int, disagree: int, error: int = 0, timeout: int = 0) -> Counts:
    return shadow_counts(
        {"outcomes": {"agree": agree, "disagree": disagree, "error": error, "timeout": timeout}}
    )


def test_shadow_disagreement_fails_and_agreement_passes():
    assert judge(POLICY, "shadow", shadow(98, 2)).result == "pass"
    bad = judge(POLICY, "shadow", shadow(55, 45))
    assert bad.results()["shadow-disagreement"] == "fail"


def test_a_slow_shadow_is_reported_as_slow_not_as_errors():
    verdict = judge(POLICY, "shadow", shadow(0, 0, timeout=60))
    assert verdict.result == "fail"
    assert verdict.results()["shadow-slow"] == "fail"
    assert verdict.results()["shadow-errors"] == "pass"
    assert verdict.reason.startswith("slow: shadow copies over 300 ms")
