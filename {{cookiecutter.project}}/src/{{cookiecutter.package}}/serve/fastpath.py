"""A one-row shortcut through the fitted preprocessing: the same numbers in a fraction of the time.

For a single row, scikit-learn's ColumnTransformer spends most of its time on pandas indexing
and input validation, not arithmetic. The fitted parameters are plain arrays, so one row can
be encoded with numpy directly. `compile_row_encoder` knows exactly the steps that
`features.build_preprocessor` creates, plus any transformer of yours that says how to encode
one row (an `encode_row(values) -> list[float]` method); steps between the features and the
estimator run on the encoded row as they are. For anything else it returns None and
`why_no_fast_path` says which step stopped it (the server prints it when it starts).
`Predictor` checks the shortcut against the full pipeline before it uses it, so it can never
silently diverge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..features import SECONDS_PER_DAY, DateFeatures, FrequencyEncoder
from .tree_row import compile_tree_row

Row = Mapping[str, Any]
Encode = Callable[[Row], list[float]]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _scaler(scaler: StandardScaler) -> tuple[np.ndarray | float, np.ndarray | float]:
    mean = scaler.mean_ if scaler.mean_ is not None and scaler.with_mean else 0.0
    scale = scaler.scale_ if scaler.scale_ is not None and scaler.with_std else 1.0
    return mean, scale


def _numeric(step: Pipeline, columns: list[str]) -> Encode | None:
    names = [name for name, _ in step.steps]
    if names != ["impute", "scale"]:
        return None
    imputer, scaler = step.named_steps["impute"], step.named_steps["scale"]
    if not isinstance(imputer, SimpleImputer) or not isinstance(scaler, StandardScaler):
        return None
    fill = np.asarray(imputer.statistics_, dtype="float64")
    if np.isnan(fill).any():  # an all-missing training column is dropped: not handled here
        return None
    mean, scale = _scaler(scaler)

    def encode(row: Row) -> list[float]:
        values = np.array(
            [fill[i] if _missing(row[c]) else float(row[c]) for i, c in enumerate(columns)]
        )
        # numpy types tolist() as Any: a float64 vector gives a list of floats
        return cast(list[float], ((values - mean) / scale).tolist())

    return encode


def _onehot(encoder: OneHotEncoder, columns: list[str]) -> Encode | None:
    if encoder.drop_idx_ is not None or getattr(encoder, "_infrequent_enabled", False):
        return None
    if encoder.handle_unknown != "ignore":
        return None
    positions = [{str(v): i for i, v in enumerate(cats)} for cats in encoder.categories_]
    sizes = [len(cats) for cats in encoder.categories_]

    def encode(row: Row) -> list[float]:
        out: list[float] = []
        for column, index, size in zip(columns, positions, sizes, strict=True):
            block = [0.0] * size
            hit = index.get(str(row[column]))
            if hit is not None:
                block[hit] = 1.0
            out += block
        return out

    return encode


def _frequency(encoder: FrequencyEncoder, columns: list[str]) -> Encode:
    tables = [encoder.frequencies_[str(c)] for c in columns]

    def encode(row: Row) -> list[float]:
        return [table.get(str(row[c]), 0.0) for c, table in zip(columns, tables, strict=True)]

    return encode


def _timestamp(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _dates(parts: DateFeatures, scaler: StandardScaler | None, columns: list[str]) -> Encode:
    reference = _timestamp(parts.reference)
    mean, scale = _scaler(scaler) if scaler is not None else (0.0, 1.0)

    def encode(row: Row) -> list[float]:
        values: list[float] = []
        for column in columns:
            stamp = _timestamp(row[column])
            hour = 2.0 * math.pi * (stamp.hour + stamp.minute / 60.0) / 24
            weekday = 2.0 * math.pi * stamp.weekday() / 7
            days = (reference - stamp).total_seconds() / SECONDS_PER_DAY
            values += [math.sin(hour), math.cos(hour), math.sin(weekday), math.cos(weekday), days]
        # numpy types tolist() as Any: a float64 vector gives a list of floats
        return cast(list[float], ((np.array(values) - mean) / scale).tolist())

    return encode


def _own(transformer: Any, columns: list[str]) -> Encode:
    encode_row = transformer.encode_row

    def encode(row: Row) -> list[float]:
        return [float(v) for v in encode_row([row[c] for c in columns])]

    return encode


def _part(transformer: Any, columns: list[str]) -> Encode | None:
    if callable(getattr(transformer, "encode_row", None)):
        return _own(transformer, columns)
    if isinstance(transformer, OneHotEncoder):
        return _onehot(transformer, columns)
    if isinstance(transformer, FrequencyEncoder):
        return _frequency(transformer, columns)
    if isinstance(transformer, DateFeatures):
        return _dates(transformer, None, columns)
    if isinstance(transformer, Pipeline) and isinstance(transformer.steps[0][1], DateFeatures):
        steps = [step for _, step in transformer.steps]
        if len(steps) == 2 and isinstance(steps[1], StandardScaler):
            return _dates(steps[0], steps[1], columns)
        return None
    if isinstance(transformer, Pipeline):
        return _numeric(transformer, columns)
    return None


class NoFastPath(Exception):
    """Why a pipeline cannot be scored one row at a time without pandas."""


class RowEncoder:
    """Encode one row as the fitted ColumnTransformer would, then score it with the model."""

    def __init__(self, parts: list[Encode], model: Any, between: tuple[Any, ...] = ()) -> None:
        self.parts = parts
        self.model = model
        self.between = between  # transformers after the features, applied to the encoded row
        self._trees = compile_tree_row(model)  # the default model's trees, walked in numpy

    def encode(self, row: Row) -> np.ndarray:
        """The model's input for one row, shape (1, n_features)."""
        values: list[float] = []
        for part in self.parts:
            values += part(row)
        encoded = np.array([values], dtype="float64")
        for step in self.between:
            encoded = step.transform(encoded)
        return encoded

    def answer(self, row: Row) -> np.ndarray:
        """The estimator's answer for one row: its predict_proba row (a classifier's) or a
        one-element array holding its predicted value (a regressor's)."""
        encoded = self.encode(row)
        if self._trees is not None:
            return self._trees(encoded)
        if hasattr(self.model, "predict_proba"):
            return np.asarray(self.model.predict_proba(encoded)[0], dtype="float64")
        return np.asarray(self.model.predict(encoded), dtype="float64").ravel()

    def score(self, row: Row) -> float:
        """Probability of the positive class for one row (a binary classifier's)."""
        return float(self.answer(row)[1])


def _name(thing: Any) -> str:
    return f"{type(thing).__module__}.{type(thing).__qualname__}"


def _compile(pipeline: Any) -> RowEncoder:
    """A RowEncoder for `features` [+ transformers] + `model`; NoFastPath says what stops it."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
        raise NoFastPath(
            f"the model is a {_name(pipeline)}, not a Pipeline of the features and an estimator"
        )
    features, model = pipeline.steps[0][1], pipeline.steps[-1][1]
    between = tuple(step for _, step in pipeline.steps[1:-1])
    if not isinstance(features, ColumnTransformer):
        raise NoFastPath(
            f"the pipeline's first step is a {_name(features)}, not a ColumnTransformer"
        )
    if features.sparse_output_:
        raise NoFastPath("the features ColumnTransformer gives a sparse matrix")
    for name, step in pipeline.steps[1:-1]:
        if not callable(getattr(step, "transform", None)):
            raise NoFastPath(f"pipeline step {name!r} ({_name(step)}) has no transform")
    parts = []
    for name, transformer, columns in features.transformers_:
        if transformer == "drop" or name == "remainder":
            continue
        part = _part(transformer, [str(c) for c in columns])
        if part is None:
            raise NoFastPath(
                f"feature step {name!r} ({_name(transformer)}) has no one-row encoding: give "
                "it an `encode_row(values) -> list[float]` method (README: Your own model)"
            )
        parts.append(part)
    return RowEncoder(parts, model, between)


def compile_row_encoder(pipeline: Any) -> RowEncoder | None:
    """A RowEncoder for a `features` [+ transformers] + `model` pipeline, or None."""
    try:
        return _compile(pipeline)
    except NoFastPath:
        return None


def why_no_fast_path(pipeline: Any) -> str | None:
    """Which step keeps `pipeline` off the one-row shortcut, or None if none does."""
    try:
        _compile(pipeline)
    except NoFastPath as reason:
        return str(reason)
    return None
