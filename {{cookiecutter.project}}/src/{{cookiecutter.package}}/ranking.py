"""Ranking metrics from one sort of the scores: tie groups, resample blocks, metric kernels.

Every metric is computed from one sort of the scores into tie groups (rows with equal scores),
so tied scores always act as one threshold. A bootstrap resample is a vector of per-row counts,
and a metric on it is the same group-level formula (a kernel) applied to weighted cumulative
counts; a point estimate is that formula with all counts equal to one. `stats.py` builds the
intervals and tests on these kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Floats = NDArray[np.float64]
# Draw counts are whole numbers, int64 where they come from resampling: their running sums
# (np.cumsum) are ten times faster on int64 than on float64, and exact either way.
_Counts = NDArray[np.int64 | np.float64]
# A kernel maps a block of resamples (_Block) to one metric value per resample.
_Kernel = Callable[["_Block"], _Floats]


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
    pos: _Counts  # (resamples, n_pos): draws of each positive, by descending score
    neg: _Counts
    pos_run: _Counts  # (resamples, n_pos + 1): draws of the first j positives; column 0 is 0
    neg_run: _Counts

    @property
    def n_pos(self) -> _Counts:
        return self.pos_run[:, -1]

    @property
    def n_neg(self) -> _Counts:
        return self.neg_run[:, -1]

    def first_groups(self, g: NDArray[np.intp]) -> tuple[_Counts, _Counts]:
        """Return the positives and negatives drawn in the first g[i] tie groups of row i."""
        rows = np.arange(g.size)
        return (
            self.pos_run[rows, self.ranking.pos_ends[g]],
            self.neg_run[rows, self.ranking.neg_ends[g]],
        )

    def first_group_reaching(
        self, target: _Floats, count: Callable[[_Counts, _Counts], _Counts]
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


def _block(ranking: _Ranking, pos_counts: _Counts, neg_counts: _Counts) -> _Block:
    # np.take beats fancy indexing along axis 1 by about 1.5x here.
    pos = np.take(pos_counts, ranking.pos_perm, axis=1)
    neg = np.take(neg_counts, ranking.neg_perm, axis=1)
    pos_run = np.zeros((pos.shape[0], pos.shape[1] + 1), dtype=pos.dtype)
    neg_run = np.zeros((neg.shape[0], neg.shape[1] + 1), dtype=neg.dtype)
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
    return np.asarray((p_lo + (k - t_lo) * (p_hi - p_lo) / (t_hi - t_lo)) / k, dtype=np.float64)


def _fpr_kernel(b: _Block, recall: float) -> _Floats:
    need = np.ceil(np.round(recall * b.n_pos, 9))
    # The highest threshold reaching the recall flags the fewest negatives.
    g = b.first_group_reaching(need, lambda pos, _neg: pos)
    return np.asarray(b.first_groups(g)[1] / b.n_neg, dtype=np.float64)


def _average_precision_kernel(b: _Block) -> _Floats:
    r = b.ranking
    # Precision at the threshold of each positive's tie group, weighted by its draws.
    pos = b.pos_run[:, r.pos_ends[r.pos_group + 1]]
    flagged = pos + b.neg_run[:, r.neg_ends[r.pos_group + 1]]
    # Nothing is flagged only where this positive was never drawn, so its term is 0 anyway.
    precision = np.divide(pos, flagged, out=np.zeros(flagged.shape), where=flagged > 0)
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
