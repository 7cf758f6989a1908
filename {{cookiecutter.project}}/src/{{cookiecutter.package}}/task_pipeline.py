"""What train, evaluate and promote do that differs by task, looked up by `params.yaml: task`.

`RUNTIME[task]` says how a table becomes the target (0/1, class codes or numbers) and how a
model's answer becomes the task's prediction (the positive score, a probability matrix or
values); `evaluate_task` measures a multiclass or regression model with `tasks.TASKS[task]`
(a binary model keeps `evaluation.py`, which writes the binary `Metrics`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .config import Config, Task
from .contract import Contract, Invariance
from .data import TEXT_TYPES, features_and_target
from .errors import DataError
from .records import TaskMetrics
from .tasks import multiclass, outputs
from .tasks.stage_reports import baseline_report, slice_report
from .tasks.table import TASKS

Floats = NDArray[np.float64]
MAX_PLOT_POINTS = 400  # as evaluate's binary curves: enough to see, small in git diffs


def classes_of(contract: Contract, task: Task) -> list[Any]:
    """A multiclass target's classes in contract order, as the conformed table holds them."""
    if task != "multiclass":
        return []
    column = contract.columns[contract.target]
    if not column.values:
        raise DataError(
            f"contract.yaml: target {contract.target!r} needs `values: [...]` listing the classes"
        )
    return [str(v) for v in column.values] if column.type in TEXT_TYPES else list(column.values)


def _binary_target(frame: pd.DataFrame, contract: Contract, classes: Sequence[Any]) -> NDArray[Any]:
    return features_and_target(frame, contract)[1]


def _class_codes(frame: pd.DataFrame, contract: Contract, classes: Sequence[Any]) -> NDArray[Any]:
    try:
        codes: NDArray[Any] = multiclass.encode(frame[contract.target].to_numpy(), classes)
        return codes
    except ValueError as error:
        raise DataError(f"target {contract.target!r}: {error}") from None


def _numbers(frame: pd.DataFrame, contract: Contract, classes: Sequence[Any]) -> NDArray[Any]:
    numbers: NDArray[Any] = frame[contract.target].to_numpy(dtype=np.float64)
    return numbers


def _positive_score(model: Any, X: pd.DataFrame, classes: Sequence[Any]) -> Floats:
    scores: Floats = model.predict_proba(X)[:, 1]
    return scores


def _class_probabilities(model: Any, X: pd.DataFrame, classes: Sequence[Any]) -> Floats:
    proba: Floats = np.asarray(model.predict_proba(X), dtype=np.float64)
    if proba.shape[1] != len(classes):
        raise DataError(
            f"the model gives {proba.shape[1]} class probabilities but the contract lists "
            f"{len(classes)} classes: retrain on data holding every class"
        )
    return proba


def _values(model: Any, X: pd.DataFrame, classes: Sequence[Any]) -> Floats:
    return np.asarray(model.predict(X), dtype=np.float64)


def _both_classes(y: NDArray[Any], classes: Sequence[Any]) -> str | None:
    return None if len(np.unique(y)) >= 2 else "the training split has one class only; need both"


def _every_class(y: NDArray[Any], classes: Sequence[Any]) -> str | None:
    missing = [str(c) for i, c in enumerate(classes) if not (y == i).any()]
    return f"the training split has no rows of class {', '.join(missing)}" if missing else None


def _varies(y: NDArray[Any], classes: Sequence[Any]) -> str | None:
    return None if np.ptp(y) > 0 else "the training split's target never changes"


def _positive_rate(y: NDArray[Any], classes: Sequence[Any]) -> dict[str, Any]:
    return {"positive_rate": float(y.mean())}


def _class_shares(y: NDArray[Any], classes: Sequence[Any]) -> dict[str, Any]:
    shares = np.bincount(y.astype(np.intp), minlength=len(classes)) / max(len(y), 1)
    return {
        "task": "multiclass",
        "class_shares": dict(zip(map(str, classes), shares.tolist(), strict=True)),
    }


def _target_summary(y: NDArray[Any], classes: Sequence[Any]) -> dict[str, Any]:
    return {"task": "regression", "target_mean": float(y.mean()), "target_sd": float(y.std())}


@dataclass(frozen=True)
class Runtime:
    """How one task reads its target and its model's answer."""

    target: Callable[[pd.DataFrame, Contract, Sequence[Any]], NDArray[Any]]
    predict: Callable[[Any, pd.DataFrame, Sequence[Any]], Floats]
    unfit: Callable[[NDArray[Any], Sequence[Any]], str | None]  # why y cannot be trained on
    summary: Callable[[NDArray[Any], Sequence[Any]], dict[str, Any]]  # for train_meta.json
    method: str  # what the model answers with (model_io.load_model checks it has it)


RUNTIME: dict[Task, Runtime] = {
    "binary": Runtime(
        _binary_target, _positive_score, _both_classes, _positive_rate, "predict_proba"
    ),
    "multiclass": Runtime(
        _class_codes, _class_probabilities, _every_class, _class_shares, "predict_proba"
    ),
    "regression": Runtime(_numbers, _values, _varies, _target_summary, "predict"),
}


def task_data(
    frame: pd.DataFrame, contract: Contract, task: Task
) -> tuple[pd.DataFrame, NDArray[Any], list[Any]]:
    """The model's input columns, the task's target and the classes (multiclass only)."""
    classes = classes_of(contract, task)
    return frame[contract.feature_columns], RUNTIME[task].target(frame, contract, classes), classes


def predict(model: Any, X: pd.DataFrame, task: Task, classes: Sequence[Any]) -> Floats:
    """The task's prediction for these rows; DataError if it is not finite."""
    prediction = RUNTIME[task].predict(model, X, classes)
    if not np.all(np.isfinite(prediction)):
        raise DataError(
            f"the model returned {int((~np.isfinite(prediction)).sum())} non-finite predictions"
        )
    return prediction


def _invariance(
    model: Any, X: pd.DataFrame, rule: Invariance, task: Task, classes: Sequence[Any]
) -> dict[str, Any]:
    before, after = X.copy(), X.copy()
    before[rule.column] = rule.from_value
    after[rule.column] = rule.to_value
    names = [str(c) for c in classes]
    if task == "multiclass" and str(rule.outcome) not in names:
        raise DataError(
            f"contract.yaml: invariance {rule.name!r} needs `outcome:` naming one of the "
            f"classes {names}; got {rule.outcome!r}"
        )
    watch = f"probability[{rule.outcome}]" if task == "multiclass" else None
    share = outputs.invariance_share(
        TASKS[task].outputs,
        predict(model, before, task, classes),
        predict(model, after, task, classes),
        rule.direction,
        classes,
        watch,
    )
    return {
        "column": rule.column,
        "change": [rule.from_value, rule.to_value],
        "direction": rule.direction,
        "share": share,
        "min_share": rule.min_share,
        "watched": watch or "value",
    }


def evaluate_task(
    model: Any, holdout: pd.DataFrame, y_fit: NDArray[Any], contract: Contract, config: Config
) -> tuple[TaskMetrics, NDArray[Any], Floats]:
    """Score the holdout once; the task's metrics, baselines, slices, fairness and behaviour."""
    task, settings = config.task, config.evaluate
    X, y, classes = task_data(holdout, contract, task)
    prediction = predict(model, X, task, classes)
    stats_ = TASKS[task]
    level, resamples, seed = settings.level, settings.bootstrap_resamples, settings.bootstrap_seed
    metrics = stats_.metrics(y, prediction, classes, level=level, resamples=resamples, seed=seed)
    baseline = baseline_report(
        task, y, prediction, y_fit, X, classes, level=level, resamples=resamples, seed=seed
    )
    slices = slice_report(
        task,
        y,
        prediction,
        {name: contract.slice_mask(holdout, name) for name in contract.slices},
        classes,
        min_rows=settings.min_slice_size,
        level=level,
        resamples=resamples,
        seed=seed,
    )
    headline = stats_.headline
    fairness = {
        attribute: stats_.fairness(
            y,
            prediction,
            holdout[attribute].to_numpy(),
            classes,
            min_rows=settings.min_slice_size,
            level=level,
            resamples=resamples,
            seed=seed,
        ).to_dict()
        for attribute in contract.protected
    }
    record = TaskMetrics.model_validate(
        {
            "task": task,
            "n": len(y),
            "level": settings.level,
            "headline": headline,
            "classes": classes,
            "metrics": {name: interval.to_dict() for name, interval in metrics.items()},
            "baseline": {
                "headline": headline,
                "constants": baseline["constants"],
                "single_feature": baseline["single_feature"]["name"],
                "single_feature_headline": baseline["single_feature"][headline],
                "compared": stats_.compared,
                "gain": {k: baseline["gain"][k] for k in ("value", "low", "high", "method")},
            },
            "slices": {
                name: {
                    "n": entry["n"],
                    "judged": entry["judged"],
                    "headline": entry.get(headline),
                    "reason": entry.get("reason"),
                }
                for name, entry in slices.items()
            },
            "fairness": {
                attribute: {k: v for k, v in entry.items() if k != "interval"}
                | {"disparity": entry["interval"]}
                for attribute, entry in fairness.items()
            },
            "invariances": {
                rule.name: _invariance(model, X, rule, task, classes)
                for rule in contract.invariances
            },
        }
    )
    return record, y, prediction


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) <= MAX_PLOT_POINTS:
        return frame
    keep = np.unique(np.linspace(0, len(frame) - 1, MAX_PLOT_POINTS).astype(int))
    return frame.iloc[keep]


def plot_tables(
    task: Task, y: NDArray[Any], prediction: Floats, classes: Sequence[Any]
) -> dict[str, pd.DataFrame]:
    """Regression: predicted against actual (sorted by actual); multiclass: the confusion pairs."""
    if task == "regression":
        order = np.argsort(y, kind="stable")
        table = pd.DataFrame({"actual": y[order], "predicted": prediction[order]})
        return {"residuals": _thin(table)}
    labels = np.asarray([str(c) for c in classes], dtype=object)
    return {
        "confusion": pd.DataFrame(
            {"actual": labels[y.astype(int)], "predicted": labels[prediction.argmax(axis=1)]}
        )
    }
