"""What a prediction looks like outside the model, per task: answer records and numbers to watch.

An answer record is what `/predict` returns for one row and what the prediction log keeps:
binary `{id, score, label}` (as today), regression `{id, value}`, multiclass
`{id, label, probabilities: {class: p}}`. `make score` writes the same as flat columns
(`batch_columns`: multiclass has one `probability_<class>` column per class). `read_back` turns
records into the task's prediction array again (the shadow compares two servers' answers that
way), and `watched` names the per-row numbers that drift monitoring and invariance checks
follow. Each task's `Outputs` sits in `tasks.TASKS[task].outputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict

from .multiclass import probabilities
from .regression import values

__all__ = [
    "BINARY",
    "MULTICLASS",
    "REGRESSION",
    "BinaryAnswer",
    "MulticlassAnswer",
    "Outputs",
    "RegressionAnswer",
    "answers",
    "batch_columns",
    "invariance_share",
    "read_back",
    "watched",
]

Floats = NDArray[np.float64]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | int | None = None


class BinaryAnswer(_Answer):
    """One scored row: the positive class's probability and the label at the threshold.

    The label is 0/1 here; the server writes it in the table's own values (`yes`, True, ...).
    """

    score: float
    label: int | bool | str


class RegressionAnswer(_Answer):
    """One predicted value."""

    value: float


class MulticlassAnswer(_Answer):
    """The most probable class and every class's probability."""

    label: str | int
    probabilities: dict[str, float]


def _binary_fields(
    prediction: ArrayLike, classes: Sequence[Any], threshold: float
) -> list[dict[str, Any]]:
    scores = values(prediction, "prediction")
    return [{"score": s, "label": int(s >= threshold)} for s in scores.tolist()]


def _regression_fields(
    prediction: ArrayLike, classes: Sequence[Any], threshold: float
) -> list[dict[str, Any]]:
    return [{"value": v} for v in values(prediction, "prediction").tolist()]


def _multiclass_fields(
    prediction: ArrayLike, classes: Sequence[Any], threshold: float
) -> list[dict[str, Any]]:
    p = probabilities(prediction)
    names = _names(classes, p.shape[1])
    return [
        {
            "label": _plain(classes[int(row.argmax())]),
            "probabilities": dict(zip(names, row.tolist(), strict=True)),
        }
        for row in p
    ]


def _plain(label: Any) -> Any:
    """A numpy scalar (as in a model's `classes_`) as the Python value JSON can carry."""
    return label.item() if isinstance(label, np.generic) else label


def _names(classes: Sequence[Any], k: int) -> list[str]:
    if len(classes) != k:
        raise ValueError(f"classes has {len(classes)} names but the prediction has {k} columns")
    return [str(c) for c in classes]


def _binary_row(answer: Any, names: Sequence[str]) -> list[float]:
    return [float(answer.score)]


def _regression_row(answer: Any, names: Sequence[str]) -> list[float]:
    return [float(answer.value)]


def _multiclass_row(answer: Any, names: Sequence[str]) -> list[float]:
    if set(answer.probabilities) != set(names):
        raise ValueError(
            f"probabilities are given for {sorted(answer.probabilities)}; "
            f"expected the classes {list(names)}"
        )
    return [float(answer.probabilities[name]) for name in names]


def _binary_watched(prediction: ArrayLike, classes: Sequence[Any]) -> dict[str, Floats]:
    return {"score": values(prediction, "prediction")}


def _regression_watched(prediction: ArrayLike, classes: Sequence[Any]) -> dict[str, Floats]:
    return {"value": values(prediction, "prediction")}


def _multiclass_watched(prediction: ArrayLike, classes: Sequence[Any]) -> dict[str, Floats]:
    p = probabilities(prediction)
    names = _names(classes, p.shape[1])
    return {f"probability[{name}]": p[:, c] for c, name in enumerate(names)}


def _binary_table(
    prediction: ArrayLike, classes: Sequence[Any], threshold: float
) -> dict[str, NDArray[Any]]:
    scores = np.asarray(prediction, dtype=np.float64)
    negative, positive = classes if len(classes) == 2 else (0, 1)
    return {"score": scores, "label": np.where(scores >= threshold, positive, negative)}


def _regression_table(
    prediction: ArrayLike, classes: Sequence[Any], threshold: float
) -> dict[str, NDArray[Any]]:
    return {"value": values(prediction, "prediction")}


def _multiclass_table(
    prediction: ArrayLike, classes: Sequence[Any], threshold: float
) -> dict[str, NDArray[Any]]:
    p = probabilities(prediction)
    names = _names(classes, p.shape[1])
    labels = np.asarray([_plain(c) for c in classes])
    return {"label": labels[p.argmax(axis=1)]} | {
        probability_column(name): p[:, c] for c, name in enumerate(names)
    }


def probability_column(name: str) -> str:
    """The batch output column of one class's probability."""
    return f"probability_{name}"


@dataclass(frozen=True)
class Outputs:
    """One task's answer shape: its record model, how to fill it, read it, and watch it."""

    model: type[_Answer]
    fields: Callable[[ArrayLike, Sequence[Any], float], list[dict[str, Any]]]
    row: Callable[[Any, Sequence[str]], list[float]]  # one parsed answer back to numbers
    watched: Callable[[ArrayLike, Sequence[Any]], dict[str, Floats]]
    columns: Callable[[Sequence[Any]], int]  # 0 for a 1-D prediction, else its column count
    # the flat output columns of `make score` (binary's classes: the (negative, positive) labels)
    table: Callable[[ArrayLike, Sequence[Any], float], dict[str, NDArray[Any]]]


BINARY = Outputs(
    BinaryAnswer, _binary_fields, _binary_row, _binary_watched, lambda c: 0, _binary_table
)
REGRESSION = Outputs(
    RegressionAnswer,
    _regression_fields,
    _regression_row,
    _regression_watched,
    lambda c: 0,
    _regression_table,
)
MULTICLASS = Outputs(
    MulticlassAnswer,
    _multiclass_fields,
    _multiclass_row,
    _multiclass_watched,
    len,
    _multiclass_table,
)


def answers(
    outputs: Outputs,
    prediction: ArrayLike,
    classes: Sequence[Any] = (),
    ids: Sequence[str | int | None] | None = None,
    threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """Return one answer record per row, validated against the task's answer model."""
    records = outputs.fields(prediction, classes, threshold)
    if ids is not None:
        if len(ids) != len(records):
            raise ValueError(f"ids has {len(ids)} entries but prediction has {len(records)} rows")
        records = [{"id": i, **r} for i, r in zip(ids, records, strict=True)]
    return [outputs.model.model_validate(r).model_dump(exclude_none=True) for r in records]


def batch_columns(
    outputs: Outputs, prediction: ArrayLike, classes: Sequence[Any] = (), threshold: float = 0.5
) -> dict[str, NDArray[Any]]:
    """Return the columns `make score` writes for these rows, by name, in order.

    Binary: score and label (`classes` as (negative, positive), default 0/1); regression:
    value; multiclass: label and one `probability_<class>` column per class.
    """
    return outputs.table(prediction, classes, threshold)


def read_back(
    outputs: Outputs, records: Sequence[Mapping[str, Any]], classes: Sequence[Any] = ()
) -> Floats:
    """Return the prediction array the records describe (the inverse of `answers`)."""
    names = [str(c) for c in classes]
    rows = []
    for i, record in enumerate(records):
        try:
            rows.append(outputs.row(outputs.model.model_validate(record), names))
        except ValueError as error:  # pydantic's ValidationError is a ValueError too
            raise ValueError(f"answer record {i}: {error}") from None
    table = np.array(rows, dtype=np.float64).reshape(len(rows), -1)
    prediction: Floats = table if outputs.columns(classes) else table[:, 0]
    return prediction


def watched(
    outputs: Outputs, prediction: ArrayLike, classes: Sequence[Any] = ()
) -> dict[str, Floats]:
    """Return the per-row numbers to follow for drift and invariances, by name.

    Binary: the score; regression: the value; multiclass: each class's probability.
    """
    return outputs.watched(prediction, classes)


def invariance_share(
    outputs: Outputs,
    before: ArrayLike,
    after: ArrayLike,
    direction: str,
    classes: Sequence[Any] = (),
    watch: str | None = None,
) -> float:
    """Return the share of rows whose watched number moved in `direction` from before to after.

    `before` and `after` are predictions for the same rows with one input changed. `watch`
    names the number (a key of `watched`); it may be left out when the task watches only one
    (binary's score, regression's value) but must name the class for multiclass.
    """
    if direction not in ("increase", "decrease"):
        raise ValueError(f"direction must be 'increase' or 'decrease'; got {direction!r}")
    old, new = watched(outputs, before, classes), watched(outputs, after, classes)
    if watch is None and len(old) == 1:
        watch = next(iter(old))
    if watch not in old:
        raise ValueError(f"watch must be one of {sorted(old)}; got {watch!r}")
    if old[watch].shape != new[watch].shape:
        raise ValueError(f"before has {old[watch].size} rows but after has {new[watch].size}")
    moved = new[watch] - old[watch]
    return float(np.mean(moved > 0 if direction == "increase" else moved < 0))
