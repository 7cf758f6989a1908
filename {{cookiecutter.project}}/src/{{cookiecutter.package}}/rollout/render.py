"""The Argo Rollouts adapter: the policy's checks as AnalysisTemplates over PromQL.

Each check becomes a metric whose query computes the check's score (the twin of
`policy.score`) and whose successCondition / failureCondition are the check's bounds.
Every-look checks are measured `count` times, one per `interval`, and fail the step at the
first crossing; end-of-step checks are measured once, after an `initialDelay` of the step's
pause, over the whole step. Argo cannot lengthen a step that is short of requests: it
judges at the end of the pause what the cluster's traffic brought (`max_wait_s` is the
local engine's; size `pause_s` for your traffic, docs/canary.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..config import Rollout
from .policy import NEVER, Check, Policy, build_policy, looks_in
from .window import EDGES_S


@dataclass(frozen=True)
class Target:
    """Where the analysis looks: Prometheus, the namespace, and the cluster's time scale."""

    address: str
    namespace: str
    min_interval_s: float
    min_pause_s: float


def arg(name: str) -> str:
    """An Argo Rollouts argument reference; built, not written, so Jinja leaves it alone."""
    return "{" * 2 + "args." + name + "}" * 2


def _num(value: float) -> str:
    return f"{value:.12g}"


NAN = "(vector(0) / 0)"  # a label-less NaN: the check has no evidence yet


def _sum(metric: str, selector: str, window: str) -> str:
    return "(sum(increase(" + metric + "{" + selector + "}[" + window + "])) or vector(0))"


def _p99_ms(selector: str, window: str) -> str:
    return (
        "(histogram_quantile(0.99, sum by (le) (rate(model_request_latency_seconds_bucket{"
        + selector
        + "}["
        + window
        + "]))) * 1000)"
    )


def _gated(expression: str, *conditions: str) -> str:
    """The expression while every condition holds, NaN otherwise (never an empty result)."""
    gated = f"({expression})"
    for condition in conditions:
        gated = f"({gated} and ({condition}))"
    return f"({gated} or {NAN})"


def _cumulative(selector: str, edge: float, window: str) -> str:
    """Requests no slower than `edge` seconds (a histogram bucket's cumulative count)."""
    le = "+Inf" if math.isinf(edge) else f"{edge}"
    return _sum("model_request_latency_seconds_bucket", f'{selector},le="{le}"', window)


def _above_fixed(selector: str, threshold_ms: float, window: str) -> str:
    """`policy.count_above` for a threshold known when rendering."""
    total = _cumulative(selector, math.inf, window)
    edges_ms = [e * 1000 for e in EDGES_S]
    index = next((i for i, e in enumerate(edges_ms) if e >= threshold_ms), len(edges_ms))
    if index >= len(edges_ms):
        return f"({total} - {_cumulative(selector, EDGES_S[-1], window)})"
    high = _cumulative(selector, EDGES_S[index], window)
    low = _cumulative(selector, EDGES_S[index - 1], window) if index else "0"
    lower = edges_ms[index - 1] if index else 0.0
    share = _num((threshold_ms - lower) / (edges_ms[index] - lower))
    return f"({total} - {low} - ({high} - {low}) * {share})"


def _above_dynamic(selector: str, threshold_ms: str, window: str) -> str:
    """`policy.count_above` for a threshold computed in the query: one term per bucket, each
    kept only when the threshold falls in that bucket (PromQL cannot index `le` by value)."""
    total = _cumulative(selector, math.inf, window)
    terms, lower, lower_s = [], 0.0, 0.0
    for edge_s in EDGES_S:
        edge = edge_s * 1000
        high = _cumulative(selector, edge_s, window)
        low = "0" if lower_s == 0 else _cumulative(selector, lower_s, window)
        share = f"(({threshold_ms}) - {_num(lower)}) / {_num(edge - lower)}"
        term = f"({total} - {low} - ({high} - {low}) * {share})"
        terms.append(
            f"({term} and on() (({threshold_ms}) > {_num(lower)})"
            f" and on() (({threshold_ms}) <= {_num(edge)}))"
        )
        lower, lower_s = edge, edge_s
    last = _cumulative(selector, EDGES_S[-1], window)
    terms.append(f"(({total} - {last}) and on() (({threshold_ms}) > {_num(lower)}))")
    return "(" + " or ".join(terms) + ")"


def _binomial_z(count: str, n: str, rate: str, z: float, extra: str = "0") -> str:
    """`policy.binomial_z` in PromQL."""
    skew = f"((1 - 2 * {rate}) * {_num((z * z - 1) / 6)})"
    variance = f"clamp_min({n} * {rate} * (1 - {rate}) + {extra}, 1e-12)"
    return f"(({count} - 0.5 - {n} * {rate} - {skew}) / sqrt({variance}))"


def _scored(check: Check, policy: Policy, count: str, n: str, rate: str, extra: str) -> str:
    if check.score == "excess":
        return f"(({count} / {n}) - {rate})"
    return _binomial_z(count, n, rate, policy.z, extra)


def score_query(check: Check, policy: Policy, canary: str, stable: str, window: str) -> str:
    """PromQL for the check's score; `canary`/`stable` are label selectors."""
    minimum = _num(policy.min_requests)
    rate = f"({_num(check.bound)})"
    if check.phase == "shadow":
        metric = "shadow_comparisons_total"
        compared = _sum(metric, f'{canary},outcome=~"agree|disagree"', window)
        n = _sum(metric, f'{canary},outcome=~"agree|disagree|error|timeout"', window)
        if check.score == "requests_short":
            return f"({minimum} - {compared})"
        count = _sum(metric, f'{canary},outcome="{check.numerator}"', window)
        base = compared if check.numerator == "disagree" else n
        scored = _scored(check, policy, count, base, rate, "0")
        return _gated(scored, f"{n} >= {minimum}", f"{base} >= {minimum}")
    outcomes = "ok|error" if policy.client_errors == "excluded" else "ok|error|rejected"
    n = _sum("model_requests_total", f'{canary},outcome=~"{outcomes}"', window)
    if check.score == "requests_short":
        return f"({minimum} - {n})"
    enough = f"{n} >= {minimum}"
    s_n = _sum("model_requests_total", f'{stable},outcome=~"{outcomes}"', window)
    stable_enough = f"{s_n} >= {minimum}"
    if check.numerator in ("slow", "slow_vs_stable"):
        timed = _cumulative(canary, math.inf, window)
        if check.numerator == "slow":
            count = _above_fixed(canary, policy.max_p99_ms, window)
            return _gated(
                _scored(check, policy, count, timed, rate, "0"), enough, f"{timed} >= {minimum}"
            )
        floor = _num(policy.p99_floor_ms)
        threshold = (
            f"({_num(policy.max_p99_ratio)} * clamp_min({_p99_ms(stable, window)}, {floor}))"
        )
        count = _above_dynamic(canary, threshold, window)
        return _gated(
            _scored(check, policy, count, timed, rate, "0"),
            enough,
            stable_enough,
            f"{timed} >= {minimum}",
        )
    errors = _sum("model_requests_total", f'{canary},outcome="error"', window)
    if not check.relative:
        return _gated(_scored(check, policy, errors, n, rate, "0"), enough)
    s_errors = _sum("model_requests_total", f'{stable},outcome="error"', window)
    q = f"({s_errors} / {s_n})"
    rate = f"clamp_max({q} + {_num(check.bound)}, 1)"
    extra = f"({n} * {n} * {q} * (1 - {q}) / {s_n})"
    return _gated(_scored(check, policy, errors, n, rate, extra), enough, stable_enough)


def conditions(check: Check, policy: Policy) -> tuple[str, str]:
    """Argo's successCondition and failureCondition for the check's bounds.

    At the end of a step a missing value (too few requests) follows the inconclusive
    policy: `rollback` fails on the requests check; `promote` fails only with no requests
    at all and lets the other end checks pass.
    """
    promote = policy.inconclusive == "promote"
    if check.score == "requests_short":
        if promote:
            never = _num(check.bound)  # min_requests - 0: not one request
            return f"!isNaN(result[0]) && result[0] < {never}", f"result[0] >= {never}"
        return "!isNaN(result[0]) && result[0] <= 0", "isNaN(result[0]) || result[0] > 0"
    bound = _num(check.fail_above)
    if check.when == "end" and promote:
        success = f"isNaN(result[0]) || result[0] <= {bound}"
    else:
        success = f"!isNaN(result[0]) && result[0] <= {bound}"
    if check.fail_above == NEVER:
        return success, "false"
    return success, f"!isNaN(result[0]) && result[0] > {bound}"


def metrics(
    check: Check, policy: Policy, query: str, looks: int, interval_s: float, address: str
) -> list[dict[str, Any]]:
    """The check's metric: measured every look, or once at the end of the step."""
    success, failure = conditions(check, policy)
    provider = {"prometheus": {"address": address, "query": query}}
    if check.when == "end":
        return [
            {
                "name": check.name,
                "initialDelay": f"{math.ceil(looks * interval_s)}s",
                "count": 1,
                "provider": provider,
                "successCondition": success,
                "failureCondition": failure,
                "failureLimit": 0,
            }
        ]
    return [
        {
            "name": check.name,
            "interval": f"{math.ceil(interval_s)}s",
            "count": looks,
            "provider": provider,
            "successCondition": success,
            "failureCondition": failure,
            "failureLimit": 0,
            "inconclusiveLimit": looks,  # waiting is never a verdict by itself
        }
    ]


def step_timing(spec: Rollout, target: Target, pause_s: float) -> tuple[int, float, int]:
    """(looks, interval, window seconds) of a step on the cluster's time scale."""
    interval = max(spec.analysis.interval_s, target.min_interval_s)
    pause = max(pause_s, target.min_pause_s)
    looks = looks_in(pause, interval)
    return looks, interval, math.ceil(looks * interval)


def analysis_spec(
    spec: Rollout, target: Target, phase: str, pause_s: float, full_weight: bool = False
) -> tuple[Policy, list[dict[str, Any]]]:
    """The metrics of one phase (`canary` or `shadow`) for a step of `pause_s`."""
    looks, interval, window_s = step_timing(spec, target, pause_s)
    policy = build_policy(spec, looks, full_weight)
    ns = f'namespace="{target.namespace}"'
    canary = f'{ns},rollouts_pod_template_hash="{arg("canary-hash")}"'
    stable = f'{ns},rollouts_pod_template_hash="{arg("stable-hash")}"'
    source = stable if phase == "shadow" else canary  # stable pods send the shadow copies
    found: list[dict[str, Any]] = []
    for check in policy.of(phase):  # type: ignore[arg-type]
        query = score_query(check, policy, source, stable, f"{window_s}s")
        found += metrics(check, policy, query, looks, interval, target.address)
    return policy, found
