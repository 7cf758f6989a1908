"""What the stages ask of any task, through `TASKS[task]`: the baselines a model must beat,
its metric on each slice, and whether delayed labels show it has dropped since evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import ndtri

from ..stats import Interval
from .table import TASKS, Task, TaskStats

__all__ = ["baseline_report", "realised_performance", "slice_report"]


def _headline(
    task: TaskStats,
    y: ArrayLike,
    prediction: ArrayLike,
    classes: Sequence[object],
    level: float,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    return task.metrics(y, prediction, classes, level=level, resamples=resamples, seed=seed)[
        task.headline
    ].to_dict()


def baseline_report(
    task: Task,
    y_true: ArrayLike,
    prediction: ArrayLike,
    y_fit: ArrayLike,
    features: pd.DataFrame,
    classes: Sequence[object] = (),
    *,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The headline metric of each model-free baseline and of the best single feature, and the
    model's paired gain over that feature (an interval at `level` in the compared metric).

    `y_fit` is the target the constants are taken from (the training rows); the single feature
    is fitted on the holdout itself, so it is an optimistic bar.
    """
    stats_ = TASKS[task]
    n = np.asarray(y_true).shape[0]
    constants = stats_.baselines(y_fit, n, classes)
    name, reference = stats_.single_feature(features, y_true, classes)
    gain = stats_.paired_test(
        y_true, prediction, reference, min_delta=0.0, alpha=(1 - level) / 2, level=level
    )
    headline = stats_.headline
    report: dict[str, Any] = {
        "headline": headline,
        "constants": {
            key: _headline(stats_, y_true, values, classes, level, resamples, seed)
            for key, values in constants.items()
        },
        "single_feature": {
            "name": name,
            headline: _headline(stats_, y_true, reference, classes, level, resamples, seed),
        },
        "gain": {
            "metric": gain.metric,
            "value": gain.diff,
            "low": gain.low,
            "high": gain.high,
            "method": f"{gain.method} paired",
        },
    }
    return report


MIN_SLICE_CLASS_ROWS = 5  # rows of each class a classification slice needs to be judged


def slice_report(
    task: Task,
    y_true: ArrayLike,
    prediction: ArrayLike,
    slices: Mapping[str, ArrayLike],
    classes: Sequence[object] = (),
    *,
    min_rows: int = 100,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The headline metric with its interval on each slice (a boolean row mask, by name).

    A slice too small to judge says so, and why, instead of vanishing from the report.
    """
    stats_ = TASKS[task]
    y, predicted = np.asarray(y_true), np.asarray(prediction)
    out: dict[str, Any] = {}
    for name, rows in slices.items():
        mask = np.asarray(rows, dtype=bool)
        if mask.shape != y.shape:
            raise ValueError(f"slice {name!r} has {mask.size} rows but y_true has {y.size}")
        n = int(mask.sum())
        short = f"{n} rows (need {min_rows})" if n < min_rows else None
        short = short or stats_.too_small(y[mask], MIN_SLICE_CLASS_ROWS, classes)
        if short:
            out[name] = {"n": n, "judged": False, "reason": f"too small to judge: {short}"}
            continue
        metrics = stats_.metrics(
            y[mask], predicted[mask], classes, level=level, resamples=resamples, seed=seed
        )
        out[name] = {"n": n, "judged": True, stats_.headline: metrics[stats_.headline].to_dict()}
    return out


def realised_performance(
    task: Task,
    y_true: ArrayLike,
    prediction: ArrayLike,
    evaluated: Interval,
    classes: Sequence[object] = (),
    *,
    metric: str | None = None,
    min_delta: float = 0.0,
    alpha: float = 0.05,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The metric realised on delayed labels, with its interval, against the evaluated one.

    The rule `make performance` applies to a binary model's ROC AUC, for any task's metric:
    "drop" when even the realised metric's one-sided (1 - alpha) bound on the good side is
    worse than the evaluated interval's far end by more than `min_delta`. Both intervals are
    two-sided at `level`; the batch's standard error is read back from its interval.
    """
    stats_ = TASKS[task]
    name = metric or stats_.headline
    realised = stats_.metrics(
        y_true, prediction, classes, level=level, resamples=resamples, seed=seed
    )
    if name not in realised:
        raise ValueError(f"metric must be one of {sorted(realised)} for {task}; got {name!r}")
    current = realised[name]
    sign = 1.0 if stats_.higher_is_better(name) else -1.0
    # Oriented so that higher is better: a lower-is-better metric is negated.
    now, then = _oriented(current, sign), _oriented(evaluated, sign)
    se = (now.high - now.low) / (2 * float(ndtri(0.5 + level / 2)))
    best_case = now.value + float(ndtri(1 - alpha)) * se
    floor = then.low - min_delta
    side, end = ("upper", "lower") if sign > 0 else ("lower", "upper")
    return {
        "metric": name,
        "realised": current.to_dict(),
        "evaluated": evaluated.to_dict(),
        "diff": current.value - evaluated.value,
        "realised_bound": sign * best_case,
        "limit": sign * floor,
        "alpha": alpha,
        "status": "drop" if best_case < floor else "ok",
        "rule": (
            f"drop when the realised {name}'s one-sided {1 - alpha:.0%} {side} bound is "
            f"worse than the evaluated interval's {end} end"
            + (f" by more than {min_delta:g}" if min_delta else "")
        ),
    }


def _oriented(interval: Interval, sign: float) -> Interval:
    """The interval with higher meaning better (a lower-is-better metric negated)."""
    ends = sorted((sign * interval.low, sign * interval.high))
    return Interval(sign * interval.value, ends[0], ends[1], interval.method)
