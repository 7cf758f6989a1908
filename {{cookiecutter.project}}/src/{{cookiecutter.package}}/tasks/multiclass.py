"""Multiclass metrics with class-stratified bootstrap intervals, and the per-row log loss.

Targets are class codes 0..K-1, the column order of the probability matrix (a scikit-learn
model's `classes_`); `encode` maps labels to codes. Every resample keeps each class's count,
so per-class recall's denominator is fixed and every class is present in every resample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

# The binary ROC AUC's tie-group machinery, reused for each one-vs-rest AUC so ties and
# weights are handled exactly as for a binary model.
from ..ranking import _auc_kernel, _block, _Labels, _rank, _Ranking
from ..stats import Interval
from . import resample

__all__ = [
    "EPSILON",
    "HIGHER_IS_BETTER",
    "codes",
    "encode",
    "log_loss_rows",
    "multiclass_intervals",
    "multiclass_metrics",
    "probabilities",
    "recall_name",
]

Floats = NDArray[np.float64]
Codes = NDArray[np.intp]

# Probabilities are clipped here before the logarithm, as scikit-learn's log_loss does, so
# one confidently wrong row costs about 34.5 nats instead of infinity.
EPSILON = 1e-15
HIGHER_IS_BETTER = {
    "macro_f1": True,
    "log_loss": False,
    "macro_roc_auc_ovr": True,
    "accuracy": True,
}


def recall_name(label: object) -> str:
    """Return the metric name of one class's recall."""
    return f"recall[{label}]"


def encode(labels: ArrayLike, classes: Sequence[object]) -> Codes:
    """Return each label's position in `classes`; a label not in `classes` is an error."""
    y = np.asarray(labels, dtype=object)
    position = {label: i for i, label in enumerate(classes)}
    unknown = sorted({str(v) for v in y.ravel() if v not in position})
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not among the classes {list(classes)}")
    return np.fromiter((position[v] for v in y.ravel()), dtype=np.intp, count=y.size)


def codes(y_true: ArrayLike, k: int) -> Codes:
    """Return `y_true` as class codes in [0, k), or raise ValueError naming what is wrong."""
    y = np.asarray(y_true)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array; got shape {y.shape}")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= k:
        raise ValueError(
            f"y_true must hold class codes 0..{k - 1} (the probability columns); "
            "use multiclass.encode(labels, classes) to get them"
        )
    return y.astype(np.intp)


def probabilities(proba: ArrayLike, n: int | None = None) -> Floats:
    """Return a (rows, classes) matrix of probabilities that sum to one per row, or raise."""
    try:
        p = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"probabilities must be numeric: {err}") from None
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities must be (rows, classes >= 2); got shape {p.shape}")
    if n is not None and p.shape[0] != n:
        raise ValueError(f"probabilities has {p.shape[0]} rows but y_true has {n}")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError("probabilities must be finite and within [0, 1]")
    off = np.abs(p.sum(axis=1) - 1.0)
    if off.max() > 1e-6:
        row = int(off.argmax())
        raise ValueError(f"probabilities must sum to 1 per row; row {row} sums to {p[row].sum()}")
    return p


def _checked(y_true: ArrayLike, proba: ArrayLike) -> tuple[Codes, Floats]:
    p = probabilities(proba)
    y = codes(y_true, p.shape[1])
    if y.size != p.shape[0]:
        raise ValueError(f"probabilities has {p.shape[0]} rows but y_true has {y.size}")
    missing = np.flatnonzero(np.bincount(y, minlength=p.shape[1]) == 0)
    if missing.size:
        raise ValueError(
            f"classes {missing.tolist()} have no rows in y_true: their recall and "
            "one-vs-rest AUC are undefined; every class needs labelled rows"
        )
    return y, p


def log_loss_rows(y_true: ArrayLike, proba: ArrayLike) -> Floats:
    """Return each row's log loss: minus the log of the probability given to its true class."""
    p = probabilities(proba)
    y = codes(y_true, p.shape[1])
    if y.size != p.shape[0]:
        raise ValueError(f"probabilities has {p.shape[0]} rows but y_true has {y.size}")
    loss: Floats = -np.log(np.clip(p[np.arange(y.size), y], EPSILON, 1.0))
    return loss


def _ovr_auc(rankings: Sequence[tuple[_Labels, _Ranking]], counts: Floats) -> Floats:
    aucs = np.empty((len(rankings), counts.shape[0]))
    for k, (labels, ranking) in enumerate(rankings):
        block = _block(ranking, counts[:, labels.pos_rows], counts[:, labels.neg_rows])
        aucs[k] = _auc_kernel(block)
    macro: Floats = aucs.mean(axis=0)
    return macro


def _one_vs_rest(y: Codes, p: Floats) -> list[tuple[_Labels, _Ranking]]:
    """Each class against the rest, its scores sorted once for every block of resamples."""
    out = []
    for k in range(p.shape[1]):
        labels = _Labels(np.flatnonzero(y == k), np.flatnonzero(y != k))
        out.append((labels, _rank(labels, p[:, k])))
    return out


def _kernel(y: Codes, p: Floats, names: Sequence[str]) -> resample.Kernel:
    """All multiclass metrics: per-row sums from one matrix product, and the AUCs by class."""
    k, n = p.shape[1], y.size
    truth = np.eye(k)[y]
    predicted = np.eye(k)[p.argmax(axis=1)]
    hits = truth * predicted  # one-hot of the true class where the prediction is right
    # Class sizes are fixed by the stratification, so they divide in every resample.
    sizes = truth.sum(axis=0)
    loss = -np.log(np.clip(p[np.arange(n), y], EPSILON, 1.0))
    per_row = np.vstack([hits.T, predicted.T, loss])
    rankings = _one_vs_rest(y, p)

    def kernel(counts: Floats) -> dict[str, Floats]:
        sums = resample.weighted_sums(counts, per_row)
        tp, flagged, total_loss = sums[:, :k], sums[:, k : 2 * k], sums[:, 2 * k]
        recall = tp / sizes
        metrics = {
            "macro_f1": (2 * tp / (flagged + sizes)).mean(axis=1),
            "log_loss": total_loss / n,
            "macro_roc_auc_ovr": _ovr_auc(rankings, counts),
            "accuracy": tp.sum(axis=1) / n,
        }
        for c, name in enumerate(names):
            metrics[recall_name(name)] = recall[:, c]
        return metrics

    return kernel


def _class_names(classes: Sequence[object] | None, k: int) -> list[str]:
    if classes is None:
        return [str(c) for c in range(k)]
    if len(classes) != k:
        raise ValueError(f"classes has {len(classes)} names but probabilities has {k} columns")
    return [str(c) for c in classes]


def multiclass_metrics(
    y_true: ArrayLike, proba: ArrayLike, classes: Sequence[object] | None = None
) -> dict[str, float]:
    """Return macro-F1, log loss, one-vs-rest macro ROC AUC, accuracy and each class's recall."""
    y, p = _checked(y_true, proba)
    return resample.point(_kernel(y, p, _class_names(classes, p.shape[1])), y.size)


def multiclass_intervals(
    y_true: ArrayLike,
    proba: ArrayLike,
    classes: Sequence[object] | None = None,
    *,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Interval]:
    """Return every multiclass metric with a class-stratified percentile-bootstrap interval."""
    y, p = _checked(y_true, proba)
    kernel = _kernel(y, p, _class_names(classes, p.shape[1]))
    strata = [np.flatnonzero(y == c) for c in range(p.shape[1])]
    return resample.percentile_intervals(
        kernel, strata, y.size, resamples=resamples, seed=seed, level=level
    )
