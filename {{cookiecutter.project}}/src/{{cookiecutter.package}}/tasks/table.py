"""Everything that differs by task, in one table: `TASKS[task]` instead of `if task == ...`.

A task's prediction has one shape throughout: binary, the positive class's probability per
row; regression, the predicted value per row; multiclass, a (rows, classes) probability matrix
whose columns follow `classes`. Targets are 0/1 (binary), numbers (regression) or class codes
0..K-1 (multiclass; `multiclass.encode` maps labels to codes). The binary entry refers to the
existing binary statistics in `stats.py`; the other two to `regression.py` and `multiclass.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from .. import stats
from ..stats import Interval, PairedComparison
from . import baselines, multiclass, outputs, regression
from .agreement import Disagreement, label_disagreement, value_disagreement
from .fairness import GroupMeasure, error_ratio, recall_gap
from .paired_loss import paired_loss_test

__all__ = ["TASKS", "ShadowRule", "Task", "TaskStats"]

Task = Literal["binary", "multiclass", "regression"]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class ShadowRule:
    """When two regression predictions count as different (labels simply differ or not)."""

    relative_tolerance: float = 0.05
    floor: float = 0.0  # in target units, e.g. the mean |target|


class MetricsFn(Protocol):
    """Every reported metric with its interval."""

    def __call__(
        self,
        y_true: ArrayLike,
        prediction: ArrayLike,
        classes: Sequence[object],
        *,
        level: float,
        resamples: int,
        seed: int,
    ) -> dict[str, Interval]: ...


class PairedTestFn(Protocol):
    """The one-sided paired test that the challenger beats the champion by min_delta."""

    def __call__(
        self,
        y_true: ArrayLike,
        challenger: ArrayLike,
        champion: ArrayLike,
        *,
        min_delta: float,
        alpha: float,
        level: float | None = None,
        resamples: int = 2000,
        seed: int = 0,
    ) -> PairedComparison: ...


class FairnessFn(Protocol):
    """The disparity between the groups of a protected attribute, with its interval."""

    def __call__(
        self,
        y_true: ArrayLike,
        prediction: ArrayLike,
        groups: ArrayLike,
        classes: Sequence[object],
        /,
        *,
        min_rows: int,
        level: float,
        resamples: int,
        seed: int,
    ) -> GroupMeasure: ...


@dataclass(frozen=True)
class TaskStats:
    """The statistics of one task; each field is a pure function or a fixed fact."""

    headline: str  # what reports, gates and delayed-label monitoring lead with
    compared: str  # what the paired champion/challenger test compares, in its own units
    higher_is_better: Callable[[str], bool]
    metrics: MetricsFn
    row_loss: Callable[[ArrayLike, ArrayLike], Floats]
    paired_test: PairedTestFn
    # Constant predictions from the training target, for n rows and these classes.
    baselines: Callable[[ArrayLike, int, Sequence[object]], dict[str, Floats]]
    # The best one-feature model fitted on the holdout: (column, its predictions).
    single_feature: Callable[[pd.DataFrame, ArrayLike, Sequence[object]], tuple[str, Floats]]
    # Why a holdout is too small to compare models on, or None.
    too_small: Callable[[ArrayLike, int, Sequence[object]], str | None]
    disagreement: Callable[[ArrayLike, ArrayLike, ShadowRule, float], Disagreement]
    fairness: FairnessFn
    outputs: outputs.Outputs  # the answer records and the numbers drift watches


# ---------------------------------------------------------------------------------------------
# Binary: the existing statistics, behind the table's signatures


def _binary_metrics(
    y_true: ArrayLike,
    prediction: ArrayLike,
    classes: Sequence[object],
    *,
    level: float,
    resamples: int,
    seed: int,
) -> dict[str, Interval]:
    """ROC AUC by DeLong, every other binary metric from one stratified bootstrap."""
    others = [name for name in stats.METRICS if name != "roc_auc"]
    bootstrapped = stats.bootstrap_intervals(
        y_true, prediction, others, resamples=resamples, seed=seed, level=level
    )
    return {"roc_auc": stats.delong_interval(y_true, prediction, level=level)} | bootstrapped


def _binary_paired_test(
    y_true: ArrayLike,
    challenger: ArrayLike,
    champion: ArrayLike,
    *,
    min_delta: float,
    alpha: float,
    level: float | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """DeLong's paired ROC AUC test, as promotion runs it today."""
    return stats.delong_paired_test(y_true, challenger, champion, min_delta, alpha, level)


def _binary_columns(prediction: ArrayLike) -> Floats:
    p = np.asarray(prediction, dtype=np.float64)
    return np.column_stack([1.0 - p, p])


def _binary_too_small(y_true: ArrayLike, min_count: int, classes: Sequence[object]) -> str | None:
    y = np.asarray(y_true)
    positives = int((y == 1).sum())
    if min(positives, y.size - positives) >= min_count:
        return None
    return (
        f"holdout too small: {positives} positives, {y.size - positives} negatives "
        f"(need {min_count} of each)"
    )


def _binary_fairness(
    y_true: ArrayLike,
    prediction: ArrayLike,
    groups: ArrayLike,
    classes: Sequence[object],
    *,
    min_rows: int,
    level: float,
    resamples: int,
    seed: int,
) -> GroupMeasure:
    """The equalized-odds gap: the recall gap of both classes (TPR and 1 - FPR) at 0.5.

    Predicted labels are the larger column, so a score of exactly 0.5 counts as negative here.
    """
    return recall_gap(
        y_true,
        _binary_columns(prediction),
        groups,
        classes,
        min_rows=min_rows,
        level=level,
        resamples=resamples,
        seed=seed,
    )


def _positive_column(name: str, proba: Floats) -> tuple[str, Floats]:
    return name, proba[:, 1]


BINARY = TaskStats(
    headline="roc_auc",
    compared="roc_auc",
    higher_is_better=lambda name: stats.HIGHER_IS_BETTER[name],
    metrics=_binary_metrics,
    row_loss=lambda y, p: multiclass.log_loss_rows(
        np.asarray(y, dtype=np.intp), _binary_columns(p)
    ),
    paired_test=_binary_paired_test,
    baselines=lambda y_fit, n, classes: {
        "prior": np.full(n, np.asarray(y_fit, dtype=np.float64).mean())
    },
    single_feature=lambda frame, y, classes: _positive_column(
        *baselines.best_single_feature_classes(frame, np.asarray(y, dtype=np.intp), 2)
    ),
    too_small=_binary_too_small,
    # Labels as the server gives them: positive from a score of 0.5 up.
    disagreement=lambda a, b, rule, level: label_disagreement(
        np.asarray(a) >= 0.5, np.asarray(b) >= 0.5, level
    ),
    fairness=_binary_fairness,
    outputs=outputs.BINARY,
)


# ---------------------------------------------------------------------------------------------
# Regression


def _regression_metrics(
    y_true: ArrayLike,
    prediction: ArrayLike,
    classes: Sequence[object],
    *,
    level: float,
    resamples: int,
    seed: int,
) -> dict[str, Interval]:
    """RMSE, MAE, R², relative MAE (and MAPE where it applies), rows resampled."""
    return regression.regression_intervals(
        y_true, prediction, level=level, resamples=resamples, seed=seed
    )


def _loss_test(row_loss: Callable[[ArrayLike, ArrayLike], Floats], name: str) -> PairedTestFn:
    def test(
        y_true: ArrayLike,
        challenger: ArrayLike,
        champion: ArrayLike,
        *,
        min_delta: float,
        alpha: float,
        level: float | None = None,
        resamples: int = 2000,
        seed: int = 0,
    ) -> PairedComparison:
        """Paired t-test on per-row loss differences (closed form: no resamples needed)."""
        losses = row_loss(y_true, challenger), row_loss(y_true, champion)
        return paired_loss_test(*losses, name, min_delta, alpha, level)

    return test


def _rows_too_small(y_true: ArrayLike, min_count: int, classes: Sequence[object]) -> str | None:
    n = np.asarray(y_true).size
    return None if n >= min_count else f"holdout too small: {n} rows (need {min_count})"


def _regression_fairness(
    y_true: ArrayLike,
    prediction: ArrayLike,
    groups: ArrayLike,
    classes: Sequence[object],
    *,
    min_rows: int,
    level: float,
    resamples: int,
    seed: int,
) -> GroupMeasure:
    """The error ratio: the worst-served group's mean absolute error over the best-served's."""
    return error_ratio(
        y_true, prediction, groups, min_rows=min_rows, level=level, resamples=resamples, seed=seed
    )


REGRESSION = TaskStats(
    headline="rmse",
    compared="squared_error",
    higher_is_better=lambda name: regression.HIGHER_IS_BETTER[name],
    metrics=_regression_metrics,
    row_loss=regression.squared_error,
    paired_test=_loss_test(regression.squared_error, "squared_error"),
    baselines=lambda y_fit, n, classes: baselines.value_baselines(y_fit, n),
    single_feature=lambda frame, y, classes: baselines.best_single_feature_value(frame, y),
    too_small=_rows_too_small,
    disagreement=lambda a, b, rule, level: value_disagreement(
        a, b, rule.relative_tolerance, rule.floor, level
    ),
    fairness=_regression_fairness,
    outputs=outputs.REGRESSION,
)


# ---------------------------------------------------------------------------------------------
# Multiclass


def _multiclass_metrics(
    y_true: ArrayLike,
    prediction: ArrayLike,
    classes: Sequence[object],
    *,
    level: float,
    resamples: int,
    seed: int,
) -> dict[str, Interval]:
    """Macro-F1, log loss, one-vs-rest macro AUC, accuracy, recall per class; class-stratified."""
    return multiclass.multiclass_intervals(
        y_true, prediction, classes or None, level=level, resamples=resamples, seed=seed
    )


def _classes_too_small(y_true: ArrayLike, min_count: int, classes: Sequence[object]) -> str | None:
    counts = np.bincount(multiclass.codes(y_true, len(classes)), minlength=len(classes))
    short = [f"{classes[c]} ({counts[c]})" for c in np.flatnonzero(counts < min_count).tolist()]
    if not short:
        return None
    return f"holdout too small: classes {', '.join(short)} have fewer than {min_count} rows"


def _multiclass_higher_is_better(name: str) -> bool:
    return multiclass.HIGHER_IS_BETTER.get(name, True)  # recall[<class>] is higher-is-better


MULTICLASS = TaskStats(
    headline="macro_f1",
    compared="log_loss",
    higher_is_better=_multiclass_higher_is_better,
    metrics=_multiclass_metrics,
    row_loss=multiclass.log_loss_rows,
    paired_test=_loss_test(multiclass.log_loss_rows, "log_loss"),
    baselines=lambda y_fit, n, classes: baselines.class_baselines(y_fit, len(classes), n),
    single_feature=lambda frame, y, classes: baselines.best_single_feature_classes(
        frame, y, len(classes)
    ),
    too_small=_classes_too_small,
    disagreement=lambda a, b, rule, level: label_disagreement(
        multiclass.probabilities(a).argmax(axis=1),
        multiclass.probabilities(b).argmax(axis=1),
        level,
    ),
    fairness=recall_gap,
    outputs=outputs.MULTICLASS,
)

TASKS: Mapping[Task, TaskStats] = {
    "binary": BINARY,
    "regression": REGRESSION,
    "multiclass": MULTICLASS,
}
