"""The shadow's comparison of two servers' answers to one request, for multiclass and regression.

Which task the answers are is read from their shape (each task's answer record refuses the
others' fields); whether they agree is `TASKS[task].disagreement` on every row: a different
label (multiclass), or a value further from the primary's than `ShadowRule`'s relative
tolerance (regression). A binary answer keeps the shadow's own label comparison
(`rollout/shadow.py`), which reads the labels the server gave at its threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from .outputs import read_back
from .table import TASKS, ShadowRule, Task

__all__ = ["answer_task", "compare_answers"]

Floats = NDArray[np.float64]


def answer_task(record: Mapping[str, Any]) -> Task:
    """The task whose answer record this is; ValueError if it is none of them."""
    for task, stats in TASKS.items():
        try:
            stats.outputs.model.model_validate(record)
        except ValidationError:
            continue
        return task
    raise ValueError(f"not an answer of any task: fields {sorted(record)}")


def _relative_difference(primary: Floats, shadow: Floats, rule: ShadowRule) -> Floats:
    """|shadow - primary| over max(|primary|, floor); a change from exactly 0 counts as 1."""
    difference = np.abs(shadow - primary)
    scale = np.maximum(np.abs(primary), rule.floor)
    fallback = np.where(difference > 0, 1.0, 0.0)
    relative: Floats = np.divide(difference, scale, out=fallback, where=scale > 0)
    return relative


def _largest_probability_difference(primary: Floats, shadow: Floats, rule: ShadowRule) -> Floats:
    largest: Floats = np.abs(shadow - primary).max(axis=1)
    return largest


# what the shadow's difference histogram counts per row, by task
ROW_DIFFERENCE: dict[Task, Callable[[Floats, Floats, ShadowRule], Floats]] = {
    "regression": _relative_difference,
    "multiclass": _largest_probability_difference,
}


def compare_answers(
    primary: Sequence[Mapping[str, Any]],
    shadow: Sequence[Mapping[str, Any]],
    rule: ShadowRule,
) -> tuple[bool, list[float]]:
    """Whether no row disagrees, and each row's difference (relative for a regression's value,
    the largest class-probability difference for multiclass).

    ValueError when the answers are not one task's, or their classes differ.
    """
    task = answer_task(primary[0])
    if task not in ROW_DIFFERENCE:
        raise ValueError(f"{task} answers are compared by the shadow's label comparison")
    first = primary[0].get("probabilities", {})
    classes = list(first) if isinstance(first, Mapping) else []
    outputs = TASKS[task].outputs
    left, right = read_back(outputs, primary, classes), read_back(outputs, shadow, classes)
    verdict = TASKS[task].disagreement(left, right, rule, 0.95)
    return verdict.disagreeing == 0, ROW_DIFFERENCE[task](left, right, rule).tolist()
