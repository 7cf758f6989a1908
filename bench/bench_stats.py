"""Benchmark the generated stats module: vectorised stratified bootstrap and DeLong.

Bakes the template and imports the baked package's `stats`, so the figures describe the code a
user gets. Run `python bench/bench_stats.py [--smoke]` to print them, or let `bench/run.py`
collect them.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from harness import bake, figure, import_baked, run_standalone

METRICS = ("roc_auc", "precision_at_5pct", "fpr_at_recall_80")
SEED = 20240601


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    holdout_rows: int = 100_000
    resamples: int = 1_000
    baseline_resamples: int = 50  # the sklearn loop is timed on these and scaled linearly
    delong_rows: tuple[int, int] = (100_000, 1_000_000)


SMOKE = Sizes(holdout_rows=2_000, resamples=40, baseline_resamples=4, delong_rows=(2_000, 20_000))


def load_stats(workdir: Path) -> ModuleType:
    """Bake the template and import the baked package's stats module (and its package)."""
    project = bake(workdir)
    (stats,) = import_baked(project.root / "src", f"{project.package}.stats")
    return stats


def holdout(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return labels (about 20% positive) and probability scores with some ties."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.2).astype(np.int64)
    latent = rng.normal(size=rows) + 1.2 * y
    # Rounding to 4 decimals leaves realistic ties among 100k predicted probabilities.
    return y, np.round(1 / (1 + np.exp(-latent)), 4)


def baseline_replicates(
    y: np.ndarray, scores: np.ndarray, resamples: int, seed: int
) -> dict[str, list[float]]:
    """The straightforward loop: materialise each stratified resample and call sklearn."""
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    top = math.ceil(0.05 * y.size)
    out: dict[str, list[float]] = {name: [] for name in METRICS}
    for _ in range(resamples):
        rows = np.concatenate(
            [rng.choice(positives, positives.size), rng.choice(negatives, negatives.size)]
        )
        y_b, s_b = y[rows], scores[rows]
        out["roc_auc"].append(roc_auc_score(y_b, s_b))
        out["precision_at_5pct"].append(y_b[np.argsort(-s_b, kind="stable")[:top]].mean())
        fpr, tpr, _ = roc_curve(y_b, s_b, drop_intermediate=False)
        out["fpr_at_recall_80"].append(fpr[np.argmax(tpr >= 0.8)])
    return out


T = TypeVar("T")


def _seconds(call: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def bootstrap_figures(stats: ModuleType, sizes: Sizes) -> list[dict]:
    """Time 95% CIs for three metrics: vectorised vs a per-resample sklearn loop."""
    rows, resamples, baseline_resamples = (
        sizes.holdout_rows,
        sizes.resamples,
        sizes.baseline_resamples,
    )
    y, scores = holdout(rows, SEED)
    stats.bootstrap_intervals(y[:500], scores[:500], METRICS, resamples=5)  # warm up
    fast, intervals = _seconds(
        lambda: stats.bootstrap_intervals(y, scores, METRICS, resamples=resamples, seed=SEED)
    )
    slow_part, replicates = _seconds(
        lambda: baseline_replicates(y, scores, baseline_resamples, SEED)
    )
    slow = slow_part * resamples / baseline_resamples
    auc = intervals["roc_auc"]
    baseline_auc = np.quantile(replicates["roc_auc"], [0.025, 0.975])
    tracemalloc.start()
    stats.bootstrap_intervals(y, scores, METRICS, resamples=50, seed=SEED)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    setting = f"{rows:,} rows, {resamples:,} stratified resamples, {', '.join(METRICS)}"
    return [
        figure(
            "stats.bootstrap_3_metric_ci",
            fast,
            "s",
            f"vectorised bootstrap_intervals, {setting}; baseline: sklearn roc_auc_score + "
            f"argsort + roc_curve per materialised resample, timed on {baseline_resamples} "
            f"resamples ({slow_part:.2f} s) and scaled linearly to {resamples:,}; AUC CI "
            f"{auc.low:.4f}-{auc.high:.4f} vs baseline {baseline_auc[0]:.4f}-"
            f"{baseline_auc[1]:.4f} ({baseline_resamples} resamples)",
            baseline=slow,
            ratio=slow / fast,
        ),
        figure(
            "stats.bootstrap_peak_memory",
            peak,
            "MiB",
            f"tracemalloc peak of bootstrap_intervals on {rows:,} rows; resamples are "
            "processed in fixed-size chunks, so the peak does not grow with the resample count",
        ),
    ]


def delong_figures(stats: ModuleType, sizes: Sizes) -> list[dict]:
    """Time the DeLong CI at two sizes and the paired test at the larger one."""
    small, large = sizes.delong_rows
    times = {}
    for rows in (small, large):
        y, scores = holdout(rows, SEED + 1)
        runs = [_seconds(partial(stats.delong_interval, y, scores))[0] for _ in range(3)]
        times[rows] = min(runs)
    rng = np.random.default_rng(SEED + 2)
    champion = np.clip(scores + rng.normal(0, 0.05, scores.size), 0, 1)
    paired, _ = _seconds(lambda: stats.delong_paired_test(y, scores, champion, min_delta=0.005))
    growth = times[large] / times[small]
    return [
        figure("stats.delong_ci_small", times[small], "s", f"delong_interval, {small:,} rows"),
        figure(
            "stats.delong_ci_large",
            times[large],
            "s",
            f"delong_interval, {large:,} rows: {growth:.1f}x the {small:,}-row time for "
            f"{large // small}x the rows (O(n log n) predicts a little more than {large // small}x)",
            baseline=times[small],
            ratio=growth,
        ),
        figure(
            "stats.delong_paired_large",
            paired,
            "s",
            f"delong_paired_test (challenger vs champion on the same {large:,} rows)",
        ),
    ]


def run(workdir: Path, smoke: bool = False) -> list[dict]:
    """Return the stats figures of the baked package's stats module."""
    sizes = SMOKE if smoke else Sizes()
    stats = load_stats(workdir)
    return bootstrap_figures(stats, sizes) + delong_figures(stats, sizes)


if __name__ == "__main__":
    raise SystemExit(run_standalone(run))
