"""The default model's trees walked in numpy give predict_proba's (or predict's) numbers, row by
row: two classes, three, and a regression (squared error, and Poisson through its log link)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from {{ cookiecutter.package }}.serve.tree_row import compile_tree_row


def _data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take the side each split learned
    signal = np.nan_to_num(x[:, 0]) - 0.5 * np.nan_to_num(x[:, 1]) + rng.normal(size=rows)
    return x, (signal > 0).astype(int)


def test_every_row_scores_as_predict_proba_does() -> None:
    x, y = _data(3000, 1)
    model = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=0)
    model.fit(x, y)
    answer = compile_tree_row(model)
    assert answer is not None
    rows, _ = _data(500, 2)
    expected = model.predict_proba(rows)
    got = np.array([answer(row.reshape(1, -1)) for row in rows])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_every_class_gets_predict_probas_number() -> None:
    x, y = _data(3000, 5)
    classes = y + (np.nan_to_num(x[:, 2]) > 0.8)  # 0, 1, 2
    model = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, random_state=0)
    answer = compile_tree_row(model.fit(x, classes))
    assert answer is not None
    rows, _ = _data(500, 6)
    got = np.array([answer(row.reshape(1, -1)) for row in rows])
    assert got.shape == (500, 3)
    np.testing.assert_allclose(got, model.predict_proba(rows), rtol=0, atol=1e-12)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_every_value_is_predicts_number(loss: str) -> None:
    x, _ = _data(3000, 7)
    signal = np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 3])
    y = np.exp(signal) if loss == "poisson" else 1_000.0 * signal + 20_000.0
    model = HistGradientBoostingRegressor(loss=loss, max_iter=50, random_state=0).fit(x, y)
    answer = compile_tree_row(model)
    assert answer is not None
    rows, _ = _data(500, 8)
    got = np.array([answer(row.reshape(1, -1))[0] for row in rows])
    np.testing.assert_allclose(got, model.predict(rows), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["categorical splits", "not fitted by us"])
def test_what_it_does_not_handle_is_left_to_predict_proba(kind: str) -> None:
    x, y = _data(600, 3)
    if kind == "categorical splits":
        x[:, 3] = np.random.default_rng(4).integers(0, 4, len(x))
        model = HistGradientBoostingClassifier(max_iter=5, categorical_features=[3]).fit(x, y)
    else:
        model = type("Mine", (HistGradientBoostingClassifier,), {})(max_iter=5).fit(x, y)
    assert compile_tree_row(model) is None
