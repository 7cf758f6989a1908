"""Your model: the estimator this project trains, and what a model file may contain.

This module is yours to edit (README, "Your own model"). Everything else (validation, the
gate, the paired test, safe loading, serving, the canary) works on whatever pipeline
`build_pipeline` returns, as long as its last step has scikit-learn's `predict_proba`
(`predict` for `task: regression`, which takes its estimator from REGRESSORS).

To train another library's classifier, e.g. LightGBM:
1. `make add PKG=lightgbm` (pyproject.toml and the hashed locks), then `make install`;
2. here: import `LGBMClassifier`, add it to ESTIMATORS and `"lightgbm": ("*",)` to LIBRARIES;
3. in params.yaml: `model: {kind: lightgbm, lightgbm: {n_estimators: 300, verbose: -1}}`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from .contract import Contract
from .features import build_preprocessor

# `params.yaml: model.kind` -> the class (or any function) that makes the estimator; its
# settings are the params.yaml section of the same name (`model.<kind>: {...}`).
ESTIMATORS: dict[str, Callable[..., Any]] = {
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "random_forest": RandomForestClassifier,
    "logistic_regression": LogisticRegression,
}
# The same for `task: regression` (params.yaml): estimators that predict a number.
REGRESSORS: dict[str, Callable[..., Any]] = {
    "hist_gradient_boosting": HistGradientBoostingRegressor,
    "random_forest": RandomForestRegressor,
    "ridge": Ridge,
}

# The one declaration of what a model file may contain, by library (its import name): the
# types of it a model may hold, as "module.Class", or "*" for every class the library
# defines. A model file is checked against it when it is saved (train fails, naming what to
# add) and when it is loaded (anything else is refused, with the type named). Each library's
# version is recorded at training; a model is refused where another major.minor is installed.
# This package's own classes (your transformers) are trusted without being listed here.
LIBRARIES: dict[str, tuple[str, ...]] = {
    "sklearn": (
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.pipeline.Pipeline",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.Interval",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.dummy.DummyClassifier",
        # multiclass and regression
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.linear_model._ridge.Ridge",
    ),
    "skops": (),  # the file format: its version is recorded and checked, it adds no types
}


def estimators(task: str) -> dict[str, Callable[..., Any]]:
    """The estimators a task may use: regressors for regression, classifiers otherwise."""
    return REGRESSORS if task == "regression" else ESTIMATORS


def build_estimator(kind: str, settings: Mapping[str, Any], seed: int, task: str = "binary") -> Any:
    """The estimator named by `model.kind` for the task, with its settings from params.yaml."""
    make = estimators(task)[kind]
    hyperparameters = dict(settings)
    accepts: list[str] = getattr(make, "_get_param_names", list)()  # a scikit-learn estimator's
    if "random_state" in accepts:
        hyperparameters.setdefault("random_state", seed)
    return make(**hyperparameters)


def build_pipeline(
    contract: Contract, kind: str, settings: Mapping[str, Any], seed: int, task: str = "binary"
) -> Any:
    """Features and estimator as one object: what is trained, saved, served and scored.

    A transformer of your own goes between the two steps (it gets the encoded matrix), or
    into `features.build_preprocessor`. Serving scores one row without pandas when every
    step allows it; a step that does not is named when the server starts.
    """
    return Pipeline(
        [
            ("features", build_preprocessor(contract)),
            ("model", build_estimator(kind, settings, seed, task)),
        ]
    )
