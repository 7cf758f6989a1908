"""Serve a multiclass or regression model: the class with every class's probability, or the value.

A single row takes the binary server's one-row shortcut (`fastpath.py`, `tree_row.py`), checked
against the pipeline's own predict_proba or predict on probe rows before it is used. The
request schema is the binary server's: what one accepts, the other accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from ..config import Task
from ..contract import Contract
from ..task_pipeline import RUNTIME, classes_of
from ..tasks import outputs
from ..tasks.table import TASKS
from .fastpath import RowEncoder
from .predictor import Predictor


class TaskPredictor(Predictor):
    """A loaded multiclass or regression pipeline and the contract that builds its input."""

    def __init__(self, model: Any, contract: Contract, task: Task, threshold: float = 0.5) -> None:
        self.task = task
        self.classes = tuple(classes_of(contract, task))  # contract order, as training encoded them
        super().__init__(model, contract, threshold)

    def through_pipeline(self, rows: list[Any]) -> NDArray[np.float64]:
        """The pipeline's own prediction for these rows, in the task's shape: values, or a
        (rows, classes) probability matrix."""
        return RUNTIME[self.task].predict(self.model, self.frame(rows), self.classes)

    def through_shortcut(self, encoder: RowEncoder, row: Any) -> Any:
        """One row's prediction through the shortcut: every class's probability, or the value."""
        answer = encoder.answer(self._mapping(row))
        return answer if self.task == "multiclass" else answer[0]

    def answer(self, rows: list[BaseModel]) -> list[dict[str, Any]]:
        """One `{id, value}` or `{id, label, probabilities}` per row, in order."""
        id_name = self.contract.id
        records = outputs.answers(TASKS[self.task].outputs, self.prediction(rows), self.classes)
        return [
            {"id": None if (ident := getattr(row, id_name, None)) is None else str(ident), **record}
            for row, record in zip(rows, records, strict=True)
        ]

    def observed(self, answers: list[dict[str, Any]]) -> list[float]:
        """Multiclass: the answered class's probability; regression: the value."""
        if self.task == "regression":
            return [answer["value"] for answer in answers]
        return [max(answer["probabilities"].values()) for answer in answers]

    def observed_buckets(self, reference: Mapping[str, Any] | None) -> tuple[float, ...]:
        """A regression's values have no [0, 1] scale: its buckets are the quantiles of the
        version's holdout answers (training records them in the reference profile), so each
        holds a like share of healthy traffic; without them, the target's range in twentieths,
        and with no range either, the sign alone (the histogram's sum and count still give the
        mean value served)."""
        if self.task != "regression":
            return super().observed_buckets(reference)
        recorded = (reference or {}).get("predictions", {}).get("edges")
        if recorded:
            return tuple(float(edge) for edge in recorded)
        target = self.contract.columns[self.contract.target]
        if target.min is None or target.max is None:
            return (0.0,)
        low, high = float(target.min), float(target.max)
        return tuple(float(edge) for edge in np.linspace(low, high, 21)[1:-1])
