"""Per-variant counters with a latency histogram that can be diffed between scrapes.

The buckets and the quantile estimate are Prometheus's (the servers' buckets, and
`histogram_quantile`'s linear interpolation), so the local engine reads the same p99 from
the same requests as a PromQL query over the servers' metrics does.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from ..asgi.metrics import LATENCY_BUCKETS

EDGES_S: tuple[float, ...] = LATENCY_BUCKETS  # upper edges; one more bucket is +Inf


@dataclass
class VariantCounters:
    """Requests, errors, rejections and latency of one variant at one model version."""

    version: str
    requests: int = 0
    errors: int = 0
    rejected: int = 0
    timeouts: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(EDGES_S) + 1))

    def observe(self, seconds: float, outcome: str) -> None:
        """Count one request; outcome is ok, error, rejected or timeout.

        A timeout is not an error: its latency (at least the timeout) is recorded, so a slow
        variant shows up as slow in the latency quantiles rather than as failing.
        """
        self.requests += 1
        if outcome == "error":
            self.errors += 1
        elif outcome == "rejected":
            self.rejected += 1
        elif outcome == "timeout":
            self.timeouts += 1
        self.buckets[bisect_left(EDGES_S, seconds)] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy; buckets sparse (index -> count) to keep scrapes small."""
        sparse = {str(i): n for i, n in enumerate(self.buckets) if n}
        return {
            "version": self.version,
            "requests": self.requests,
            "errors": self.errors,
            "rejected": self.rejected,
            "timeouts": self.timeouts,
            "buckets": sparse,
        }


@dataclass(frozen=True)
class Window:
    """What one variant did between two scrapes."""

    requests: int
    errors: int
    rejected: int
    buckets: dict[int, int]
    timeouts: int = 0

    @property
    def judged(self) -> int:
        """Requests that count for error rates: client mistakes (4xx) are not the model's."""
        return self.requests - self.rejected

    @property
    def error_rate(self) -> float:
        """Share of judged requests that failed; 0 when there were none."""
        return self.errors / self.judged if self.judged else 0.0

    def quantile_ms(self, q: float) -> float:
        """Latency quantile in ms as Prometheus's histogram_quantile computes it; NaN if empty."""
        total = sum(self.buckets.values())
        if not total:
            return math.nan
        rank = q * total
        seen = 0
        for index in sorted(self.buckets):
            if seen + self.buckets[index] >= rank:
                if index >= len(EDGES_S):  # the +Inf bucket: the highest finite edge
                    return EDGES_S[-1] * 1000
                lower = EDGES_S[index - 1] if index else 0.0
                share = (rank - seen) / self.buckets[index]
                return (lower + (EDGES_S[index] - lower) * share) * 1000
            seen += self.buckets[index]
        return EDGES_S[-1] * 1000


EMPTY = Window(0, 0, 0, {})


def window(now: dict[str, Any] | None, before: dict[str, Any] | None) -> Window:
    """The difference of two snapshots of one variant (a missing `before` counts as zero)."""
    if not now:
        return EMPTY
    if not before or before.get("version") != now.get("version"):
        before = {"requests": 0, "errors": 0, "rejected": 0, "timeouts": 0, "buckets": {}}
    buckets = {
        int(i): n - before["buckets"].get(i, 0)
        for i, n in now["buckets"].items()
        if n - before["buckets"].get(i, 0) > 0
    }
    return Window(
        now["requests"] - before["requests"],
        now["errors"] - before["errors"],
        now["rejected"] - before["rejected"],
        buckets,
        now.get("timeouts", 0) - before.get("timeouts", 0),
    )
