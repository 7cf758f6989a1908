"""Which task a target column asks for, and why: what `make contract` says before it drafts.

Two values: binary. Numbers with fractions, or more than MAX_CLASSES whole numbers: regression.
Three to MAX_CLASSES values: multiclass. A user who knows better overrides (`TASK=`), and an
override the data cannot support is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from .table import Task

__all__ = ["MAX_CLASSES", "TaskGuess", "infer_task"]

MAX_CLASSES = 30  # more distinct values than this is no class list a team would name
_TASKS: dict[str, Task] = {task: task for task in get_args(Task)}


@dataclass(frozen=True)
class TaskGuess:
    """The task chosen for a target column, with the reason shown to the user."""

    task: Task
    reason: str


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _smallest_class(values: pd.Series) -> str:
    counts = values.value_counts()
    return f"smallest class {str(counts.index[-1])!r} has {int(counts.iloc[-1])} rows"


def _inferred(values: pd.Series, distinct: int) -> TaskGuess:
    if distinct == 2:
        return TaskGuess("binary", "two values")
    if _is_number(values):
        numbers = values.astype("float64").to_numpy()
        if not np.equal(numbers, np.round(numbers)).all():
            return TaskGuess("regression", f"numbers with fractions ({distinct} distinct values)")
        if distinct > MAX_CLASSES:
            return TaskGuess(
                "regression", f"{distinct} distinct whole numbers (over {MAX_CLASSES})"
            )
        return TaskGuess(
            "multiclass",
            f"{distinct} distinct whole numbers, read as classes ({_smallest_class(values)}); "
            "say TASK=regression if they are amounts",
        )
    if distinct > MAX_CLASSES:
        raise DataError(
            f"the target has {distinct} distinct values that are not numbers: too many classes "
            f"(at most {MAX_CLASSES}) and no amount to regress on. Choose another TARGET"
        )
    return TaskGuess("multiclass", f"{distinct} classes ({_smallest_class(values)})")


def _supports(task: str, values: pd.Series, distinct: int) -> str | None:
    """Why the data cannot be this task, or None if it can."""
    if task == "binary" and distinct != 2:
        return f"binary needs exactly two values; the target has {distinct}"
    if task == "multiclass" and distinct < 3:
        return f"multiclass needs at least three classes; the target has {distinct}"
    if task == "regression" and not (_is_number(values) and distinct >= 3):
        return "regression needs a numeric target with at least three distinct values"
    return None


def infer_task(target: pd.Series, override: str | None = None) -> TaskGuess:
    """Return the task for this target column (or check `override` against it), with why."""
    name = target.name if target.name is not None else "target"
    blanks = int(target.isna().sum())
    if blanks:
        raise DataError(f"target {name!r} has {blanks} blank values; a target needs none")
    distinct = int(target.nunique())
    if distinct < 2:
        raise DataError(f"target {name!r} has a single value; there is nothing to predict")
    if override is None:
        return _inferred(target, distinct)
    task = _TASKS.get(override)
    if task is None:
        raise ConfigError(f"TASK must be one of {', '.join(_TASKS)}; got {override!r}")
    why_not = _supports(task, target, distinct)
    if why_not:
        raise DataError(f"TASK={task} does not fit target {name!r}: {why_not}")
    return TaskGuess(task, f"TASK={task} given")
