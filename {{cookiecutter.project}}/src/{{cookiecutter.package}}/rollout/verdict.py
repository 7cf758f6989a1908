"""Judge a canary window: exact tests, guardrails and relative limits, pass/fail/inconclusive."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .spec import Rollout
from .window import Window

Result = Literal["pass", "fail", "inconclusive"]


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def binomial_greater(k: int, n: int, p0: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p0): the exact one-sided p-value of "rate > p0"."""
    if k <= 0:
        return 1.0
    if p0 <= 0.0:
        return 0.0
    if p0 >= 1.0:
        return 1.0
    log_p, log_q = math.log(p0), math.log1p(-p0)
    return min(
        1.0, sum(math.exp(_log_choose(n, i) + i * log_p + (n - i) * log_q) for i in range(k, n + 1))
    )


def fisher_greater(a_errors: int, a_total: int, b_errors: int, b_total: int) -> float:
    """One-sided Fisher exact p-value that group a's error rate is greater than group b's."""
    errors, total = a_errors + b_errors, a_total + b_total
    if a_total == 0 or errors == 0:
        return 1.0
    # conditional on the margins, a's error count is hypergeometric; sum its upper tail
    denominator = _log_choose(total, a_total)
    high = min(errors, a_total)
    tail = sum(
        math.exp(_log_choose(errors, x) + _log_choose(total - errors, a_total - x) - denominator)
        for x in range(a_errors, high + 1)
        if a_total - x <= total - errors
    )
    return min(1.0, tail)


@dataclass(frozen=True)
class Check:
    """One named comparison: its value, its bound, and whether it passed (None: not judged)."""

    name: str
    value: float | None
    bound: float
    passed: bool | None
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    """The controller's judgement of one window, with its evidence."""

    result: Result
    reason: str
    checks: tuple[Check, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_event(self) -> dict[str, Any]:
        """A JSON-able record for the event log."""
        return {
            "verdict": self.result,
            "reason": self.reason,
            "evidence": self.evidence,
            "checks": [asdict(c) for c in self.checks],
        }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def _combine(checks: list[Check], evidence: dict[str, Any]) -> Verdict:
    failed = [c for c in checks if c.passed is False]
    if failed:
        return Verdict("fail", "; ".join(c.detail for c in failed), tuple(checks), evidence)
    uncertain = [c for c in checks if c.passed is None]
    if uncertain:
        why = "; ".join(c.detail for c in uncertain)
        return Verdict("inconclusive", why, tuple(checks), evidence)
    return Verdict("pass", "every check passed", tuple(checks), evidence)


def _rate_check(name: str, errors: int, n: int, bound: float, alpha: float) -> Check:
    """Fail when the exact binomial test says the rate exceeds `bound`; unsure above it."""
    rate = errors / n if n else 0.0
    p_value = binomial_greater(errors, n, bound)
    detail = f"{name} {rate:.3f} vs limit {bound} (binomial p={p_value:.2g}, alpha={alpha:.2g})"
    if p_value < alpha:
        return Check(name, rate, bound, False, detail)
    return Check(name, rate, bound, None if rate > bound else True, detail)


def judge_canary(canary: Window, stable: Window, spec: Rollout, alpha: float) -> Verdict:
    """Judge the canary against guardrails and against stable over the same window."""
    n, n_stable = canary.judged, stable.judged
    p99, p99_stable = canary.quantile_ms(0.99), stable.quantile_ms(0.99)
    evidence = {
        "canary": {"n": n, "errors": canary.errors, "rate": round(canary.error_rate, 4)},
        "stable": {"n": n_stable, "errors": stable.errors, "rate": round(stable.error_rate, 4)},
        "p99_ms": {"canary": _finite(p99), "stable": _finite(p99_stable)},
        "alpha_per_look": alpha,
    }
    minimum = spec.analysis.min_requests
    if n < minimum:
        reason = f"canary has {n} of the {minimum} requests needed before any verdict"
        return Verdict("inconclusive", reason, (), evidence)
    guard, relative = spec.guardrails, spec.relative
    checks = [_rate_check("error_rate", canary.errors, n, guard.max_error_rate, alpha)]
    checks.append(
        Check(
            "p99_ms",
            _finite(p99),
            guard.max_p99_ms,
            not p99 > guard.max_p99_ms,
            f"canary p99 {p99:.1f} ms vs limit {guard.max_p99_ms} ms",
        )
    )
    if n_stable >= minimum:
        p_value = fisher_greater(canary.errors, n, stable.errors, n_stable)
        increase = canary.error_rate - stable.error_rate
        evidence["fisher_p"] = p_value
        detail = (
            f"error rate {increase:+.3f} vs stable (limit +{relative.max_error_rate_increase}, "
            f"Fisher p={p_value:.2g}, alpha={alpha:.2g})"
        )
        material = increase > relative.max_error_rate_increase
        significant = p_value < alpha
        passed = False if material and significant else (None if material else True)
        checks.append(
            Check(
                "error_rate_vs_stable", increase, relative.max_error_rate_increase, passed, detail
            )
        )
        floor = max(p99_stable, relative.p99_floor_ms)
        ratio = p99 / floor
        checks.append(
            Check(
                "p99_ratio",
                round(ratio, 3),
                relative.max_p99_ratio,
                not ratio > relative.max_p99_ratio,
                f"canary p99 {p99:.1f} ms is {ratio:.2f}x stable's {p99_stable:.1f} ms "
                f"(floor {relative.p99_floor_ms} ms, limit {relative.max_p99_ratio}x)",
            )
        )
    return _combine(checks, evidence)


def judge_shadow(shadow: dict[str, Any], window: Window, spec: Rollout, alpha: float) -> Verdict:
    """Judge shadow answers: disagreement, errors and latency of the new model."""
    compared, disagree = shadow["compared"], shadow["disagree"]
    n = window.judged
    p99 = window.quantile_ms(0.99)
    evidence = {
        "compared": compared,
        "disagree": disagree,
        "agreement": round(1 - disagree / compared, 4) if compared else None,
        "score_abs_diff_mean": round(shadow["diff_sum"] / shadow["rows"], 5)
        if shadow["rows"]
        else None,
        "latency_diff_mean_ms": round(shadow["latency_diff_ms"] / compared, 3)
        if compared
        else None,
        "dropped": shadow["dropped"],
        "timeouts": shadow["timeouts"],
        "shadow": {
            "n": n,
            "errors": window.errors,
            "timeouts": window.timeouts,
            "p99_ms": _finite(p99),
        },
        "alpha_per_look": alpha,
    }
    minimum = spec.analysis.min_requests
    if n < minimum:
        reason = f"shadow has {n} of the {minimum} answers needed before a verdict"
        return Verdict("inconclusive", reason, (), evidence)
    limit = spec.shadow.max_disagreement
    if compared >= minimum:
        agreement = _rate_check("disagreement", disagree, compared, limit, alpha)
    else:
        # timeouts and errors leave nothing to compare; they are judged as errors below
        why = f"only {compared} answers to compare (need {minimum})"
        agreement = Check("disagreement", None, limit, None, why)
    checks = [
        agreement,
        _rate_check("error_rate", window.errors, n, spec.guardrails.max_error_rate, alpha),
        Check(
            "p99_ms",
            _finite(p99),
            spec.guardrails.max_p99_ms,
            not p99 > spec.guardrails.max_p99_ms,
            _slowness(p99, window, spec),
        ),
    ]
    return _combine(checks, evidence)


def _slowness(p99: float, window: Window, spec: Rollout) -> str:
    """The latency check's words: a copy that timed out is slow, not an error."""
    limit = spec.guardrails.max_p99_ms
    if not window.timeouts:
        return f"shadow p99 {p99:.1f} ms vs limit {limit} ms"
    return (
        f"slow: shadow p99 >= {p99:.0f} ms vs limit {limit} ms ({window.timeouts} of "
        f"{window.judged} copies timed out after {spec.shadow.timeout_ms:g} ms)"
    )


def shadow_window(now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """Difference of two shadow snapshots, in the keys `judge_shadow` reads."""

    def delta(get: Any) -> Any:
        return get(now) - (get(before) if before else 0)

    return {
        "compared": delta(lambda s: s["compared"]),
        "disagree": delta(lambda s: s["outcomes"]["disagree"]),
        "dropped": delta(lambda s: s["outcomes"]["dropped"]),
        "timeouts": delta(lambda s: s["outcomes"]["timeout"]),
        "diff_sum": delta(lambda s: s["score_abs_diff_sum"]),
        "rows": delta(lambda s: s["score_rows"]),
        "latency_diff_ms": delta(lambda s: s["latency_diff_sum_ms"]),
    }
