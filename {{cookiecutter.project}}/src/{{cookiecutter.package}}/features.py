"""Feature engineering, as scikit-learn transformers so training and serving share one Pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .contract import Contract

SECONDS_PER_DAY = 86_400.0


def cyclical_encode(values: pd.Series, period: float) -> pd.DataFrame:
    """Map a periodic quantity (hour, weekday) onto the unit circle: `<name>_sin`, `<name>_cos`."""
    angle = 2.0 * np.pi * values.astype("float64").to_numpy() / period
    name = values.name or "value"
    return pd.DataFrame(
        {f"{name}_sin": np.sin(angle), f"{name}_cos": np.cos(angle)}, index=values.index
    )


def frequency_encode(values: pd.Series, normalize: bool = True) -> pd.Series:
    """Replace each category by how often it occurs (a share when `normalize`)."""
    counts = values.value_counts(normalize=normalize, dropna=False)
    return values.map(counts).astype("float64").fillna(0.0)


def days_since(timestamps: pd.Series, reference: str | pd.Timestamp) -> pd.Series:
    """Whole and fractional days from each timestamp to `reference` (positive for the past)."""
    stamps = pd.to_datetime(timestamps)
    delta = pd.Timestamp(reference) - stamps
    return (delta.dt.total_seconds() / SECONDS_PER_DAY).rename(f"{timestamps.name}_days_since")


class FrequencyEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """Encode each column by the training-set frequency of its category; unseen gets 0."""

    def fit(self, X: pd.DataFrame, y: object = None) -> FrequencyEncoder:
        frame = pd.DataFrame(X)
        self.columns_ = [str(c) for c in frame.columns]
        self.frequencies_ = {
            str(c): {
                str(k): float(v)
                for k, v in frame[c].astype(str).value_counts(normalize=True).items()
            }
            for c in frame.columns
        }
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = np.empty((len(frame), len(self.columns_)))
        for i, column in enumerate(frame.columns):
            table = self.frequencies_[str(column)]
            out[:, i] = (
                frame[column].astype(str).map(table).astype("float64").fillna(0.0).to_numpy()
            )
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray([f"{c}_frequency" for c in self.columns_], dtype=object)


class DateFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """Turn timestamps into cyclical hour and weekday, and days since a fixed reference date."""

    def __init__(self, reference: str = "2026-01-01") -> None:
        self.reference = reference

    def fit(self, X: pd.DataFrame, y: object = None) -> DateFeatures:
        self.columns_ = [str(c) for c in pd.DataFrame(X).columns]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X)
        blocks = []
        for column in frame.columns:
            stamps = pd.to_datetime(frame[column]).rename(str(column))
            hours = stamps.dt.hour + stamps.dt.minute / 60.0
            blocks.append(cyclical_encode(hours.rename(f"{column}_hour"), period=24).to_numpy())
            weekday = stamps.dt.day_of_week.rename(f"{column}_weekday")
            blocks.append(cyclical_encode(weekday, period=7).to_numpy())
            blocks.append(days_since(stamps, self.reference).to_numpy()[:, None])
        return np.hstack(blocks).astype("float64")

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        names = []
        for c in self.columns_:
            names += [f"{c}_hour_sin", f"{c}_hour_cos", f"{c}_weekday_sin", f"{c}_weekday_cos"]
            names.append(f"{c}_days_since")
        return np.asarray(names, dtype=object)


def build_preprocessor(contract: Contract) -> ColumnTransformer:
    """One ColumnTransformer derived from the contract: nothing about a column is repeated here."""
    numeric: list[str] = []
    onehot: list[str] = []
    frequency: list[str] = []
    transformers: list[tuple[str, Any, list[str]]] = []
    for name in contract.feature_columns:
        column = contract.columns[name]
        if column.type in ("integer", "float"):
            numeric.append(name)
        elif column.type == "boolean":
            onehot.append(name)  # conformed to "True"/"False" text: two categories
        elif column.type == "category":
            (frequency if column.encoding == "frequency" else onehot).append(name)
        elif column.type == "datetime" and column.reference:  # contract.py requires one
            # days-since runs into thousands: scaled like the numbers, so linear models converge
            dates = Pipeline(
                [("parts", DateFeatures(reference=column.reference)), ("scale", StandardScaler())]
            )
            transformers.append((f"date_{name}", dates, [name]))
        # free-text "string" columns are not model inputs
    if numeric:
        scaled = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        transformers.append(("numeric", scaled, numeric))
    if onehot:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(("onehot", encoder, onehot))
    if frequency:
        transformers.append(("frequency", FrequencyEncoder(), frequency))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
