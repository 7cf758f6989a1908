"""Uncertainty for model metrics: ranking metrics, DeLong AUC inference, stratified bootstrap.

Every metric is computed from one sort of the scores into tie groups (rows with equal scores),
so tied scores always act as one threshold. The bootstrap never materialises a resample: each
resample is a vector of per-row counts, and a metric on the resample is the same group-level
formula applied to weighted cumulative counts. Point estimates are that formula with all
counts equal to one, so a point estimate and its bootstrap replicates cannot disagree on ties.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

from .artifacts import jsonable

# What the pipeline uses; the metric kernels and lower-level tests stay importable for tests.
__all__ = [
    "METRICS",
    "Interval",
    "PairedComparison",
    "bootstrap_intervals",
    "compare",
    "delong_interval",
    "delong_paired_test",
    "minimum_detectable_delta",
    "precision_at_top",
    "roc_auc",
    "stratified_resample_counts",
    "unpaired_drop_test",
]

_Floats = NDArray[np.float64]
# A kernel maps a block of resamples (_Block) to one metric value per resample.
_Kernel = Callable[["_Block"], _Floats]

# Elements of a (resamples x rows) block per bootstrap chunk. About 8 float64 blocks are alive
# at once, so 2**20 bounds a chunk near 70 MB whatever the holdout size; larger blocks fall out
# of cache and were not faster (100k rows x 1000 resamples).
_CHUNK_ELEMENTS = 2**20


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
# Input checks


@dataclass(frozen=True)
class _Labels:
    pos_rows: NDArray[np.intp]
    neg_rows: NDArray[np.intp]

    @property
    def n(self) -> int:
        return self.pos_rows.size + self.neg_rows.size


def _labels(y_true: ArrayLike) -> _Labels:
    y = np.asarray(y_true)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array; got shape {y.shape}")
    if y.dtype != bool:
        if y.dtype.kind not in "iuf" or not np.isin(y, (0, 1)).all():
            raise ValueError("y_true must contain only 0 and 1 (or booleans)")
        y = y == 1
    pos_rows, neg_rows = np.flatnonzero(y), np.flatnonzero(~y)
    if pos_rows.size == 0 or neg_rows.size == 0:
        only = "negatives (0)" if pos_rows.size == 0 else "positives (1)"
        raise ValueError(f"y_true must contain both classes; got only {only}")
    return _Labels(pos_rows, neg_rows)


def _scores(scores: ArrayLike, n: int, name: str, probabilities: bool = False) -> _Floats:
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric: {err}") from None
    if s.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array; got shape {s.shape}")
    if s.size != n:
        raise ValueError(f"{name} has {s.size} rows but y_true has {n}; they must be equal")
    if np.isnan(s).any():
        raise ValueError(f"{name} contains {int(np.isnan(s).sum())} NaN values; expected none")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} must be finite; it contains infinity")
    if probabilities and (s.min() < 0.0 or s.max() > 1.0):
        raise ValueError(f"{name} must be probabilities in [0, 1] for this metric")
    return s


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_fraction(value: float, name: str, *, upper: float = 1.0, closed: bool = False) -> None:
    if not (_is_number(value) and (0 < value <= upper if closed else 0 < value < upper)):
        interval = f"(0, {upper:g}]" if closed else f"(0, {upper:g})"
        raise ValueError(f"{name} must be in {interval}; got {value!r}")


def _check_resamples(resamples: int) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)):
        raise ValueError(f"resamples must be a positive integer; got {resamples!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be a positive integer; got {resamples}")


def _check_min_delta(min_delta: float) -> None:
    if not _is_number(min_delta):
        raise ValueError(f"min_delta must be a finite number; got {min_delta!r}")


# ---------------------------------------------------------------------------------------------
# Tie groups and resample blocks


@dataclass(frozen=True)
class _Ranking:
    """One score vector sorted into tie groups (highest score first), split by class."""

    pos_perm: NDArray[np.intp]  # positives (in _Labels.pos_rows order) by descending score
    neg_perm: NDArray[np.intp]
    pos_group: NDArray[np.intp]  # tie group of each positive, in that sorted order
    neg_group: NDArray[np.intp]
    pos_ends: NDArray[np.intp]  # positives in the first g tie groups, g = 0..G
    neg_ends: NDArray[np.intp]
    pos_values: _Floats  # score of each positive, in sorted order
    neg_values: _Floats

    @property
    def groups(self) -> int:
        return self.pos_ends.size - 1


def _rank(labels: _Labels, scores: _Floats) -> _Ranking:
    order = np.argsort(-scores, kind="stable")
    ordered = scores[order]
    starts = np.empty(ordered.size, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    group = np.empty(ordered.size, dtype=np.intp)
    group[order] = np.cumsum(starts) - 1
    n_groups = int(starts.sum())

    def split(rows: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        # Position of each row within its class, read in score order: one O(n) pass instead of
        # a second sort per class.
        position = np.full(ordered.size, -1, dtype=np.intp)
        position[rows] = np.arange(rows.size)
        in_order = position[order]
        perm = in_order[in_order >= 0]
        per_group = np.bincount(group[rows], minlength=n_groups)
        return perm, np.concatenate(([0], np.cumsum(per_group)))

    pos_perm, pos_ends = split(labels.pos_rows)
    neg_perm, neg_ends = split(labels.neg_rows)
    pos_sorted, neg_sorted = labels.pos_rows[pos_perm], labels.neg_rows[neg_perm]
    return _Ranking(
        pos_perm=pos_perm,
        neg_perm=neg_perm,
        pos_group=group[pos_sorted],
        neg_group=group[neg_sorted],
        pos_ends=pos_ends,
        neg_ends=neg_ends,
        pos_values=scores[pos_sorted],
        neg_values=scores[neg_sorted],
    )


@dataclass(frozen=True)
class _Block:
    """Draw counts of a block of resamples in one model's score order, with running sums."""

    ranking: _Ranking
    pos: _Floats  # (resamples, n_pos): draws of each positive, by descending score
    neg: _Floats
    pos_run: _Floats  # (resamples, n_pos + 1): draws of the first j positives; column 0 is 0
    neg_run: _Floats

    @property
    def n_pos(self) -> _Floats:
        return self.pos_run[:, -1]

    @property
    def n_neg(self) -> _Floats:
        return self.neg_run[:, -1]

    def first_groups(self, g: NDArray[np.intp]) -> tuple[_Floats, _Floats]:
        """Return the positives and negatives drawn in the first g[i] tie groups of row i."""
        rows = np.arange(g.size)
        return (
            self.pos_run[rows, self.ranking.pos_ends[g]],
            self.neg_run[rows, self.ranking.neg_ends[g]],
        )

    def first_group_reaching(
        self, target: _Floats, count: Callable[[_Floats, _Floats], _Floats]
    ) -> NDArray[np.intp]:
        """Return per row the fewest top tie groups whose count(pos, neg) reaches target."""
        # Counts grow with g, so bisect all rows at once: O(resamples * log groups) lookups
        # instead of a scan of every group. Invariant: count(low) < target <= count(high).
        low = np.zeros(target.size, dtype=np.intp)
        high = np.full(target.size, self.ranking.groups, dtype=np.intp)
        while (high - low > 1).any():
            mid = (low + high) // 2
            reached = count(*self.first_groups(mid)) >= target
            high = np.where(reached, mid, high)
            low = np.where(reached, low, mid)
        return high


def _block(ranking: _Ranking, pos_counts: _Floats, neg_counts: _Floats) -> _Block:
    # np.take beats fancy indexing along axis 1 by about 1.5x here.
    pos = np.take(pos_counts, ranking.pos_perm, axis=1)
    neg = np.take(neg_counts, ranking.neg_perm, axis=1)
    pos_run = np.zeros((pos.shape[0], pos.shape[1] + 1))
    neg_run = np.zeros((neg.shape[0], neg.shape[1] + 1))
    np.cumsum(pos, axis=1, out=pos_run[:, 1:])
    np.cumsum(neg, axis=1, out=neg_run[:, 1:])
    return _Block(ranking, pos, neg, pos_run, neg_run)


# ---------------------------------------------------------------------------------------------
# Metric kernels: one value per resample row of a block


def _auc_kernel(b: _Block) -> _Floats:
    r = b.ranking
    # A positive loses to the negatives above its tie group and to half of those tied with it:
    # losses = sum_i draws_i * (N_above_i + N_through_i) / 2. Counts are integers and these
    # sums stay far below 2**53, so the AUC carries a single rounding.
    around = b.neg_run[:, r.neg_ends[r.pos_group]] + b.neg_run[:, r.neg_ends[r.pos_group + 1]]
    losses: _Floats = np.einsum("ij,ij->i", b.pos, around)
    pairs = b.n_pos * b.n_neg
    return (pairs - 0.5 * losses) / pairs


def _precision_kernel(b: _Block, fraction: float) -> _Floats:
    # Round before ceil so 0.05 * 2400 is 120 rows, not 121 from floating-point noise.
    k = np.maximum(np.ceil(np.round(fraction * (b.n_pos + b.n_neg), 9)), 1.0)
    g = b.first_group_reaching(k, np.add)
    p_lo, n_lo = b.first_groups(g - 1)
    p_hi, n_hi = b.first_groups(g)
    t_lo, t_hi = p_lo + n_lo, p_hi + n_hi
    # The tie group straddling the cut-off enters in proportion, so no tie order is assumed.
    return (p_lo + (k - t_lo) * (p_hi - p_lo) / (t_hi - t_lo)) / k


def _fpr_kernel(b: _Block, recall: float) -> _Floats:
    need = np.ceil(np.round(recall * b.n_pos, 9))
    # The highest threshold reaching the recall flags the fewest negatives.
    g = b.first_group_reaching(need, lambda pos, _neg: pos)
    return b.first_groups(g)[1] / b.n_neg


def _average_precision_kernel(b: _Block) -> _Floats:
    r = b.ranking
    # Precision at the threshold of each positive's tie group, weighted by its draws.
    pos = b.pos_run[:, r.pos_ends[r.pos_group + 1]]
    flagged = pos + b.neg_run[:, r.neg_ends[r.pos_group + 1]]
    # Nothing is flagged only where this positive was never drawn, so its term is 0 anyway.
    precision = np.divide(pos, flagged, out=np.zeros_like(flagged), where=flagged > 0)
    weighted: _Floats = np.einsum("ij,ij->i", b.pos, precision)
    return weighted / b.n_pos


def _brier_kernel(b: _Block) -> _Floats:
    r = b.ranking
    squared = b.pos @ (1.0 - r.pos_values) ** 2 + b.neg @ r.neg_values**2
    return squared / (b.n_pos + b.n_neg)


def _accuracy_kernel(b: _Block, threshold: float) -> _Floats:
    r = b.ranking
    # Positive means score > threshold, as a classifier's predict() does at 0.5.
    correct = b.pos @ (r.pos_values > threshold) + b.neg @ (r.neg_values <= threshold)
    return correct / (b.n_pos + b.n_neg)


def _evaluate(kernel: _Kernel, ranking: _Ranking) -> float:
    # The point estimate is the resample where every row is drawn once.
    ones = (np.ones((1, ranking.pos_perm.size)), np.ones((1, ranking.neg_perm.size)))
    return float(kernel(_block(ranking, *ones))[0])


def _point(
    kernel: _Kernel, y_true: ArrayLike, scores: ArrayLike, probabilities: bool = False
) -> float:
    labels = _labels(y_true)
    return _evaluate(kernel, _rank(labels, _scores(scores, labels.n, "scores", probabilities)))


# ---------------------------------------------------------------------------------------------
# Point metrics


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Return the ROC AUC (ties count one half), equal to sklearn's roc_auc_score."""
    return _point(_auc_kernel, y_true, scores)


def precision_at_top(y_true: ArrayLike, scores: ArrayLike, fraction: float = 0.05) -> float:
    """Return the precision among the top ceil(fraction * n) scores, ties shared pro rata."""
    _check_fraction(fraction, "fraction", closed=True)
    return _point(partial(_precision_kernel, fraction=fraction), y_true, scores)


def fpr_at_recall(y_true: ArrayLike, scores: ArrayLike, recall: float = 0.80) -> float:
    """Return the smallest false-positive rate at a threshold whose recall is >= recall."""
    _check_fraction(recall, "recall", closed=True)
    return _point(partial(_fpr_kernel, recall=recall), y_true, scores)


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Return average precision (step-wise, ties as one threshold), as sklearn computes it."""
    return _point(_average_precision_kernel, y_true, scores)


def brier_score(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Return the mean squared error of probability scores."""
    return _point(_brier_kernel, y_true, scores, probabilities=True)


def accuracy(y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> float:
    """Return the accuracy of predicting positive when the probability exceeds threshold."""
    _check_fraction(threshold, "threshold")
    return _point(partial(_accuracy_kernel, threshold=threshold), y_true, scores, True)


@dataclass(frozen=True)
class _Metric:
    point: Callable[[ArrayLike, ArrayLike], float]
    kernel: _Kernel
    higher_is_better: bool
    probabilities: bool = False


_METRICS: dict[str, _Metric] = {
    "roc_auc": _Metric(roc_auc, _auc_kernel, True),
    "precision_at_5pct": _Metric(precision_at_top, partial(_precision_kernel, fraction=0.05), True),
    "fpr_at_recall_80": _Metric(fpr_at_recall, partial(_fpr_kernel, recall=0.80), False),
    "average_precision": _Metric(average_precision, _average_precision_kernel, True),
    "brier": _Metric(brier_score, _brier_kernel, False, probabilities=True),
    "accuracy_at_0.5": _Metric(
        accuracy, partial(_accuracy_kernel, threshold=0.5), True, probabilities=True
    ),
}
METRICS: dict[str, Callable[[ArrayLike, ArrayLike], float]] = {
    name: metric.point for name, metric in _METRICS.items()
}
HIGHER_IS_BETTER: dict[str, bool] = {
    name: metric.higher_is_better for name, metric in _METRICS.items()
}


def _metric(name: str) -> _Metric:
    if name not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}; got {name!r}")
    return _METRICS[name]


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


def _count_chunks(labels: _Labels, resamples: int, seed: int) -> Iterator[tuple[_Floats, _Floats]]:
    """Yield per-row draw counts (positives, negatives) for consecutive blocks of resamples."""
    rng = np.random.default_rng(seed)
    n_pos, n_neg = labels.pos_rows.size, labels.neg_rows.size
    per_chunk = max(1, min(resamples, _CHUNK_ELEMENTS // labels.n))
    for start in range(0, resamples, per_chunk):
        size = min(per_chunk, resamples - start)
        # float64 counts: the running sums and dot products downstream need no casts.
        pos, neg = np.empty((size, n_pos)), np.empty((size, n_neg))
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
