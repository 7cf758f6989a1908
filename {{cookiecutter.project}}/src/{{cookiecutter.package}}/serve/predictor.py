"""Turn validated rows into the model's input frame and score them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from ..asgi.metrics import SCORE_BUCKETS
from ..config import Task
from ..contract import Column, Contract
from .fastpath import RowEncoder, compile_row_encoder, why_no_fast_path
from .schema import target_labels

PROBE_ROWS = 12  # rows the one-row shortcut must reproduce exactly before it is used


class Predictor:
    """A loaded pipeline and the contract that says how to build its input.

    This is the binary model's; `task_predictor.TaskPredictor` answers the other tasks.
    """

    task: Task = "binary"
    classes: tuple[Any, ...] = ()  # a multiclass model's, in the contract's order

    def __init__(self, model: Any, contract: Contract, threshold: float = 0.5) -> None:
        self.model = model
        self.contract = contract
        self.threshold = threshold
        self.labels = target_labels(contract)  # (other, positive): answers in the table's values
        self._columns = [(name, contract.columns[name]) for name in contract.feature_columns]
        # why single rows go through the whole pipeline (slower), said when the server starts
        self.fast_path_off: str | None = None
        self.fast = self._verified_fast_path()

    def _verified_fast_path(self) -> RowEncoder | None:
        """The one-row shortcut, only if it answers the probe rows as the pipeline does."""
        encoder = compile_row_encoder(self.model)
        if encoder is None:
            self.fast_path_off = why_no_fast_path(self.model) or "no shortcut for this pipeline"
            return None
        rows = probe_rows(self.contract)
        expected = self.through_pipeline(rows)
        got = np.array([self.through_shortcut(encoder, row) for row in rows])
        # a model's summed trees may round in another order: 1e-12 of a regression's value
        if got.shape == expected.shape and np.allclose(got, expected, rtol=1e-12, atol=1e-9):
            return encoder
        worst = (
            float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
        )
        self.fast_path_off = (
            f"the one-row shortcut answered the probe rows up to {worst:.3g} away from the pipeline"
        )
        return None

    def through_pipeline(self, rows: list[Any]) -> np.ndarray:
        """The pipeline's prediction for these rows: the positive class's probability."""
        return np.asarray(self.model.predict_proba(self.frame(rows))[:, 1])

    def through_shortcut(self, encoder: RowEncoder, row: Any) -> Any:
        """The shortcut's prediction for one row, as one row of `through_pipeline`'s."""
        return encoder.score(self._mapping(row))

    def _mapping(self, row: Any) -> dict[str, Any]:
        return {name: getattr(row, name) for name, _ in self._columns}

    def frame(self, rows: list[BaseModel]) -> pd.DataFrame:
        """Build a frame with the dtypes `data.conform` gives the training data."""
        data = {
            name: _column(column, [getattr(r, name) for r in rows])
            for name, column in self._columns
        }
        return pd.DataFrame(data)

    def prediction(self, rows: list[BaseModel]) -> np.ndarray:
        """The prediction for each row: a lone row through the checked shortcut, if there is one."""
        if len(rows) == 1 and self.fast is not None:
            return np.array([self.through_shortcut(self.fast, rows[0])])
        return self.through_pipeline(rows)

    def scores(self, rows: list[BaseModel]) -> np.ndarray:
        """Probability of the positive class for each row."""
        return self.prediction(rows)

    def answer(self, rows: list[BaseModel]) -> list[dict[str, Any]]:
        """One `{id, score, label}` per row, in order."""
        id_name = self.contract.id
        out = []
        for row, score in zip(rows, self.scores(rows).tolist(), strict=True):
            ident = getattr(row, id_name, None)
            out.append(
                {
                    "id": None if ident is None else str(ident),
                    "score": score,
                    "label": self.labels[score >= self.threshold],
                }
            )
        return out

    def observed(self, answers: list[dict[str, Any]]) -> list[float]:
        """The numbers the server's `model_prediction_score` histogram counts: each score."""
        return [answer["score"] for answer in answers]

    def observed_buckets(self, reference: Mapping[str, Any] | None) -> tuple[float, ...]:
        """The histogram's bucket bounds: a probability's twentieths."""
        return SCORE_BUCKETS


def _column(column: Column, values: list[Any]) -> Any:
    if column.type == "integer":
        if column.nullable and any(v is None for v in values):
            return np.array([np.nan if v is None else v for v in values], dtype="float64")
        return np.array(values, dtype="int64")
    if column.type == "float":
        return np.array([np.nan if v is None else v for v in values], dtype="float64")
    if column.type == "datetime":
        return pd.to_datetime(pd.Series(values, dtype="datetime64[us]"))
    return pd.array([None if v is None else str(v) for v in values], dtype="str")


def example_row(contract: Contract) -> dict[str, Any]:
    """A row inside every range of the contract, for warm-up and smoke checks."""
    row: dict[str, Any] = {
        contract.id: 1 if contract.columns[contract.id].type == "integer" else "example-1"
    }
    for name in contract.feature_columns:
        column = contract.columns[name]
        if column.values:
            row[name] = column.values[0]
        elif column.type == "boolean":
            row[name] = True
        elif column.type == "datetime":
            row[name] = str(column.min or column.reference or datetime(2020, 1, 1).isoformat())
        elif column.type in ("integer", "float"):
            low = float(column.min) if column.min is not None else 0.0
            high = float(column.max) if column.max is not None else low + 2.0
            mid = (low + high) / 2
            row[name] = int(mid) if column.type == "integer" else mid
        else:
            row[name] = "example"
    return row


def probe_rows(contract: Contract, count: int = PROBE_ROWS) -> list[Any]:
    """Rows that visit every allowed value, both ends of each range and the nulls."""
    rows = []
    base = example_row(contract)
    for i in range(count):
        row: dict[str, Any] = {}
        for name in contract.feature_columns:
            column = contract.columns[name]
            if column.nullable and i % 4 == 3:
                row[name] = None
            elif column.values:
                row[name] = column.values[i % len(column.values)]
            elif column.type == "boolean":
                row[name] = i % 2 == 0
            elif column.type == "datetime":
                start = datetime.fromisoformat(str(base[name]))
                row[name] = start + timedelta(days=37 * i, hours=5 * i, minutes=7 * i)
            elif column.type in ("integer", "float"):
                low = float(column.min) if column.min is not None else 0.0
                high = float(column.max) if column.max is not None else low + 2.0
                value = low + (high - low) * i / max(count - 1, 1)
                row[name] = round(value) if column.type == "integer" else value
            else:
                row[name] = base[name]
        rows.append(SimpleNamespace(**row))
    return rows
