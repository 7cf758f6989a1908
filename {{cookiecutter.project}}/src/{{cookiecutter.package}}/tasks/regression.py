"""Regression metrics with bootstrap intervals, and the per-row losses the paired test compares.

Every metric is a weighted formula over per-row quantities, so one matrix product per
quantity evaluates it on a whole block of resamples (see `resample.py`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..stats import Interval
from . import resample

__all__ = [
    "HIGHER_IS_BETTER",
    "MAPE_MIN_SHARE",
    "absolute_error",
    "mape_applies",
    "metric_names",
    "regression_intervals",
    "regression_metrics",
    "squared_error",
    "values",
]

Floats = NDArray[np.float64]

HIGHER_IS_BETTER = {"rmse": False, "mae": False, "r2": True, "relative_mae": False, "mape": False}
# MAPE divides by each target, so it is reported only when no |target| is below this share of
# the mean |target|; near zero one row's percentage would swamp the rest.
MAPE_MIN_SHARE = 0.1


def values(data: ArrayLike, name: str, n: int | None = None) -> Floats:
    """Return `data` as a finite 1-D float array, or raise ValueError naming `name`."""
    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric: {err}") from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array; got shape {array.shape}")
    if n is not None and array.size != n:
        raise ValueError(f"{name} has {array.size} rows but y_true has {n}; they must be equal")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite values; expected none")
    return array


def _pair(y_true: ArrayLike, predictions: ArrayLike) -> tuple[Floats, Floats]:
    y = values(y_true, "y_true")
    if y.size < 2 or np.ptp(y) == 0:
        raise ValueError("y_true needs at least two different values (R² is undefined otherwise)")
    return y, values(predictions, "predictions", y.size)


def squared_error(y_true: ArrayLike, predictions: ArrayLike) -> Floats:
    """Return each row's squared error."""
    y = values(y_true, "y_true")
    error: Floats = (values(predictions, "predictions", y.size) - y) ** 2
    return error


def absolute_error(y_true: ArrayLike, predictions: ArrayLike) -> Floats:
    """Return each row's absolute error."""
    y = values(y_true, "y_true")
    error: Floats = np.abs(values(predictions, "predictions", y.size) - y)
    return error


def mape_applies(y_true: ArrayLike) -> bool:
    """Return whether no |target| is near zero, so the mean absolute percentage error is fair."""
    magnitude = np.abs(values(y_true, "y_true"))
    return bool(magnitude.min() >= MAPE_MIN_SHARE * magnitude.mean() > 0)


def metric_names(y_true: ArrayLike) -> list[str]:
    """Return the metrics reported for this target: MAPE only where mape_applies."""
    names = ["rmse", "mae", "r2", "relative_mae"]
    return [*names, "mape"] if mape_applies(y_true) else names


def _kernel(y: Floats, predictions: Floats) -> resample.Kernel:
    """All regression metrics from one product of the draw counts with per-row quantities."""
    n = y.size
    error = predictions - y
    centred = y - y.mean()  # R²'s spread is shift-free; centring keeps it well conditioned
    columns = [error**2, np.abs(error), centred, centred**2, np.abs(y)]
    with_mape = mape_applies(y)
    if with_mape:
        columns.append(np.abs(error) / np.abs(y))
    per_row = np.vstack(columns)

    def kernel(counts: Floats) -> dict[str, Floats]:
        # Every resample draws n rows (one stratum), so n is every weighted mean's divisor.
        sums = resample.weighted_sums(counts, per_row)
        squared, absolute, y_sum, y_squares, magnitude = sums.T[:5]
        spread = y_squares - y_sum**2 / n  # the resample's total sum of squares
        with np.errstate(divide="ignore", invalid="ignore"):  # a constant resample: R² NaN
            r2 = 1.0 - squared / spread
        metrics = {
            "rmse": np.sqrt(squared / n),
            "mae": absolute / n,
            "r2": r2,
            "relative_mae": absolute / magnitude,
        }
        if with_mape:
            metrics["mape"] = sums[:, 5] / n
        return metrics

    return kernel


def regression_metrics(y_true: ArrayLike, predictions: ArrayLike) -> dict[str, float]:
    """Return RMSE, MAE, R², MAE relative to the mean |target|, and MAPE where it applies."""
    y, predicted = _pair(y_true, predictions)
    return resample.point(_kernel(y, predicted), y.size)


def regression_intervals(
    y_true: ArrayLike,
    predictions: ArrayLike,
    *,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Interval]:
    """Return every regression metric with a percentile-bootstrap interval (rows resampled)."""
    y, predicted = _pair(y_true, predictions)
    everything = [np.arange(y.size)]
    return resample.percentile_intervals(
        _kernel(y, predicted), everything, y.size, resamples=resamples, seed=seed, level=level
    )
