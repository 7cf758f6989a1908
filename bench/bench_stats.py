"""Benchmark the generated stats module: vectorised stratified bootstrap and DeLong.

Loads `stats.py` straight from the template source tree, so the figures describe the code a
user gets. Run `python bench/bench_stats.py` to print them, or let `bench/run.py` collect them.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from harness import figure, run_standalone

ROOT = Path(__file__).resolve().parent.parent
STATS_PATH = ROOT / "{{cookiecutter.project}}" / "src" / "{{cookiecutter.package}}" / "stats.py"

HOLDOUT_ROWS = 100_000
RESAMPLES = 1_000
BASELINE_RESAMPLES = 50  # the sklearn loop is timed on these and scaled linearly to RESAMPLES
METRICS = ("roc_auc", "precision_at_5pct", "fpr_at_recall_80")
SEED = 20240601


def load_stats() -> ModuleType:
    """Import the template's stats.py by path (its directory names contain braces)."""
    spec = importlib.util.spec_from_file_location("template_stats", STATS_PATH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {STATS_PATH}")
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve postponed annotations through sys.modules, so register first.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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


def bootstrap_figures(stats: ModuleType) -> list[dict]:
    """Time 95% CIs for three metrics on 100k rows: vectorised vs a per-resample sklearn loop."""
    y, scores = holdout(HOLDOUT_ROWS, SEED)
    stats.bootstrap_intervals(y[:2000], scores[:2000], METRICS, resamples=5)  # warm up
    fast, intervals = _seconds(
        lambda: stats.bootstrap_intervals(y, scores, METRICS, resamples=RESAMPLES, seed=SEED)
    )
    slow_part, replicates = _seconds(
        lambda: baseline_replicates(y, scores, BASELINE_RESAMPLES, SEED)
    )
    slow = slow_part * RESAMPLES / BASELINE_RESAMPLES
    auc = intervals["roc_auc"]
    baseline_auc = np.quantile(replicates["roc_auc"], [0.025, 0.975])
    tracemalloc.start()
    stats.bootstrap_intervals(y, scores, METRICS, resamples=50, seed=SEED)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    setting = f"{HOLDOUT_ROWS:,} rows, {RESAMPLES:,} stratified resamples, {', '.join(METRICS)}"
    return [
        figure(
            "stats.bootstrap_3_metric_ci",
            fast,
            "s",
            f"vectorised bootstrap_intervals, {setting}; baseline: sklearn roc_auc_score + "
            f"argsort + roc_curve per materialised resample, timed on {BASELINE_RESAMPLES} "
            f"resamples ({slow_part:.2f} s) and scaled linearly to {RESAMPLES:,}; AUC CI "
            f"{auc.low:.4f}-{auc.high:.4f} vs baseline {baseline_auc[0]:.4f}-"
            f"{baseline_auc[1]:.4f} ({BASELINE_RESAMPLES} resamples)",
            baseline=slow,
            ratio=slow / fast,
        ),
        figure(
            "stats.bootstrap_peak_memory",
            peak,
            "MiB",
            f"tracemalloc peak of bootstrap_intervals on {HOLDOUT_ROWS:,} rows; resamples are "
            "processed in fixed-size chunks, so the peak does not grow with the resample count",
        ),
    ]


def delong_figures(stats: ModuleType) -> list[dict]:
    """Time the DeLong CI at 100k and 1M rows and the paired test at 1M rows."""
    times = {}
    for rows in (100_000, 1_000_000):
        y, scores = holdout(rows, SEED + 1)
        runs = [_seconds(partial(stats.delong_interval, y, scores))[0] for _ in range(3)]
        times[rows] = min(runs)
    rng = np.random.default_rng(SEED + 2)
    champion = np.clip(scores + rng.normal(0, 0.05, scores.size), 0, 1)
    paired, _ = _seconds(lambda: stats.delong_paired_test(y, scores, champion, min_delta=0.005))
    growth = times[1_000_000] / times[100_000]
    return [
        figure("stats.delong_ci_100k", times[100_000], "s", "delong_interval, 100,000 rows"),
        figure(
            "stats.delong_ci_1m",
            times[1_000_000],
            "s",
            f"delong_interval, 1,000,000 rows: {growth:.1f}x the 100k time for 10x the rows "
            "(O(n log n) predicts about 12x)",
            baseline=times[100_000],
            ratio=growth,
        ),
        figure(
            "stats.delong_paired_1m",
            paired,
            "s",
            "delong_paired_test (challenger vs champion on the same 1,000,000 rows)",
        ),
    ]


def run(workdir: Path) -> list[dict]:
    """Return the stats figures; nothing is written to workdir."""
    stats = load_stats()
    return bootstrap_figures(stats) + delong_figures(stats)


if __name__ == "__main__":
    raise SystemExit(run_standalone(run))
