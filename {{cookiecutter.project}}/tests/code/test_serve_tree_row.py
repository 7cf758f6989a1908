"""The default model's trees walked in numpy give predict_proba's numbers, row by row."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

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
    score = compile_tree_row(model)
    assert score is not None
    rows, _ = _data(500, 2)
    expected = model.predict_proba(rows)[:, 1]
    got = np.array([score(row.reshape(1, -1)) for row in rows])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["three classes", "categorical splits", "not fitted by us"])
def test_what_it_does_not_handle_is_left_to_predict_proba(kind: str) -> None:
    x, y = _data(600, 3)
    if kind == "three classes":
        model = HistGradientBoostingClassifier(max_iter=5).fit(x, y + (x[:, 2] > 1))
    elif kind == "categorical splits":
        x[:, 3] = np.random.default_rng(4).integers(0, 4, len(x))
        model = HistGradientBoostingClassifier(max_iter=5, categorical_features=[3]).fit(x, y)
    else:
        model = type("Mine", (HistGradientBoostingClassifier,), {})(max_iter=5).fit(x, y)
    assert compile_tree_row(model) is None
