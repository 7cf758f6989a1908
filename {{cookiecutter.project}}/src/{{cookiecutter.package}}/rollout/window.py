"""Per-variant counters with a fine latency histogram that can be diffed between scrapes."""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

# Bucket upper edges from 0.05 ms growing 8 % a step to about a minute: a quantile read
# from them is off by at most 8 %, and a window is the difference of two scrapes.
EDGES_S: tuple[float, ...] = tuple(0.00005 * 1.08**i for i in range(185))


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
        """Latency quantile in ms (the bucket's upper edge); NaN without requests."""
        total = sum(self.buckets.values())
        if not total:
            return math.nan
        rank = q * total
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                edge = EDGES_S[index] if index < len(EDGES_S) else EDGES_S[-1]
                return edge * 1000
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
