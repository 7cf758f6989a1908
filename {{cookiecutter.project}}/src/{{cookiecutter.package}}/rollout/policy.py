"""The rollout policy: every check declared once, judged the same way by both engines.

The decision (docs/canary.md has the design and its measured error rates):

- A step is judged on the window since it began. It *fails* at any look where a check's
  score crosses its bound; it *passes* once it has lasted `pause_s`, has
  `analysis.min_requests` requests, and its end-of-step checks hold; it is *inconclusive*
  when it still lacks those requests `analysis.max_wait_s` after its pause, and then the
  `inconclusive.policy` applies.
- Every-look checks are one-sided tests that a rate exceeds its limit, on the binomial
  scale: a z with continuity and skewness (Cornish-Fisher) corrections against one
  critical z for all the looks a step can take (`correction`), so a canary exactly at a
  limit fails a step with chance at most `alpha`.
- End-of-step checks compare the rate itself with the limit once the step has its
  requests: a canary at a limit is rolled back about half the time, one at twice the
  tolerated increase almost always, and an identical one almost never.
- Latency is judged as a rate too: the share of requests slower than `max_p99_ms` (absolute)
  or than `max_p99_ratio` times stable's p99 (relative) against 1 %, which is what "p99
  over the limit" means, and is only judged with `min_requests` requests.

The local evaluator (`verdict.py`) computes each score in Python from the router's
counters; the renderer (`render.py`) computes the same score in PromQL.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from scipy.optimize import brentq
from scipy.signal import fftconvolve
from scipy.stats import norm

from ..config import Rollout
from .window import EDGES_S

Result = Literal["pass", "fail", "inconclusive"]
Phase = Literal["canary", "shadow"]
When = Literal["look", "end"]  # judged at every look, or once the step has its requests
Score = Literal[
    "requests_short",  # min_requests - n: passes once there is enough traffic
    "binomial_z",  # corrected z of the count against the limit's rate (every look)
    "excess",  # count / n - the limit's rate (end of step)
]
NEVER = math.inf  # a fail_above for checks that cannot fail (only pass or wait)
SLOW_SHARE = 0.01  # p99 over a limit means more than 1% of requests slower than it


@dataclass(frozen=True)
class Check:
    """One check: what it counts, when it is judged, and its bounds."""

    name: str
    phase: Phase
    when: When
    score: Score
    numerator: str  # errors, slow, slow_vs_stable, disagree, error, timeout ("" for none)
    bound: float  # the limit's rate; for a relative check, the increase over stable's
    pass_max: float
    fail_above: float
    describe: str
    relative: bool = False  # needs stable's window (not judged at full weight)

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
    max_wait_s: float
    p99_floor_ms: float
    max_p99_ms: float
    max_p99_ratio: float
    z: float = field(default=math.nan)  # the critical z of every look of this step

    def of(self, phase: Phase, when: When | None = None) -> tuple[Check, ...]:
        return tuple(
            c for c in self.checks if c.phase == phase and (when is None or c.when == when)
        )

    def alpha_per_look(self, looks: int) -> float:
        """The level of one look, so a step of `looks` looks keeps a false fail at `alpha`."""
        if self.correction == "sequential":
            return float(norm.sf(sequential_z(self.alpha, looks)))
        return self.alpha / looks if self.correction == "bonferroni" else self.alpha

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
    """How many looks a step of `pause_s` takes at one per `interval_s` (at least one).

    A look is scored only once the window holds `min_requests`, and a step ends at the first
    look after its pause that does: a step that waits for traffic scores no more looks than
    its pause holds, so this is the number the sequential bound is set for.
    """
    return max(1, math.ceil(pause_s / interval_s - 1e-9))


def build_policy(spec: Rollout, looks: int, full_weight: bool = False) -> Policy:
    """The checks `spec` asks for, with the critical z of a step of `looks` looks.

    At full weight stable serves nothing: only the absolute checks can be judged.
    """
    g, r, a = spec.guardrails, spec.relative, spec.analysis
    base = Policy(
        (),
        a.min_requests,
        a.client_errors,
        r.alpha,
        a.correction,
        spec.inconclusive.policy,
        a.max_wait_s,
        r.p99_floor_ms,
        g.max_p99_ms,
        r.max_p99_ratio,
    )
    z = base.z_critical(looks)
    checks = [_traffic("canary-requests", "canary", a.min_requests)]
    checks += _rate(
        "error-rate",
        "canary",
        "errors",
        g.max_error_rate,
        z,
        f"canary error rate vs {g.max_error_rate:g}",
    )
    checks += _rate(
        "slow-requests",
        "canary",
        "slow",
        SLOW_SHARE,
        z,
        f"canary requests over {g.max_p99_ms:g} ms (p99 limit) vs {SLOW_SHARE:.0%}",
    )
    if not full_weight:
        checks += _rate(
            "error-rate-increase",
            "canary",
            "errors",
            r.max_error_rate_increase,
            z,
            f"canary error rate - stable's vs +{r.max_error_rate_increase:g}",
            relative=True,
        )
        checks += _rate(
            "slow-vs-stable",
            "canary",
            "slow_vs_stable",
            SLOW_SHARE,
            z,
            f"canary requests over {r.max_p99_ratio:g}x stable's p99 vs {SLOW_SHARE:.0%}",
            relative=True,
        )
    if spec.shadow.enabled and spec.shadow.duration_s > 0 and not full_weight:
        checks += _shadow_checks(spec, z)
    return replace(base, checks=tuple(checks), z=z)


def _shadow_checks(spec: Rollout, z: float) -> list[Check]:
    """The shadow step's checks: enough comparisons, and disagreement, errors and slow copies."""
    g, s = spec.guardrails, spec.shadow
    checks = [_traffic("shadow-comparisons", "shadow", spec.analysis.min_requests)]
    checks += _rate(
        "shadow-disagreement",
        "shadow",
        "disagree",
        s.max_disagreement,
        z,
        f"shadow disagreement vs {s.max_disagreement:g}",
    )
    checks += _rate(
        "shadow-errors",
        "shadow",
        "error",
        g.max_error_rate,
        z,
        f"shadow error rate vs {g.max_error_rate:g}",
    )
    checks += _rate(
        "shadow-slow",
        "shadow",
        "timeout",
        SLOW_SHARE,
        z,
        f"slow: shadow copies over {s.timeout_ms:g} ms vs {SLOW_SHARE:.0%}",
    )
    return checks


def _traffic(name: str, phase: Phase, minimum: int) -> Check:
    """Enough requests (or comparisons) to judge: passes once there are, never fails."""
    what = "requests" if phase == "canary" else "comparisons"
    return Check(
        name,
        phase,
        "end",
        "requests_short",
        "",
        minimum,
        0.0,
        NEVER,
        f"{phase} {what} (need {minimum})",
    )


def _rate(
    name: str,
    phase: Phase,
    numerator: str,
    bound: float,
    z: float,
    describe: str,
    relative: bool = False,
) -> list[Check]:
    """A rate's two checks: the sequential test at every look, the estimate at the end."""
    return [
        Check(name, phase, "look", "binomial_z", numerator, bound, z, z, describe, relative),
        Check(
            f"{name}-at-end", phase, "end", "excess", numerator, bound, 0.0, 0.0, describe, relative
        ),
    ]


# --------------------------------------------------------------------------- scores


def binomial_z(count: float, n: float, rate: float, z: float, extra_variance: float = 0.0) -> float:
    """z of `count` successes in `n` against `rate`, corrected for a binomial's discreteness
    (half a count) and skew (Cornish-Fisher at the critical `z`): `> z` exactly when the
    count is above the binomial's upper `z` quantile. `extra_variance` (counts squared) is
    the uncertainty of a rate estimated from stable's window."""
    if n <= 0:
        return math.nan
    variance = max(n * rate * (1 - rate) + extra_variance, 1e-12)
    skew = (1 - 2 * rate) * (z * z - 1) / 6
    return (count - 0.5 - n * rate - skew) / math.sqrt(variance)


def count_above(buckets: dict[int, int], threshold_ms: float) -> float:
    """Requests slower than `threshold_ms`, linear inside a bucket as histogram_quantile is."""
    total = float(sum(buckets.values()))
    edges_ms = [e * 1000 for e in EDGES_S]
    index = bisect_left(edges_ms, threshold_ms)
    if index >= len(edges_ms):  # past the last finite edge: only the +Inf bucket is slower
        return float(buckets.get(len(edges_ms), 0))
    below = float(sum(n for i, n in buckets.items() if i < index))
    lower = edges_ms[index - 1] if index else 0.0
    share = (threshold_ms - lower) / (edges_ms[index] - lower)
    return total - below - buckets.get(index, 0) * share


@dataclass(frozen=True)
class Counts:
    """What one variant (or the shadow mirror) did in a window: the inputs of every score."""

    n: float  # judged requests (per `client_errors`); shadow: copies sent and answered
    outcomes: dict[str, float]  # errors, disagree, timeout, error, ... -> count
    p99_ms: float = math.nan
    compared: float = 0.0  # shadow only: answers that could be compared
    buckets: dict[int, int] = field(default_factory=dict)  # latency histogram of the window

    @property
    def timed(self) -> float:
        """Requests in the latency histogram: the denominator of slow shares."""
        return float(sum(self.buckets.values()))


def slow_threshold_ms(policy: Policy, stable: Counts | None) -> float:
    """`max_p99_ratio` times stable's p99 (at least the floor); NaN without stable's window."""
    if stable is None or stable.n < policy.min_requests or math.isnan(stable.p99_ms):
        return math.nan
    return policy.max_p99_ratio * max(stable.p99_ms, policy.p99_floor_ms)


def observed(
    check: Check, policy: Policy, now: Counts, stable: Counts | None
) -> tuple[float, float]:
    """(count, n) of the check's outcome in the window; n = 0 when it cannot be counted."""
    if check.numerator == "slow":
        return count_above(now.buckets, policy.max_p99_ms), now.timed
    if check.numerator == "slow_vs_stable":
        threshold = slow_threshold_ms(policy, stable)
        if math.isnan(threshold):
            return 0.0, 0.0
        return count_above(now.buckets, threshold), now.timed
    n = now.compared if check.phase == "shadow" and check.numerator == "disagree" else now.n
    return now.outcomes.get(check.numerator, 0.0), n


def reference(check: Check, stable: Counts | None) -> tuple[float, float]:
    """The rate the check tests against, and the variance (per n squared) of that rate."""
    if check.numerator != "errors" or not check.relative:
        return check.bound, 0.0
    assert stable is not None
    q = stable.outcomes.get("errors", 0.0) / stable.n
    return min(q + check.bound, 1.0), q * (1 - q) / stable.n


def score(check: Check, policy: Policy, now: Counts, stable: Counts | None) -> float:
    """The check's score for a window: the Python twin of the rendered PromQL."""
    if check.score == "requests_short":
        return float(policy.min_requests - (now.compared if check.phase == "shadow" else now.n))
    if now.n < policy.min_requests:
        return math.nan
    if check.relative and (stable is None or stable.n < policy.min_requests):
        return math.nan
    count, n = observed(check, policy, now, stable)
    if n < policy.min_requests:
        return math.nan
    rate, variance = reference(check, stable)
    if check.score == "excess":
        return count / n - rate
    return binomial_z(count, n, rate, policy.z, variance * n * n)
