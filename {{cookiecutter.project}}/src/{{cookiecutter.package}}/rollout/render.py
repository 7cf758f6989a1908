"""The Argo Rollouts adapter: the policy's checks as AnalysisTemplates over PromQL.

Each check becomes a metric whose query computes the check's score (the twin of
`policy.score`) and whose successCondition / failureCondition are the check's bounds;
`count` and `interval` are the step's looks. A check that must pass once per step also
gets an `-evidence` metric that fails when none of the step's looks passed, which is how
the `rollback` policy for inconclusive steps is honoured without a human.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..config import Rollout
from ..errors import ConfigError
from .policy import NEVER, Check, Policy, build_policy, looks_in


class RenderError(ConfigError):
    """The spec asks for something Argo Rollouts cannot do; the message says what to change."""


@dataclass(frozen=True)
class Target:
    """Where the analysis looks: Prometheus, the namespace, and the cluster's time scale."""

    address: str
    namespace: str
    min_interval_s: float
    min_pause_s: float


def refuse_unrenderable(spec: Rollout) -> None:
    """RenderError for every option the Argo engine cannot honour exactly."""
    problems = []
    if spec.inconclusive.max_extensions:
        problems.append(
            f"rollout.inconclusive.max_extensions is {spec.inconclusive.max_extensions}: Argo "
            "Rollouts runs a fixed number of looks per step and cannot lengthen a step whose "
            "looks were inconclusive; set it to 0 (an inconclusive step then means "
            f"`{spec.inconclusive.policy}` at once)"
        )
    if problems:
        raise RenderError("cannot render for Kubernetes:\n  " + "\n  ".join(problems))


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


def _rate_z(count: str, n: str, bound: float) -> str:
    variance = _num(max(bound * (1 - bound), 1e-12))
    return f"(({count} / {n}) - {_num(bound)}) / sqrt({variance} / {n})"


def score_query(check: Check, policy: Policy, canary: str, stable: str, window: str) -> str:
    """PromQL for the check's score; `canary`/`stable` are label selectors."""
    minimum = _num(policy.min_requests)
    if check.phase == "shadow":
        metric = "shadow_comparisons_total"
        compared = _sum(metric, f'{canary},outcome=~"agree|disagree"', window)
        n = _sum(metric, f'{canary},outcome=~"agree|disagree|error|timeout"', window)
        count = _sum(metric, f'{canary},outcome="{check.numerator}"', window)
        base = compared if check.numerator == "disagree" else n
        enough_both = (f"{n} >= {minimum}", f"{base} >= {minimum}")
        if check.score == "requests_short":
            return f"({minimum} - {compared})"
        if check.score == "rate_z":
            return _gated(_rate_z(count, base, check.bound), *enough_both)
        return _gated(f"{count} / {base}", *enough_both)  # share
    outcomes = "ok|error" if policy.client_errors == "excluded" else "ok|error|rejected"
    n = _sum("model_requests_total", f'{canary},outcome=~"{outcomes}"', window)
    errors = _sum("model_requests_total", f'{canary},outcome="error"', window)
    enough = f"{n} >= {minimum}"
    if check.score == "requests_short":
        return f"({minimum} - {n})"
    if check.score == "rate_z":
        return _gated(_rate_z(errors, n, check.bound), enough)
    if check.score == "p99_ms":
        return _gated(_p99_ms(canary, window), enough)
    s_n = _sum("model_requests_total", f'{stable},outcome=~"{outcomes}"', window)
    both = (enough, f"{s_n} >= {minimum}")
    if check.score == "p99_ratio":
        floor = _num(policy.p99_floor_ms)
        return _gated(
            f"{_p99_ms(canary, window)} / clamp_min({_p99_ms(stable, window)}, {floor})", *both
        )
    s_errors = _sum("model_requests_total", f'{stable},outcome="error"', window)
    p, q = f"({errors} / {n})", f"({s_errors} / {s_n})"
    margin = f"({p} - {q} - {_num(check.bound)})"
    spread = f"clamp_min(sqrt({p} * (1 - {p}) / {n} + {q} * (1 - {q}) / {s_n}), 1e-6)"
    return _gated(f"({margin} <= 0) or ({margin} / {spread})", *both)


def conditions(check: Check) -> tuple[str, str]:
    """Argo's successCondition and failureCondition for the check's bounds."""
    success = f"!isNaN(result[0]) && result[0] <= {_num(check.pass_max)}"
    if check.fail_above == NEVER:
        return success, "false"  # can only pass or wait
    return success, f"!isNaN(result[0]) && result[0] > {_num(check.fail_above)}"


def metrics(
    check: Check, policy: Policy, query: str, looks: int, interval_s: float, address: str
) -> list[dict[str, Any]]:
    """The check's metric, and its evidence metric when it must pass once per step."""
    success, failure = conditions(check)

    def common() -> dict[str, Any]:  # fresh dicts: no YAML anchors in the manifest
        return {
            "interval": f"{math.ceil(interval_s)}s",
            "count": looks,
            "provider": {"prometheus": {"address": address, "query": query}},
        }

    found = [
        {
            "name": check.name,
            **common(),
            "successCondition": success,
            "failureCondition": failure,
            "failureLimit": 0,
            "inconclusiveLimit": looks,  # waiting is never a verdict by itself
        }
    ]
    if check.evidence:
        found.append(
            {
                "name": f"{check.name}-evidence",
                **common(),
                "successCondition": success,
                "failureCondition": f"!({success})",
                "failureLimit": looks - 1,  # fails only when no look of the step passed
            }
        )
    return found


def step_timing(spec: Rollout, target: Target, pause_s: float) -> tuple[int, float, int]:
    """(looks, interval, window seconds) of a step on the cluster's time scale."""
    interval = max(spec.analysis.interval_s, target.min_interval_s)
    pause = max(pause_s, target.min_pause_s)
    looks = looks_in(pause, interval)
    return looks, interval, math.ceil(looks * interval)


def analysis_spec(
    spec: Rollout, target: Target, phase: str, pause_s: float
) -> tuple[Policy, list[dict[str, Any]]]:
    """The metrics of one phase (`canary` or `shadow`) for a step of `pause_s`."""
    refuse_unrenderable(spec)
    looks, interval, window_s = step_timing(spec, target, pause_s)
    policy = build_policy(spec, looks)
    ns = f'namespace="{target.namespace}"'
    canary = f'{ns},rollouts_pod_template_hash="{arg("canary-hash")}"'
    stable = f'{ns},rollouts_pod_template_hash="{arg("stable-hash")}"'
    source = stable if phase == "shadow" else canary  # stable pods send the shadow copies
    found: list[dict[str, Any]] = []
    for check in policy.of(phase):  # type: ignore[arg-type]
        query = score_query(check, policy, source, stable, f"{window_s}s")
        found += metrics(check, policy, query, looks, interval, target.address)
    return policy, found
