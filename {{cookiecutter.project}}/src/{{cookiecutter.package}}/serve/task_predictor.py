"""Serve a multiclass or regression model: the class with every class's probability, or the value.

The one-row shortcut (`fastpath.py`, `tree_row.py`) reproduces a binary model's positive score
only, so these models answer every row through the pipeline's own predict_proba or predict.
The request schema is the binary server's: what one accepts, the other accepts.
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

    def _verified_fast_path(self) -> RowEncoder | None:
        self.fast_path_off = (
            f"the one-row shortcut gives a binary score only; a {self.task} model answers "
            "through its pipeline"
        )
        return None

    def prediction(self, rows: list[BaseModel]) -> NDArray[np.float64]:
        """The task's prediction: values, or a (rows, classes) probability matrix."""
        return RUNTIME[self.task].predict(self.model, self.frame(rows), self.classes)

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
