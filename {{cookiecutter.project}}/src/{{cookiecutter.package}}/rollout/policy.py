"""The rollout policy: every check declared once, judged the same way by both engines.

A check turns a window of counters into one number, its *score*, and classifies it:
pass when `score <= pass_max`, fail when `score > fail_above`, inconclusive in between or
when the score is NaN (not enough evidence). The local evaluator (`verdict.py`) computes
the score in Python from the router's counters; the renderer (`render.py`) computes the
same score in PromQL from the servers' metrics and writes the same bounds as Argo
Rollouts' successCondition and failureCondition. Rates are judged with a one-sided z-test
of the rate against its bound (PromQL can compute it; an exact test cannot be), against
one critical z for every look of a step, set so that a healthy canary fails the step with
chance at most `alpha` however many looks the step takes (`correction`).

A step takes `looks` looks. Both engines: any failed look fails the step at once; after the
last look, a check that never passed leaves the step inconclusive (for the `rollback`
policy every check must have passed once; for `promote`, only the traffic checks: missing
metrics never promote).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy.optimize import brentq
from scipy.signal import fftconvolve
from scipy.stats import norm

from ..config import Rollout

Result = Literal["pass", "fail", "inconclusive"]
Phase = Literal["canary", "shadow"]
Score = Literal[
    "requests_short",  # min_requests - n: passes once there is enough traffic, never fails
    "rate_z",  # z of (errors / n) against `bound`
    "p99_ms",  # latency quantile in ms
    "increase_z",  # z of canary rate - stable rate, when the increase exceeds `bound`
    "p99_ratio",  # canary p99 / max(stable p99, floor)
    "share",  # plain share of n (no test): shadow copies that timed out
]
NEVER = math.inf  # a fail_above for checks that cannot fail (only pass or wait)
SLOW_SHARE = 0.01  # more than 1% of copies slower than the timeout means p99 > timeout


@dataclass(frozen=True)
class Check:
    """One check: what it measures, how it is scored, and its bounds."""

    name: str
    phase: Phase
    score: Score
    numerator: str  # the counted outcome: errors, disagree, timeouts, ... ("" for none)
    bound: float  # the rate (or ms, or ratio) the score is built around
    pass_max: float
    fail_above: float
    evidence: bool  # must pass at least once per step
    describe: str

    def classify(self, score: float) -> Result:
        """The look's result for this check's score."""
        if math.isnan(score):
            return "inconclusive"
        if score > self.fail_above:
            return "fail"
        return "pass" if score <= self.pass_max else "inconclusive"


@dataclass(frozen=True)
class Policy:
    """Every check of a rollout, and the settings the engines share."""

    checks: tuple[Check, ...]
    min_requests: int
    client_errors: Literal["excluded", "ok"]
    alpha: float
    correction: Literal["sequential", "bonferroni", "none"]
    inconclusive: Literal["rollback", "promote"]
    max_extensions: int
    p99_floor_ms: float

    def of(self, phase: Phase) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.phase == phase)

    def alpha_per_look(self, looks: int) -> float:
        """The level of one look, so a step of `looks` looks keeps a false fail at `alpha`."""
        total = looks * (1 + self.max_extensions)
        if self.correction == "sequential":
            return float(norm.sf(sequential_z(self.alpha, total)))
        return self.alpha / total if self.correction == "bonferroni" else self.alpha

    def z_critical(self, looks: int) -> float:
        """One-sided critical z at the per-look level."""
        return float(norm.isf(self.alpha_per_look(looks)))


GRID = 0.05  # grid step of the walk's density, in standard deviations of one look's increment


@functools.lru_cache(maxsize=256)
def sequential_z(alpha: float, looks: int) -> float:
    """The one critical z of `looks` looks at a growing window: P(any look's z > it) = alpha.

    Under the null a window's z is a Gaussian random walk divided by the square root of its
    length when the looks see equal shares of traffic; the chance that some look crosses a
    bound is integrated look by look on a grid (Armitage, McPherson and Rowe's recursion;
    the bound is Pocock's). Bonferroni's alpha / looks ignores that each window holds the
    previous one, so it asks for a larger z (3.59 instead of 3.15 for 60 looks at 0.01).
    """
    if looks <= 1:
        return float(norm.isf(alpha))
    bonferroni = float(norm.isf(alpha / looks))
    kernel = norm.pdf(np.arange(-8.0, 8.0 + GRID / 2, GRID)) * GRID
    grid = np.arange(-8.0 * math.sqrt(looks), bonferroni * math.sqrt(looks) + GRID, GRID)

    def crossing(bound: float) -> float:
        density = norm.pdf(grid)
        density[grid > bound] = 0.0
        for look in range(2, looks + 1):
            density = fftconvolve(density, kernel, mode="same")
            density[grid > bound * math.sqrt(look)] = 0.0
        return 1.0 - float(density.sum() * GRID)

    # one look's bound is a lower limit, Bonferroni's an upper one
    return float(
        brentq(lambda b: crossing(b) - alpha, float(norm.isf(alpha)), bonferroni, xtol=1e-4)
    )


def looks_in(pause_s: float, interval_s: float) -> int:
    """How many looks a step of `pause_s` takes at one per `interval_s` (at least one)."""
    return max(1, math.ceil(pause_s / interval_s - 1e-9))


def build_policy(spec: Rollout, looks: int) -> Policy:
    """The checks `spec` asks for, with the z bound of a step of `looks` looks."""
    g, r, s = spec.guardrails, spec.relative, spec.shadow
    base = Policy(
        (),
        spec.analysis.min_requests,
        spec.analysis.client_errors,
        r.alpha,
        spec.analysis.correction,
        spec.inconclusive.policy,
        spec.inconclusive.max_extensions,
        r.p99_floor_ms,
    )
    z = base.z_critical(looks)
    gate = spec.inconclusive.policy == "rollback"
    checks = [
        _traffic("canary-requests", "canary", spec.analysis.min_requests),
        Check(
            "error-rate",
            "canary",
            "rate_z",
            "errors",
            g.max_error_rate,
            0.0,
            z,
            gate,
            f"canary error rate vs {g.max_error_rate}",
        ),
        Check(
            "p99-latency-ms",
            "canary",
            "p99_ms",
            "",
            g.max_p99_ms,
            g.max_p99_ms,
            g.max_p99_ms,
            gate,
            f"canary p99 vs {g.max_p99_ms:g} ms",
        ),
        Check(
            "error-rate-increase",
            "canary",
            "increase_z",
            "errors",
            r.max_error_rate_increase,
            0.0,
            z,
            gate,
            f"canary error rate - stable's vs +{r.max_error_rate_increase}",
        ),
        Check(
            "p99-ratio",
            "canary",
            "p99_ratio",
            "",
            r.max_p99_ratio,
            r.max_p99_ratio,
            r.max_p99_ratio,
            gate,
            f"canary p99 / stable p99 vs {r.max_p99_ratio:g}x",
        ),
    ]
    if s.enabled and s.duration_s > 0:
        checks += [
            _traffic("shadow-comparisons", "shadow", spec.analysis.min_requests),
            Check(
                "shadow-disagreement",
                "shadow",
                "rate_z",
                "disagree",
                s.max_disagreement,
                0.0,
                z,
                gate,
                f"shadow disagreement vs {s.max_disagreement}",
            ),
            Check(
                "shadow-errors",
                "shadow",
                "rate_z",
                "error",
                g.max_error_rate,
                0.0,
                z,
                gate,
                f"shadow error rate vs {g.max_error_rate}",
            ),
            Check(
                "shadow-slow",
                "shadow",
                "share",
                "timeout",
                SLOW_SHARE,
                SLOW_SHARE,
                SLOW_SHARE,
                gate,
                f"slow: shadow copies over {s.timeout_ms:g} ms",
            ),
        ]
    return replace(base, checks=tuple(checks))


def _traffic(name: str, phase: Phase, minimum: int) -> Check:
    """Enough requests (or comparisons) to judge: passes once there are, never fails."""
    what = "requests" if phase == "canary" else "comparisons"
    return Check(
        name,
        phase,
        "requests_short",
        "",
        minimum,
        0.0,
        NEVER,
        True,
        f"{phase} {what} (need {minimum})",
    )


# --------------------------------------------------------------------------- scores


def rate_z(count: float, n: float, bound: float) -> float:
    """One-sided z of the rate count/n against `bound` (binomial variance at the bound)."""
    if n <= 0:
        return math.nan
    return (count / n - bound) / math.sqrt(max(bound * (1 - bound), 1e-12) / n)


def increase_z(errors: float, n: float, s_errors: float, s_n: float, limit: float) -> float:
    """z of "canary's rate exceeds stable's by more than `limit`", or the margin (<= 0) under it.

    Unpooled (Wald) variance around the difference, so one error against a clean stable is
    not called significant the way a pooled variance near zero would.
    """
    if n <= 0 or s_n <= 0:
        return math.nan
    p, q = errors / n, s_errors / s_n
    if p - q <= limit:
        return p - q - limit
    spread = math.sqrt(max(p * (1 - p) / n + q * (1 - q) / s_n, 1e-12))
    return (p - q - limit) / spread


@dataclass(frozen=True)
class Counts:
    """What one variant (or the shadow mirror) did in a window: the inputs of every score."""

    n: float  # judged requests (per `client_errors`); shadow: copies sent and answered
    outcomes: dict[str, float]  # errors, disagree, timeout, error, ... -> count
    p99_ms: float = math.nan
    compared: float = 0.0  # shadow only: answers that could be compared


def score(check: Check, policy: Policy, now: Counts, stable: Counts | None) -> float:
    """The check's score for a window: the Python twin of the rendered PromQL."""
    n = now.compared if check.phase == "shadow" and check.numerator == "disagree" else now.n
    if check.score == "requests_short":
        return float(policy.min_requests - (now.compared if check.phase == "shadow" else now.n))
    if now.n < policy.min_requests or n < policy.min_requests:
        return math.nan
    count = now.outcomes.get(check.numerator, 0.0)
    if check.score == "rate_z":
        return rate_z(count, n, check.bound)
    if check.score == "share":
        return count / n
    if check.score == "p99_ms":
        return now.p99_ms
    if stable is None or stable.n < policy.min_requests:
        return math.nan
    if check.score == "increase_z":
        s_count = stable.outcomes.get(check.numerator, 0.0)
        return increase_z(count, n, s_count, stable.n, check.bound)
    return now.p99_ms / max(stable.p99_ms, policy.p99_floor_ms)  # p99_ratio


# --------------------------------------------------------------------------- step


@dataclass
class StepJudge:
    """Argo Rollouts' rules for one step: fail at once; at the end, evidence for each check."""

    checks: tuple[Check, ...]
    passed: set[str] | None = None

    def look(self, results: dict[str, Result]) -> Result:
        """Record one look; `fail` when any check failed, else `inconclusive` until the end."""
        self.passed = self.passed or set()
        self.passed |= {name for name, r in results.items() if r == "pass"}
        return "fail" if "fail" in results.values() else "inconclusive"

    def missing(self) -> list[Check]:
        """Checks that must have passed once in this step and have not."""
        passed = self.passed or set()
        return [c for c in self.checks if c.evidence and c.name not in passed]

    def end(self) -> Result:
        """The step's result after its last look."""
        return "inconclusive" if self.missing() else "pass"
