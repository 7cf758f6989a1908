"""The local evaluator: each declared check scores a window and classifies it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from {{ cookiecutter.package }}.config import parse_rollout
from {{ cookiecutter.package }}.rollout.policy import (
    Counts,
    binomial_z,
    build_policy,
    count_above,
    looks_in,
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
END = ("look", "end")


def counts(
    n: int, errors: int, ms: float, rejected: int = 0, slow: int = 0, slow_ms: float = 0
) -> Counts:
    """n requests at `ms` (of which `slow` at `slow_ms`)."""
    bucket = next(i for i, edge in enumerate(EDGES_S) if edge * 1000 >= ms)
    buckets = {bucket: n - slow}
    if slow:
        slow_bucket = next((i for i, e in enumerate(EDGES_S) if e * 1000 >= slow_ms), len(EDGES_S))
        buckets[slow_bucket] = buckets.get(slow_bucket, 0) + slow
    return canary_counts(Window(n + rejected, errors, rejected, buckets), "excluded")


def test_the_bonferroni_z_is_scipys_at_the_corrected_level():
    looks = looks_in(5, 1)
    spec = SPEC.model_copy(
        update={"analysis": SPEC.analysis.model_copy(update={"correction": "bonferroni"})}
    )
    policy = build_policy(spec, looks)
    assert policy.alpha_per_look(looks) == pytest.approx(0.01 / looks)
    assert policy.z_critical(looks) == pytest.approx(stats.norm.ppf(1 - 0.01 / looks))


@pytest.mark.parametrize("rate", [0.001, 0.01, 0.05, 0.2])
@pytest.mark.parametrize("z", [2.326, 3.06])
def test_the_corrected_z_is_an_exact_level_test_on_counts(rate, z):
    """The first count whose corrected z crosses `z` has a binomial upper tail at most the
    look's level (and on average not far below it): the bound holds on counts, not only for
    a Gaussian, where the plain z gave 1.1-2.8 times alpha at small counts."""
    level = stats.norm.sf(z)
    ratios = []
    for n in range(40, 2000, 37):
        counts = np.arange(n + 1)
        critical = next(c for c in counts if binomial_z(c, n, rate, z) > z)
        tail = stats.binom.sf(critical - 1, n, rate)
        assert tail <= level, (n, critical, tail, level)
        ratios.append(tail / level)
    assert np.mean(ratios) > 0.2


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
    verdict = judge(POLICY, "canary", counts(39, 39, 5), counts(800, 0, 5), END)
    assert verdict.result == "inconclusive"
    assert verdict.results()["canary-requests"] == "inconclusive"
    assert verdict.results()["error-rate"] == "inconclusive"


def test_a_healthy_canary_passes_every_check():
    verdict = judge(POLICY, "canary", counts(60, 0, 5), counts(900, 1, 5), END)
    assert verdict.result == "pass"
    assert set(verdict.results()) == {
        "canary-requests",
        *(
            f"{name}{end}"
            for name in ("error-rate", "slow-requests", "error-rate-increase", "slow-vs-stable")
            for end in ("", "-at-end")
        ),
    }


def test_full_weight_judges_only_the_absolute_checks():
    """At 100% stable serves nothing: only what needs no comparison is judged."""
    full = build_policy(SPEC, 1, full_weight=True)
    names = {c.name for c in full.of("canary")}
    assert names == {
        "canary-requests",
        "error-rate",
        "error-rate-at-end",
        "slow-requests",
        "slow-requests-at-end",
    }
    assert judge(full, "canary", counts(60, 0, 5), None, END).result == "pass"


def test_a_canary_that_clearly_errs_fails_at_any_look_with_evidence():
    verdict = judge(POLICY, "canary", counts(60, 18, 5), counts(900, 1, 5), ("look",))
    assert verdict.result == "fail"
    assert verdict.results()["error-rate"] == "fail"
    assert verdict.evidence["canary"] == {
        "n": 60,
        "errors": 18,
        "p99_ms": pytest.approx(5, rel=0.1),
    }


def test_one_unlucky_error_is_not_a_failure():
    """One early error is no evidence at a look; at the end it counts as a rate (1 of 60)."""
    assert judge(POLICY, "canary", counts(40, 1, 5), counts(800, 0, 5), ("look",)).result == "pass"
    assert judge(POLICY, "canary", counts(60, 1, 5), counts(800, 0, 5), END).result == "pass"


def test_a_rate_over_the_limit_waits_for_the_end_of_the_step():
    """4 errors in 48 (8%) is over 5% and not significant: no look fails on it; at the end of
    the step the estimate is over the limit, and that fails the step."""
    looking = judge(POLICY, "canary", counts(48, 4, 5), counts(800, 30, 5), ("look",))
    assert looking.result == "pass"
    ended = judge(POLICY, "canary", counts(48, 4, 5), counts(800, 30, 5), END)
    assert ended.results()["error-rate-at-end"] == "fail"
    assert "at the end of the step" in ended.reason


def test_the_increase_is_judged_against_stables_rate():
    # 3 of 60 (5%) against stable's 1%: +4 points, over the +2 tolerated
    assert (
        judge(POLICY, "canary", counts(60, 3, 5), counts(900, 9, 5), END).results()[
            "error-rate-increase-at-end"
        ]
        == "fail"
    )
    # the same canary against a stable at 4%: +1 point, within
    assert (
        judge(POLICY, "canary", counts(60, 3, 5), counts(900, 36, 5), END).results()[
            "error-rate-increase-at-end"
        ]
        == "pass"
    )


def test_client_errors_are_left_out_of_the_judged_requests():
    many_4xx = counts(40, 0, 5, rejected=400)
    assert many_4xx.n == 40
    assert judge(POLICY, "canary", many_4xx, counts(800, 0, 5), END).result == "pass"


def test_count_above_interpolates_inside_a_bucket_as_histogram_quantile_does():
    edges = [e * 1000 for e in EDGES_S]
    i = edges.index(100.0)  # bucket (50, 100] ms
    assert count_above({i: 10}, 75.0) == pytest.approx(5.0)
    assert count_above({i: 10, i + 1: 4}, 100.0) == pytest.approx(4.0)
    assert count_above({len(edges): 3, 0: 7}, 5000.0) == 3.0


def test_latency_is_the_share_of_slow_requests():
    """p99 over a limit means more than 1% of requests slower than it."""
    slow = judge(POLICY, "canary", counts(60, 0, 400), counts(900, 0, 5), END)
    assert slow.results()["slow-requests"] == "fail"
    # one request in 60 over 250 ms is no evidence at a look, but 1.7% > 1% at the end
    one = judge(POLICY, "canary", counts(60, 0, 5, slow=1, slow_ms=400), counts(900, 0, 5), END)
    assert one.results()["slow-requests"] == "pass"
    assert one.results()["slow-requests-at-end"] == "fail"
    # 40 ms against 5 ms is 8x, but stable's p99 is under the 25 ms floor: 40 < 2 x 25
    assert judge(POLICY, "canary", counts(60, 0, 40), counts(900, 0, 5), END).result == "pass"
    ratio = judge(POLICY, "canary", counts(60, 0, 120), counts(900, 0, 50), END)
    assert ratio.results()["slow-vs-stable"] == "fail"


def shadow(agree: int, disagree: int, error: int = 0, timeout: int = 0) -> Counts:
    return shadow_counts(
        {"outcomes": {"agree": agree, "disagree": disagree, "error": error, "timeout": timeout}}
    )


def test_shadow_disagreement_fails_and_agreement_passes():
    assert judge(POLICY, "shadow", shadow(98, 2), when=END).result == "pass"
    bad = judge(POLICY, "shadow", shadow(55, 45), when=END)
    assert bad.results()["shadow-disagreement"] == "fail"


def test_a_slow_shadow_is_reported_as_slow_not_as_errors():
    verdict = judge(POLICY, "shadow", shadow(0, 0, timeout=60), when=END)
    assert verdict.result == "fail"
    assert verdict.results()["shadow-slow"] == "fail"
    assert verdict.results()["shadow-errors"] == "pass"
    assert verdict.reason.startswith("slow: shadow copies over 300 ms")
