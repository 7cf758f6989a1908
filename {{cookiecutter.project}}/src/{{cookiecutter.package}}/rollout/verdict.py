"""The local evaluator: the policy's checks applied to the router's counters for one look."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .policy import Check, Counts, Phase, Policy, Result, When, observed, reference, score
from .window import Window


@dataclass(frozen=True)
class CheckResult:
    """One check at one look: its score, its result, and why."""

    name: str
    score: float | None
    result: Result
    detail: str


@dataclass(frozen=True)
class Verdict:
    """One look's judgement, with its evidence: fail if any check failed, pass if all passed."""

    result: Result
    reason: str
    checks: tuple[CheckResult, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)

    def results(self) -> dict[str, Result]:
        """Check name -> result, what a step's judge records."""
        return {c.name: c.result for c in self.checks}

    def as_event(self) -> dict[str, Any]:
        """A JSON-able record for the event log."""
        return {
            "verdict": self.result,
            "reason": self.reason,
            "evidence": self.evidence,
            "checks": [asdict(c) for c in self.checks],
        }


def canary_counts(window: Window, client_errors: str) -> Counts:
    """A variant's window as the policy reads it (4xx left out or counted as answered)."""
    n = window.judged if client_errors == "excluded" else window.requests
    return Counts(n, {"errors": window.errors}, window.quantile_ms(0.99), buckets=window.buckets)


def shadow_counts(diff: dict[str, Any]) -> Counts:
    """The mirror's window: copies that came back (compared, errors) or timed out."""
    outcomes = {k: float(v) for k, v in diff["outcomes"].items()}
    compared = outcomes.get("agree", 0.0) + outcomes.get("disagree", 0.0)
    n = compared + outcomes.get("error", 0.0) + outcomes.get("timeout", 0.0)
    return Counts(n, outcomes, compared=compared)


def _detail(check: Check, policy: Policy, value: float, now: Counts, stable: Counts | None) -> str:
    if check.score == "requests_short":
        return f"{check.describe}: {check.bound - value:.0f} so far"
    if math.isnan(value):
        return f"{check.describe}: not enough evidence yet"
    count, n = observed(check, policy, now, stable)
    rate, _ = reference(check, stable)
    what = f"{count / n:.3f} of {n:.0f} against {rate:.3f}"
    if check.score == "excess":
        return f"{check.describe}: {what} at the end of the step"
    return f"{check.describe}: {what}, z={value:.2f} (fail above {check.fail_above:.2f})"


def judge(
    policy: Policy,
    phase: Phase,
    now: Counts,
    stable: Counts | None = None,
    when: tuple[When, ...] = ("look", "end"),
) -> Verdict:
    """Score and classify the checks of `phase` judged `when`, on one window."""
    results = []
    for check in policy.of(phase):
        if check.when not in when:
            continue
        value = score(check, policy, now, stable)
        results.append(
            CheckResult(
                check.name,
                None if math.isnan(value) else round(value, 4),
                check.classify(value),
                _detail(check, policy, value, now, stable),
            )
        )
    evidence: dict[str, Any] = {phase: {"n": now.n, **now.outcomes}}
    if not math.isnan(now.p99_ms):
        evidence[phase]["p99_ms"] = round(now.p99_ms, 2)
    if stable is not None:
        evidence["stable"] = {"n": stable.n, **stable.outcomes}
        if not math.isnan(stable.p99_ms):
            evidence["stable"]["p99_ms"] = round(stable.p99_ms, 2)
    failed = [c.detail for c in results if c.result == "fail"]
    if failed:
        return Verdict("fail", "; ".join(failed), tuple(results), evidence)
    waiting = [c.detail for c in results if c.result == "inconclusive"]
    if waiting:
        return Verdict("inconclusive", "; ".join(waiting), tuple(results), evidence)
    return Verdict("pass", "every check passed", tuple(results), evidence)


def shadow_window(now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """Difference of two mirror snapshots: outcome counts over the window."""
    old = (before or {}).get("outcomes", {})
    return {"outcomes": {k: v - old.get(k, 0) for k, v in now["outcomes"].items()}}
