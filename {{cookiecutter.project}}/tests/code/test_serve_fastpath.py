"""The one-row shortcut scores exactly as the pipeline does, or is not used at all."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from {{ cookiecutter.package }}.data import conform, features_and_target
from {{ cookiecutter.package }}.features import build_preprocessor
from {{ cookiecutter.package }}.serve.fastpath import compile_row_encoder
from {{ cookiecutter.package }}.serve.predictor import Predictor
from tests.tiny_contract import tiny_contract, tiny_table

MODELS = {
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
    "random_forest": lambda: RandomForestClassifier(n_estimators=20, random_state=0),
    "logistic_regression": lambda: LogisticRegression(max_iter=5000),
}


@pytest.fixture(scope="module")
def contract():
    return tiny_contract()


@pytest.fixture(scope="module")
def table(contract):
    return conform(tiny_table(600, seed=3), contract)


def request_rows(table: pd.DataFrame, contract) -> list[SimpleNamespace]:
    """Rows as the request model hands them over: Python values, None for missing."""
    rows = []
    for record in table[contract.feature_columns].to_dict("records"):
        values = {}
        for name, value in record.items():
            if pd.isna(value):
                values[name] = None
            elif isinstance(value, pd.Timestamp):
                values[name] = value.to_pydatetime()
            else:
                values[name] = value.item() if hasattr(value, "item") else value
        rows.append(SimpleNamespace(**values))
    return rows


@pytest.mark.parametrize("kind", list(MODELS))
def test_shortcut_equals_pipeline(kind, contract, table):
    """On every row (nulls included), the shortcut's score is the pipeline's score."""
    X, y = features_and_target(table, contract)
    model = Pipeline([("features", build_preprocessor(contract)), ("model", MODELS[kind]())])
    predictor = Predictor(model.fit(X, y), contract)
    assert predictor.fast is not None
    rows = request_rows(table, contract)
    one_at_a_time = np.array([predictor.scores([row])[0] for row in rows])
    all_at_once = model.predict_proba(predictor.frame(rows))[:, 1]
    np.testing.assert_allclose(one_at_a_time, all_at_once, rtol=0, atol=1e-12)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_shortcut_equals_pipeline_for_every_task(task, kind):
    """A multiclass model's every class probability, a regression's value: one row at a
    time through the shortcut, as the pipeline answers them all at once (each model.py kind)."""
    from {{ cookiecutter.package }}.model import build_estimator, estimators
    from {{ cookiecutter.package }}.serve.task_predictor import TaskPredictor
    from tests.code.test_serve_tasks import fitted

    contract, fitted_model = fitted(task)
    table = conform(tiny_table(600, seed=3), contract, contract.feature_columns)
    X = table[contract.feature_columns]
    task_kind = "ridge" if task == "regression" and kind == "logistic_regression" else kind
    assert task_kind in estimators(task)
    settings = {"max_iter": 5000} if kind == "logistic_regression" and task != "regression" else {}
    estimator = build_estimator(task_kind, settings, 0, task)
    y = (
        fitted_model.predict_proba(X).argmax(axis=1)
        if task == "multiclass"
        else fitted_model.predict(X)
    )
    model = Pipeline([("features", build_preprocessor(contract)), ("model", estimator)])
    predictor = TaskPredictor(model.fit(X, y), contract, task)
    assert predictor.fast is not None, predictor.fast_path_off
    rows = request_rows(table, contract)
    one_at_a_time = np.concatenate([predictor.prediction([row]) for row in rows])
    all_at_once = model.predict_proba(X) if task == "multiclass" else model.predict(X)
    np.testing.assert_allclose(one_at_a_time, all_at_once, rtol=1e-12, atol=1e-12)


def test_unknown_steps_fall_back_to_the_pipeline(contract, table):
    """A preprocessing step the shortcut does not know means no shortcut, not a guess."""
    X, y = features_and_target(table, contract)
    other = ColumnTransformer([("spend", MinMaxScaler(), ["spend"])])
    model = Pipeline([("features", other), ("model", LogisticRegression())]).fit(X, y)
    assert compile_row_encoder(model) is None
    assert Predictor(model, contract).fast is None


def test_a_shortcut_that_disagrees_is_not_used(contract, table, monkeypatch):
    """The probe rows catch a shortcut that would score differently; the pipeline is kept."""
    from {{ cookiecutter.package }}.serve import predictor as predictor_module

    X, y = features_and_target(table, contract)
    model = Pipeline(
        [("features", build_preprocessor(contract)), ("model", LogisticRegression(max_iter=5000))]
    ).fit(X, y)
    honest = compile_row_encoder(model)
    assert honest is not None
    off_by_a_little = [lambda row: [v + 0.01 for v in honest.parts[0](row)], *honest.parts[1:]]
    broken = type(honest)(off_by_a_little, honest.model)
    monkeypatch.setattr(predictor_module, "compile_row_encoder", lambda _: broken)
    predictor = Predictor(model, contract)
    assert predictor.fast is None
    assert "answered the probe rows up to" in str(predictor.fast_path_off)


class Clip(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """A transformer of the encoded matrix, between the features and the model."""

    def fit(self, x: np.ndarray, y: object = None) -> Clip:
        self.low_, self.high_ = np.quantile(x, 0.05, axis=0), np.quantile(x, 0.95, axis=0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.low_, self.high_)


class SpendBands(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """A feature of raw columns inside the ColumnTransformer; `encode_row` opts into the shortcut."""

    def fit(self, x: pd.DataFrame, y: object = None) -> SpendBands:
        return self

    def transform(self, x: pd.DataFrame) -> np.ndarray:
        return np.column_stack([np.floor(np.log1p(pd.DataFrame(x).to_numpy(dtype="float64")))])

    def encode_row(self, values: list[float]) -> list[float]:
        return [float(np.floor(np.log1p(float(v)))) for v in values]


class SpendBandsBatchOnly(SpendBands):
    """The same feature without a one-row encoding."""

    encode_row = None  # type: ignore[assignment]


def _with_own_feature(contract, feature: object) -> ColumnTransformer:
    features = build_preprocessor(contract)
    features.transformers.append(("spend_bands", feature, ["spend"]))
    return features


def test_a_step_between_features_and_model_keeps_the_shortcut(contract, table):
    """A transformer of the encoded matrix runs on the encoded row: same scores, still fast."""
    X, y = features_and_target(table, contract)
    steps = [("features", build_preprocessor(contract)), ("clip", Clip())]
    model = Pipeline([*steps, ("model", LogisticRegression(max_iter=5000))]).fit(X, y)
    predictor = Predictor(model, contract)
    assert predictor.fast is not None, predictor.fast_path_off
    rows = request_rows(table, contract)[:200]
    one_at_a_time = np.array([predictor.scores([row])[0] for row in rows])
    np.testing.assert_allclose(one_at_a_time, model.predict_proba(predictor.frame(rows))[:, 1])


def test_a_feature_with_encode_row_keeps_the_shortcut(contract, table):
    """A column transformer of yours with `encode_row` is encoded by it, and checked."""
    X, y = features_and_target(table, contract)
    features = _with_own_feature(contract, SpendBands())
    model = Pipeline([("features", features), ("model", LogisticRegression(max_iter=5000))])
    predictor = Predictor(model.fit(X, y), contract)
    assert predictor.fast is not None, predictor.fast_path_off


def test_a_feature_without_a_row_encoding_says_why_the_shortcut_is_off(contract, table):
    """No shortcut, and the reason names the step and what to add (printed at start)."""
    X, y = features_and_target(table, contract)
    features = _with_own_feature(contract, SpendBandsBatchOnly())
    model = Pipeline([("features", features), ("model", LogisticRegression(max_iter=5000))])
    predictor = Predictor(model.fit(X, y), contract)
    assert predictor.fast is None
    assert predictor.fast_path_off is not None
    assert "'spend_bands'" in predictor.fast_path_off
    assert "SpendBandsBatchOnly" in predictor.fast_path_off
    assert "encode_row" in predictor.fast_path_off
