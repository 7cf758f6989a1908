"""One row through a fitted HistGradientBoostingClassifier without scikit-learn's per-call cost.

For a single row, `predict_proba` spends about a millisecond on input checks and on calling
each of its trees in turn; the arithmetic is a few comparisons per tree. The fitted trees are
plain arrays, so all of them can walk one level at a time in numpy. Only what a default
`model.py` fits is handled (binary, numeric splits); anything else returns None and the
model's own `predict_proba` scores the row. `Predictor` checks the result against the full
pipeline on probe rows before it is used, so it can never silently diverge.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier

ScoreRow = Callable[[np.ndarray], float]


def compile_tree_row(model: Any) -> ScoreRow | None:
    """The positive-class probability of one encoded row (shape (1, n)), or None if unhandled."""
    if type(model) is not HistGradientBoostingClassifier:
        return None  # a subclass may predict differently
    if len(getattr(model, "classes_", ())) != 2 or getattr(model, "_preprocessor", None):
        return None
    categorical = getattr(model, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        return None  # categorical features split by bitsets: not walked here
    trees = [predictors[0] for predictors in model._predictors]
    if not trees or any(tree.nodes["is_categorical"].any() for tree in trees):
        return None
    sizes = [tree.nodes.shape[0] for tree in trees]
    offsets = np.cumsum([0, *sizes[:-1]])
    nodes = np.concatenate([tree.nodes for tree in trees])
    shift = np.repeat(offsets, sizes)  # child indices are per tree: make them global
    feature = nodes["feature_idx"].astype(np.intp)
    threshold = nodes["num_threshold"].astype(np.float64)
    missing_left = nodes["missing_go_to_left"].astype(bool)
    left = nodes["left"].astype(np.intp) + shift
    right = nodes["right"].astype(np.intp) + shift
    is_leaf = nodes["is_leaf"].astype(bool)
    value = nodes["value"].astype(np.float64)
    roots = offsets.astype(np.intp)
    depth = int(nodes["depth"].max())
    baseline = float(np.asarray(model._baseline_prediction).ravel()[0])

    def score(row: np.ndarray) -> float:
        x = np.asarray(row, dtype=np.float64).ravel()
        at = roots
        for _ in range(depth):
            leaf = is_leaf[at]
            if leaf.all():
                break
            v = x[feature[at]]
            go_left = np.where(np.isnan(v), missing_left[at], v <= threshold[at])
            at = np.where(leaf, at, np.where(go_left, left[at], right[at]))
        return float(expit(baseline + value[at].sum()))

    return score
