"""Predictions that need no model: constants from the target, and the best one-feature model.

A model worth deploying beats all of them. The one-feature models are group averages (a number
cut into quantile bins, a category by value) fitted on the very rows they are judged on, so
they are optimistic: a fair bar for the model to clear.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from .multiclass import codes, log_loss_rows
from .regression import squared_error, values

__all__ = [
    "BINS",
    "MIN_GROUP_ROWS",
    "best_single_feature_classes",
    "best_single_feature_value",
    "class_baselines",
    "feature_groups",
    "value_baselines",
]

Floats = NDArray[np.float64]
Codes = NDArray[np.intp]

BINS = 10  # quantile bins of a numeric column
# Category values with fewer rows are pooled into one group: a mean over a handful of rows
# would memorise their targets and make the bar unfairly high.
MIN_GROUP_ROWS = 20


def value_baselines(y_fit: ArrayLike, n: int) -> dict[str, Floats]:
    """Constant predictions for n rows: the mean (best for RMSE) and the median (best for MAE)."""
    y = values(y_fit, "y_fit")
    return {"mean": np.full(n, y.mean()), "median": np.full(n, float(np.median(y)))}


def class_baselines(y_fit: ArrayLike, k: int, n: int) -> dict[str, Floats]:
    """Constant probabilities for n rows: the class prior, and all mass on the majority class."""
    prior = np.bincount(codes(y_fit, k), minlength=k) / np.asarray(y_fit).size
    return {
        "prior": np.tile(prior, (n, 1)),
        "majority": np.tile(np.eye(k)[int(prior.argmax())], (n, 1)),
    }


def feature_groups(column: pd.Series) -> Codes | None:
    """Return a group code per row (bins of a number, values of a category), or None if constant.

    Missing values form their own group, so a column whose missingness predicts the target
    counts as a feature too.
    """
    if pd.api.types.is_bool_dtype(column) or not (
        pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)
    ):
        labels = column.astype("string").fillna("(missing)")
        sizes = labels.map(labels.value_counts())
        labels = labels.where(sizes >= MIN_GROUP_ROWS, "(rare)")
        groups: Codes = pd.factorize(labels)[0].astype(np.intp)
    else:
        # Dates bin by time since the earliest one (NaT stays missing, any time zone works).
        numbers = (column - column.min()).dt.total_seconds() if column.dtype.kind == "M" else column
        binned = pd.qcut(numbers.astype("float64"), BINS, labels=False, duplicates="drop")
        groups = binned.fillna(-1).to_numpy().astype(np.intp) + 1
    present, compact = np.unique(groups, return_inverse=True)  # codes 0..G-1, none empty
    return None if present.size < 2 else compact.astype(np.intp)


def _group_means(groups: Codes, targets: Floats) -> Floats:
    """The mean target (rows x columns) of each row's group."""
    sums = np.zeros((int(groups.max()) + 1, targets.shape[1]))
    np.add.at(sums, groups, targets)
    means: Floats = (sums / np.bincount(groups)[:, None])[groups]
    return means


def best_single_feature_value(features: pd.DataFrame, y_true: ArrayLike) -> tuple[str, Floats]:
    """The column whose group means predict y_true with the least squared error, and them.

    Returns ("mean", the mean) when no column varies.
    """
    y = values(y_true, "y_true")
    best: tuple[float, str, Floats] = (np.inf, "mean", np.full(y.size, y.mean()))
    for name in features.columns:
        groups = feature_groups(features[name])
        if groups is None:
            continue
        predicted = _group_means(groups, y[:, None])[:, 0]
        loss = float(squared_error(y, predicted).mean())
        if loss < best[0]:
            best = (loss, str(name), predicted)
    return best[1], best[2]


def best_single_feature_classes(
    features: pd.DataFrame, y_true: ArrayLike, k: int
) -> tuple[str, Floats]:
    """The column whose per-group class shares give the lowest log loss, and those shares.

    Shares are smoothed by half a row per class, so a class unseen in a group keeps a small
    probability instead of an infinite loss. Returns ("prior", the class shares) when no
    column varies.
    """
    y = codes(y_true, k)
    onehot = np.eye(k)[y]
    best: tuple[float, str, Floats] = (np.inf, "prior", np.tile(onehot.mean(axis=0), (y.size, 1)))
    for name in features.columns:
        groups = feature_groups(features[name])
        if groups is None:
            continue
        sizes = np.bincount(groups)[groups][:, None]
        proba = (_group_means(groups, onehot) * sizes + 0.5) / (sizes + 0.5 * k)
        loss = float(log_loss_rows(y, proba).mean())
        if loss < best[0]:
            best = (loss, str(name), proba)
    return best[1], best[2]
