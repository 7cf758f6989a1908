"""Uncertainty for model metrics: DeLong AUC inference, stratified and paired bootstrap.

The metrics themselves and their kernels are `ranking.py`'s (one sort of the scores into tie
groups). The bootstrap never materialises a resample: each resample is a vector of per-row
counts, and a metric on it is the same group-level kernel applied to weighted cumulative
counts, so a point estimate and its bootstrap replicates cannot disagree on ties.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

from .artifacts import jsonable
from .ranking import (
    _METRICS,
    HIGHER_IS_BETTER,
    METRICS,
    _block,
    _check_fraction,
    _check_min_delta,
    _check_resamples,
    _evaluate,
    _Floats,
    _is_number,
    _Kernel,
    _Labels,
    _labels,
    _metric,
    _rank,
    _Ranking,
    _scores,
    accuracy,
    average_precision,
    brier_score,
    fpr_at_recall,
    precision_at_top,
    roc_auc,
)

# What callers use (the point metrics are ranking.py's, re-exported); the kernels stay private.
__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "Interval",
    "PairedComparison",
    "accuracy",
    "average_precision",
    "bootstrap_intervals",
    "brier_score",
    "compare",
    "delong_interval",
    "delong_paired_test",
    "fpr_at_recall",
    "minimum_detectable_delta",
    "precision_at_top",
    "roc_auc",
    "stratified_resample_counts",
    "unpaired_drop_test",
]


# Elements of a (resamples x rows) block per bootstrap chunk. About 8 float64 blocks are alive
# at once, so 2**20 bounds a chunk near 70 MB whatever the holdout size; larger blocks fall out
# of cache and were not faster (100k rows x 1000 resamples).
_CHUNK_ELEMENTS = 2**20
_Ints = NDArray[np.int64]  # draw counts, as bincount counts them (ranking._Counts: why)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval."""

    value: float
    low: float
    high: float
    method: str

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-safe dict (non-finite numbers become None)."""
        return dict(jsonable(asdict(self)))


@dataclass(frozen=True)
class PairedComparison:
    """A one-sided test of challenger minus champion > min_delta on the same rows."""

    metric: str
    challenger: float
    champion: float
    diff: float  # improvement: challenger - champion, negated for lower-is-better metrics
    low: float
    high: float
    min_delta: float
    alpha: float
    statistic: float
    p_value: float
    method: str
    n: int
    se: float = math.nan  # standard error of diff (DeLong, or the bootstrap's spread)

    @property
    def significant(self) -> bool:
        """Return whether the challenger beats the champion by more than min_delta."""
        return self.p_value < self.alpha

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-safe dict including `significant` (non-finite numbers become None)."""
        data = dict(jsonable(asdict(self)))
        data["significant"] = self.significant
        return data


# ---------------------------------------------------------------------------------------------
# DeLong


def _placements(labels: _Labels, ranking: _Ranking) -> tuple[_Floats, _Floats]:
    """Return DeLong's structural components V10 (per positive) and V01 (per negative)."""
    r = ranking
    # Share of negatives a positive outranks and share of positives outranking a negative,
    # ties counting one half: the AUC kernel's tie-group counts, kept per row.
    v10 = np.empty(r.pos_perm.size)
    v01 = np.empty(r.neg_perm.size)
    v10[r.pos_perm] = (
        1.0 - 0.5 * (r.neg_ends[r.pos_group] + r.neg_ends[r.pos_group + 1]) / labels.neg_rows.size
    )
    v01[r.neg_perm] = (
        0.5 * (r.pos_ends[r.neg_group] + r.pos_ends[r.neg_group + 1]) / labels.pos_rows.size
    )
    return v10, v01


def _delong_components(
    y_true: ArrayLike, named_scores: Sequence[tuple[str, ArrayLike]]
) -> tuple[_Labels, _Floats, _Floats]:
    labels = _labels(y_true)
    if labels.pos_rows.size < 2 or labels.neg_rows.size < 2:
        raise ValueError("y_true needs at least 2 positives and 2 negatives for DeLong variance")
    v10, v01 = [], []
    for name, scores in named_scores:
        p, q = _placements(labels, _rank(labels, _scores(scores, labels.n, name)))
        v10.append(p)
        v01.append(q)
    return labels, np.vstack(v10), np.vstack(v01)


def delong_covariance(y_true: ArrayLike, *scores: ArrayLike) -> tuple[_Floats, _Floats]:
    """Return the AUCs of several score vectors on the same rows and their DeLong covariance."""
    if not scores:
        raise ValueError("scores: give at least one score vector")
    named = [(f"scores[{i}]", s) for i, s in enumerate(scores)]
    labels, v10, v01 = _delong_components(y_true, named)
    covariance = (
        np.atleast_2d(np.cov(v10)) / labels.pos_rows.size
        + np.atleast_2d(np.cov(v01)) / labels.neg_rows.size
    )
    return v10.mean(axis=1), covariance


def delong_interval(y_true: ArrayLike, scores: ArrayLike, level: float = 0.95) -> Interval:
    """Return the ROC AUC with a DeLong normal-approximation interval clipped to [0, 1]."""
    _check_fraction(level, "level")
    labels, v10, v01 = _delong_components(y_true, [("scores", scores)])
    auc = float(v10[0].mean())
    se = math.sqrt(
        v10[0].var(ddof=1) / labels.pos_rows.size + v01[0].var(ddof=1) / labels.neg_rows.size
    )
    half = float(ndtri(0.5 + level / 2)) * se
    return Interval(auc, max(0.0, auc - half), min(1.0, auc + half), "delong")


def _one_sided(diff: float, min_delta: float, se: float) -> tuple[float, float]:
    """Return z and the one-sided p-value of H0: true diff <= min_delta."""
    margin = diff - min_delta
    if se > 0:
        z = margin / se
        return z, float(ndtr(-z))
    # No sampling variance (e.g. identical scores): the observed margin is the truth.
    return (math.copysign(math.inf, margin) if margin else 0.0), (0.0 if margin > 0 else 1.0)


def _check_test_args(min_delta: float, alpha: float, level: float | None) -> float:
    """Return the interval level: the one-sided-consistent 1 - 2 * alpha unless given."""
    _check_min_delta(min_delta)
    _check_fraction(alpha, "alpha", upper=0.5)
    if level is None:
        return 1.0 - 2.0 * alpha
    _check_fraction(level, "level")
    return level


def _comparison(
    metric: str,
    method: str,
    n: int,
    values: Sequence[float],
    diff: float,
    interval: Sequence[float],
    thresholds: tuple[float, float],
    se: float,
    p_value: float | None = None,
) -> PairedComparison:
    """Assemble a result; p defaults to the one-sided normal p of diff against min_delta."""
    min_delta, alpha = thresholds
    z, normal_p = _one_sided(diff, min_delta, se)
    return PairedComparison(
        metric=metric,
        challenger=float(values[0]),
        champion=float(values[1]),
        diff=diff,
        low=float(interval[0]),
        high=float(interval[1]),
        min_delta=float(min_delta),
        alpha=float(alpha),
        statistic=z,
        p_value=normal_p if p_value is None else p_value,
        method=method,
        n=n,
        se=se,
    )


def delong_paired_test(
    y_true: ArrayLike,
    challenger: ArrayLike,
    champion: ArrayLike,
    min_delta: float = 0.0,
    alpha: float = 0.05,
    level: float | None = None,
) -> PairedComparison:
    """Test AUC(challenger) - AUC(champion) > min_delta with DeLong's paired variance."""
    level = _check_test_args(min_delta, alpha, level)
    labels, v10, v01 = _delong_components(
        y_true, [("challenger", challenger), ("champion", champion)]
    )
    # Var(diff) = S11 + S22 - 2 S12, taken as the variance of per-row differences so that
    # identical models give exactly zero instead of rounding noise.
    d10, d01 = v10[0] - v10[1], v01[0] - v01[1]
    se = math.sqrt(d10.var(ddof=1) / labels.pos_rows.size + d01.var(ddof=1) / labels.neg_rows.size)
    diff = float(d10.mean())
    half = float(ndtri(0.5 + level / 2)) * se
    aucs = v10.mean(axis=1)
    interval = (diff - half, diff + half)
    return _comparison("roc_auc", "delong", labels.n, aucs, diff, interval, (min_delta, alpha), se)


def unpaired_drop_test(
    current: Interval, reference: Interval, level: float, min_delta: float = 0.0
) -> tuple[float, float, float]:
    """Difference, z and one-sided p of H0: current >= reference - min_delta, independent samples.

    Each standard error is read back from its symmetric normal interval at `level`, so it
    fits DeLong intervals exactly and bootstrap percentile intervals approximately.
    """
    _check_fraction(level, "level")
    _check_min_delta(min_delta)
    z_level = float(ndtri(0.5 + level / 2))
    se = math.hypot(
        (current.high - current.low) / (2 * z_level),
        (reference.high - reference.low) / (2 * z_level),
    )
    drop = reference.value - current.value
    z, p = _one_sided(drop, min_delta, se)
    return current.value - reference.value, z, p


def minimum_detectable_delta(
    se: float, alpha: float, power: float = 0.8, min_delta: float = 0.0
) -> float:
    """Return the true improvement that the one-sided level-alpha test of "better by more
    than `min_delta`" detects with this power: `min_delta` plus the test's margin."""
    if not (_is_number(se) and se >= 0):
        raise ValueError(f"se must be a finite number >= 0; got {se!r}")
    _check_fraction(alpha, "alpha", upper=0.5)
    _check_fraction(power, "power")
    _check_min_delta(min_delta)
    return min_delta + float(ndtri(1.0 - alpha) + ndtri(power)) * se


# ---------------------------------------------------------------------------------------------
# Stratified bootstrap


def _count_chunks(labels: _Labels, resamples: int, seed: int) -> Iterator[tuple[_Ints, _Ints]]:
    """Yield per-row draw counts (positives, negatives) for consecutive blocks of resamples."""
    rng = np.random.default_rng(seed)
    n_pos, n_neg = labels.pos_rows.size, labels.neg_rows.size
    per_chunk = max(1, min(resamples, _CHUNK_ELEMENTS // labels.n))
    for start in range(0, resamples, per_chunk):
        size = min(per_chunk, resamples - start)
        pos, neg = np.empty((size, n_pos), np.int64), np.empty((size, n_neg), np.int64)
        for i in range(size):
            # Drawing resample by resample keeps resample i identical whatever the chunk size;
            # each class keeps its size, so every resample has the holdout's class balance.
            pos[i] = np.bincount(rng.integers(0, n_pos, n_pos), minlength=n_pos)
            neg[i] = np.bincount(rng.integers(0, n_neg, n_neg), minlength=n_neg)
        yield pos, neg


def stratified_resample_counts(
    y_true: ArrayLike, resamples: int, seed: int = 0
) -> NDArray[np.int64]:
    """Return how often each row is drawn in each stratified resample, shape (resamples, n)."""
    _check_resamples(resamples)
    labels = _labels(y_true)
    counts = np.empty((resamples, labels.n), dtype=np.int64)
    start = 0
    for pos, neg in _count_chunks(labels, resamples, seed):
        block = counts[start : start + pos.shape[0]]
        block[:, labels.pos_rows] = pos
        block[:, labels.neg_rows] = neg
        start += pos.shape[0]
    return counts


def _replicates(
    labels: _Labels,
    rankings: Sequence[_Ranking],
    kernels: dict[str, _Kernel],
    resamples: int,
    seed: int,
) -> dict[str, _Floats]:
    """Return kernel values, shape (models, resamples), with all models on the same resamples."""
    out = {name: np.empty((len(rankings), resamples)) for name in kernels}
    start = 0
    for pos_counts, neg_counts in _count_chunks(labels, resamples, seed):
        stop = start + pos_counts.shape[0]
        for m, ranking in enumerate(rankings):
            block = _block(ranking, pos_counts, neg_counts)
            for name, kernel in kernels.items():
                out[name][m, start:stop] = kernel(block)
        start = stop
    return out


def _prepared(
    y_true: ArrayLike,
    named_scores: Sequence[tuple[str, ArrayLike]],
    metrics: Sequence[str],
    resamples: int,
) -> tuple[_Labels, list[_Ranking], dict[str, _Kernel]]:
    _check_resamples(resamples)
    chosen = {name: _metric(name) for name in metrics}
    if not chosen:
        raise ValueError("metrics: give at least one metric name")
    probabilities = any(metric.probabilities for metric in chosen.values())
    labels = _labels(y_true)
    rankings = [
        _rank(labels, _scores(s, labels.n, name, probabilities)) for name, s in named_scores
    ]
    return labels, rankings, {name: metric.kernel for name, metric in chosen.items()}


def bootstrap_replicates(
    y_true: ArrayLike, scores: ArrayLike, metric: str, resamples: int = 1000, seed: int = 0
) -> _Floats:
    """Return the metric on each stratified resample (the rows of stratified_resample_counts)."""
    labels, rankings, kernels = _prepared(y_true, [("scores", scores)], [metric], resamples)
    replicates: _Floats = _replicates(labels, rankings, kernels, resamples, seed)[metric][0]
    return replicates


def bootstrap_intervals(
    y_true: ArrayLike,
    scores: ArrayLike,
    metrics: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Interval]:
    """Return percentile intervals for several metrics from one set of stratified resamples."""
    _check_fraction(level, "level")
    labels, rankings, kernels = _prepared(y_true, [("scores", scores)], metrics, resamples)
    replicates = _replicates(labels, rankings, kernels, resamples, seed)
    quantiles = (0.5 - level / 2, 0.5 + level / 2)
    intervals = {}
    for name, values in replicates.items():
        low, high = np.quantile(values[0], quantiles)
        point = _evaluate(kernels[name], rankings[0])
        intervals[name] = Interval(point, float(low), float(high), "bootstrap")
    return intervals


def bootstrap_interval(
    y_true: ArrayLike,
    scores: ArrayLike,
    metric: str,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Return a stratified percentile-bootstrap interval for one metric."""
    return bootstrap_intervals(y_true, scores, [metric], resamples, seed, level)[metric]


def paired_bootstrap_test(
    y_true: ArrayLike,
    challenger: ArrayLike,
    champion: ArrayLike,
    metric: str,
    min_delta: float = 0.0,
    alpha: float = 0.05,
    resamples: int = 2000,
    seed: int = 0,
    level: float | None = None,
) -> PairedComparison:
    """Test that the challenger beats the champion by more than min_delta on shared resamples."""
    level = _check_test_args(min_delta, alpha, level)
    labels, rankings, kernels = _prepared(
        y_true, [("challenger", challenger), ("champion", champion)], [metric], resamples
    )
    # "Better" is positive for every metric, so one one-sided test serves all of them.
    sign = 1.0 if _METRICS[metric].higher_is_better else -1.0
    replicates = _replicates(labels, rankings, kernels, resamples, seed)[metric]
    diffs = sign * (replicates[0] - replicates[1])
    challenger_value, champion_value = (_evaluate(kernels[metric], r) for r in rankings)
    diff = sign * (challenger_value - champion_value)
    # +1 smoothing: the observed sample counts as one resample, so p is never exactly 0.
    p = (1 + int(np.count_nonzero(diffs <= min_delta))) / (resamples + 1)
    se = float(diffs.std(ddof=1)) if resamples > 1 else 0.0
    interval = np.quantile(diffs, (0.5 - level / 2, 0.5 + level / 2))
    values = (challenger_value, champion_value)
    return _comparison(
        metric, "paired_bootstrap", labels.n, values, diff, interval, (min_delta, alpha), se, p
    )


def compare(
    y_true: ArrayLike,
    challenger: ArrayLike,
    champion: ArrayLike,
    metric: str,
    min_delta: float = 0.0,
    alpha: float = 0.05,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Compare two models on the same rows: DeLong for roc_auc, paired bootstrap otherwise."""
    _metric(metric)
    if metric == "roc_auc":
        return delong_paired_test(y_true, challenger, champion, min_delta, alpha)
    return paired_bootstrap_test(
        y_true, challenger, champion, metric, min_delta, alpha, resamples, seed
    )
