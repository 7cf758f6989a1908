"""Shadow traffic: a sampled copy of live requests to the new model, never on the response path."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram

from .window import VariantCounters

DIFF_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
OUTCOMES = ("agree", "disagree", "dropped", "timeout", "error")
HEADERS = {"content-type": "application/json"}


class ShadowMetrics:
    """The shadow metric families, registered once per process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        comparisons = Counter(
            "shadow_comparisons", "Shadow requests by outcome", ("outcome",), registry=registry
        )
        self.outcomes = {o: comparisons.labels(o) for o in OUTCOMES}
        self.diff = Histogram(
            "shadow_score_abs_diff",
            "Per row, shadow vs primary: the absolute score difference (binary), the largest "
            "class-probability difference (multiclass) or the relative difference (regression)",
            buckets=DIFF_BUCKETS,
            registry=registry,
        )


def compare(
    primary: bytes, shadow: bytes, relative_tolerance: float = 0.05, floor: float = 0.0
) -> tuple[bool, list[float]]:
    """Whether the two answers agree on every row, and a difference per row.

    Binary: every label agrees; the absolute score difference. Multiclass: every label agrees;
    the largest difference of a class's probability. Regression: no value is further from the
    primary's than `relative_tolerance` x max(|primary|, floor); the relative difference.
    """
    left = json.loads(primary)["predictions"]
    right = json.loads(shadow)["predictions"]
    if len(left) != len(right):
        return False, []
    if left and "score" not in left[0]:  # not a binary answer: the tasks table compares it
        from ..tasks.comparison import compare_answers
        from ..tasks.table import ShadowRule

        return compare_answers(left, right, ShadowRule(relative_tolerance, floor))
    diffs = [abs(a["score"] - b["score"]) for a, b in zip(left, right, strict=True)]
    return all(a["label"] == b["label"] for a, b in zip(left, right, strict=True)), diffs


class ShadowMirror:
    """Copy a share of requests to `url` through a bounded queue; compare the answers."""

    def __init__(
        self,
        url: str,
        version: str,
        sample: float,
        queue_size: int,
        timeout_ms: float,
        metrics: ShadowMetrics,
        workers: int = 4,
        relative_tolerance: float = 0.05,
        tolerance_floor: float = 0.0,
    ) -> None:
        self.url = url.rstrip("/") + "/predict"  # `url` is the server's base URL
        self.version = version
        self.sample = sample
        self.timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000)
        self.queue: asyncio.Queue[tuple[bytes, bytes, float]] = asyncio.Queue(queue_size)
        self.workers = workers
        self.tolerance = (relative_tolerance, tolerance_floor)  # a regression's values
        self.counters = VariantCounters(version)
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.diff_sum = 0.0
        self.diff_max = 0.0
        self.diff_rows = 0
        self.latency_diff_sum_ms = 0.0
        self._credit = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._outcome_metric = metrics.outcomes
        self._diff_metric = metrics.diff

    def start(self, session: aiohttp.ClientSession) -> None:
        """Start the workers on the running loop."""
        self._session = session
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    async def stop(self) -> None:
        """Cancel the workers; queued copies are dropped."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def offer(self, body: bytes, primary: bytes, primary_seconds: float) -> None:
        """Queue a copy if sampled; drop it when the queue is full. Never waits."""
        self._credit += self.sample
        if self._credit < 1.0:
            return
        self._credit -= 1.0
        try:
            self.queue.put_nowait((body, primary, primary_seconds))
        except asyncio.QueueFull:
            self._count("dropped")

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        self._outcome_metric[outcome].inc()

    async def _work(self) -> None:
        while True:
            body, primary, primary_seconds = await self.queue.get()
            start = time.perf_counter()
            try:
                assert self._session is not None
                async with self._session.post(
                    self.url, data=body, headers=HEADERS, timeout=self.timeout
                ) as response:
                    answer = await response.read()
                    status = response.status
            except TimeoutError:
                self.counters.observe(time.perf_counter() - start, "timeout")
                self._count("timeout")
                continue
            except aiohttp.ClientError:
                self.counters.observe(time.perf_counter() - start, "error")
                self._count("error")
                continue
            seconds = time.perf_counter() - start
            if status >= 500:
                self.counters.observe(seconds, "error")
                self._count("error")
                continue
            if status != 200:
                self.counters.observe(seconds, "rejected")
                continue
            self.counters.observe(seconds, "ok")
            self._record(primary, answer, seconds - primary_seconds)

    def _record(self, primary: bytes, answer: bytes, latency_diff_s: float) -> None:
        try:
            agree, diffs = compare(primary, answer, *self.tolerance)
        except (ValueError, KeyError, TypeError):
            self._count("error")
            return
        self._count("agree" if agree else "disagree")
        for diff in diffs:
            self._diff_metric.observe(diff)
            self.diff_sum += diff
            self.diff_max = max(self.diff_max, diff)
        self.diff_rows += len(diffs)
        self.latency_diff_sum_ms += latency_diff_s * 1000

    def snapshot(self) -> dict[str, Any]:
        """Cumulative comparison counts for the controller."""
        compared = self.outcomes["agree"] + self.outcomes["disagree"]
        return {
            "version": self.version,
            "outcomes": dict(self.outcomes),
            "compared": compared,
            "score_abs_diff_sum": self.diff_sum,
            "score_abs_diff_max": self.diff_max,
            "score_rows": self.diff_rows,
            "latency_diff_sum_ms": self.latency_diff_sum_ms,
            "counters": self.counters.snapshot(),
        }
