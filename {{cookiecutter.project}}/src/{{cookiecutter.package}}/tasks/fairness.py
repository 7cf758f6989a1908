"""How differently a model serves the groups of a protected attribute, with bootstrap intervals.

Regression: the error ratio, the largest group's mean absolute error over the smallest (1 is
parity). Classification: the recall gap, for each class the spread of its recall across groups,
and the largest of those (0 is parity); for a binary model that is the equalized-odds gap (the
larger of the true-positive-rate and false-positive-rate spreads). Resamples keep every group's
size (and, for classes, every group-and-class cell's), so each group is judged on its own rows.
Groups or cells with fewer than `min_rows` rows are reported but left out of the measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from ..artifacts import jsonable
from ..stats import Interval
from . import resample
from .multiclass import codes, probabilities
from .regression import values

__all__ = ["GroupMeasure", "error_ratio", "group_codes", "recall_gap"]

Floats = NDArray[np.float64]
Codes = NDArray[np.intp]


@dataclass(frozen=True)
class GroupMeasure:
    """One disparity measure with its interval, and what each group scored."""

    measure: str
    parity: float  # the value of a model that treats every group alike
    interval: Interval
    contrast: str  # the groups (and class) the measure compares, chosen on the holdout
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # too small to judge

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (non-finite numbers become None)."""
        data: dict[str, Any] = dict(jsonable(asdict(self)))
        return data


def group_codes(groups: ArrayLike, n: int) -> tuple[Codes, list[str]]:
    """Return a group code per row and each code's name; missing values are a group of their own."""
    labels = pd.Series(np.asarray(groups, dtype=object)).astype("string").fillna("(missing)")
    if labels.size != n:
        raise ValueError(f"groups has {labels.size} rows but y_true has {n}; they must be equal")
    found, names = pd.factorize(labels, sort=True)
    return found.astype(np.intp), [str(name) for name in names]


def error_ratio(
    y_true: ArrayLike,
    predictions: ArrayLike,
    groups: ArrayLike,
    *,
    min_rows: int = 30,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> GroupMeasure:
    """Return the worst-served group's mean absolute error over the best-served's.

    Both groups are chosen on the holdout among groups of at least `min_rows` rows; the
    interval is for that contrast, so it may reach below 1 when the groups are alike.
    """
    y = values(y_true, "y_true")
    error = np.abs(values(predictions, "predictions", y.size) - y)
    code, names = group_codes(groups, y.size)
    sizes = np.bincount(code, minlength=len(names))
    judged = np.flatnonzero(sizes >= min_rows)
    report = {
        names[g]: {"n": int(sizes[g]), "mae": float(error[code == g].mean())}
        for g in range(len(names))
    }
    left_out = [names[g] for g in range(len(names)) if sizes[g] < min_rows]
    if judged.size < 2:
        raise ValueError(
            f"need at least two groups of {min_rows} rows to compare; sizes are "
            f"{ {names[g]: int(sizes[g]) for g in range(len(names))} }"
        )
    # The contrast is fixed on the holdout (its worst- and best-served judged groups) and
    # resampled as such: a max over groups taken afresh in each resample is biased upward,
    # and its interval sits above parity (even above the point) for groups that are alike.
    mae = np.array([error[code == g].mean() for g in judged])
    worst, best = judged[int(mae.argmax())], judged[int(mae.argmin())]
    worst_error = np.where(code == worst, error, 0.0)
    best_error = np.where(code == best, error, 0.0)

    per_row = np.vstack([worst_error, best_error])

    def kernel(counts: Floats) -> dict[str, Floats]:
        # Group sizes are fixed by the stratification, so they are the denominators.
        sums = resample.weighted_sums(counts, per_row)
        return {"error_ratio": (sums[:, 0] / sizes[worst]) / (sums[:, 1] / sizes[best])}

    strata = [np.flatnonzero(code == g) for g in range(len(names))]
    with np.errstate(divide="ignore", invalid="ignore"):  # a group with no error: ratio inf
        interval = resample.percentile_intervals(
            kernel, strata, y.size, resamples=resamples, seed=seed, level=level
        )["error_ratio"]
    contrast = f"{names[worst]} / {names[best]}"
    return GroupMeasure("error_ratio", 1.0, interval, contrast, report, left_out)


def recall_gap(
    y_true: ArrayLike,
    proba: ArrayLike,
    groups: ArrayLike,
    classes: Sequence[object] = (),
    *,
    min_rows: int = 10,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> GroupMeasure:
    """Return the largest spread across groups of any class's recall (predicted = argmax).

    The class and the two groups are chosen on the holdout among (group, class) cells of at
    least `min_rows` rows; the interval is for that contrast, so it may reach below 0 when the
    groups are alike.
    """
    p = probabilities(proba)
    k = p.shape[1]
    y = codes(y_true, k)
    if y.size != p.shape[0]:
        raise ValueError(f"probabilities has {p.shape[0]} rows but y_true has {y.size}")
    if classes and len(classes) != k:
        raise ValueError(f"classes has {len(classes)} names but probabilities has {k} columns")
    names = [str(c) for c in classes] if classes else [str(c) for c in range(k)]
    code, group_names = group_codes(groups, y.size)
    cell = code * k + y  # one stratum per (group, class)
    cells = np.bincount(cell, minlength=len(group_names) * k).reshape(len(group_names), k)
    judged = cells >= min_rows
    if not (judged.sum(axis=0) >= 2).any():
        raise ValueError(
            f"no class has {min_rows} rows in two groups or more; rows per group and class: "
            f"{cells.tolist()} (groups {group_names}, classes {names})"
        )
    hit = (p.argmax(axis=1) == y).astype(np.float64)
    recall = np.bincount(cell, weights=hit, minlength=cells.size) / np.maximum(cells.ravel(), 1)
    widest, high, low = _widest_recall_gap(recall, judged)
    high_cell, low_cell = high * k + widest, low * k + widest
    high_hits = np.where(cell == high_cell, hit, 0.0)
    low_hits = np.where(cell == low_cell, hit, 0.0)

    per_row = np.vstack([high_hits, low_hits])

    def kernel(counts: Floats) -> dict[str, Floats]:
        # Cell sizes are fixed by the stratification, so they are the denominators.
        sums = resample.weighted_sums(counts, per_row)
        sizes = cells.ravel()
        return {"recall_gap": sums[:, 0] / sizes[high_cell] - sums[:, 1] / sizes[low_cell]}

    strata = [np.flatnonzero(cell == c) for c in np.flatnonzero(cells.ravel())]
    interval = resample.percentile_intervals(
        kernel, strata, y.size, resamples=resamples, seed=seed, level=level
    )["recall_gap"]
    report = {
        group_names[g]: {
            "n": int(cells[g].sum()),
            "recall": {
                names[c]: float(recall[g * k + c]) if cells[g, c] else None for c in range(k)
            },
        }
        for g in range(len(group_names))
    }
    left_out = [
        f"{group_names[g]}/{names[c]}"
        for g in range(len(group_names))
        for c in range(k)
        if 0 < cells[g, c] < min_rows
    ]
    contrast = f"recall of {names[widest]}: {group_names[high]} - {group_names[low]}"
    return GroupMeasure("recall_gap", 0.0, interval, contrast, report, left_out)


def _widest_recall_gap(recall: Floats, judged: NDArray[np.bool_]) -> tuple[int, int, int]:
    """(class, higher group, lower group) of the largest recall spread among judged cells.

    As for the error ratio, the contrast is fixed on the holdout: the class whose recall
    differs most between judged groups, and those two groups.
    """
    k = judged.shape[1]
    gaps = {}
    for c in range(k):
        judged_groups = np.flatnonzero(judged[:, c])
        if judged_groups.size >= 2:
            cell_recall = recall[judged_groups * k + c]
            high = int(judged_groups[cell_recall.argmax()])
            low = int(judged_groups[cell_recall.argmin()])
            gaps[c] = (float(cell_recall.max() - cell_recall.min()), high, low)
    widest = max(gaps, key=lambda c: gaps[c][0])
    return widest, gaps[widest][1], gaps[widest][2]
