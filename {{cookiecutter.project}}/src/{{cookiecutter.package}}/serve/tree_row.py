"""One row through a fitted HistGradientBoosting model without scikit-learn's per-call cost.

For a single row, `predict_proba` spends about a millisecond on input checks and on calling
each of its trees in turn; the arithmetic is a few comparisons per tree. The fitted trees are
plain arrays, so all of them (every class's, for multiclass) walk one level at a time in numpy,
and the model's own loss turns the summed leaves into its answer: class probabilities (binary,
multiclass) or the value (regression, through the loss's link). Only numeric splits are
handled; anything else returns None and the model's own predict_proba or predict answers.
`Predictor` checks the result against the full pipeline on probe rows before it is used, so
it can never silently diverge.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

AnswerRow = Callable[[np.ndarray], np.ndarray]


def compile_tree_row(model: Any) -> AnswerRow | None:
    """The model's answer for one encoded row (shape (1, n)): its class probabilities (as
    predict_proba's row) or a one-element array holding the value; None if unhandled."""
    if type(model) not in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        return None  # a subclass may predict differently
    if getattr(model, "_preprocessor", None) is not None:
        return None
    categorical = getattr(model, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        return None  # categorical features split by bitsets: not walked here
    per_iteration = int(model.n_trees_per_iteration_)
    trees = [tree for predictors in model._predictors for tree in predictors]
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
    # trees come iteration by iteration, one per class in each: tree i adds to class i % K
    owner = np.arange(len(trees)) % per_iteration
    depth = int(nodes["depth"].max())
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1, per_iteration)
    loss = model._loss
    classifier = isinstance(model, HistGradientBoostingClassifier)
    binary = classifier and per_iteration == 1
    baseline_one = float(baseline[0, 0])

    def answer(row: np.ndarray) -> np.ndarray:
        x = np.asarray(row, dtype=np.float64).ravel()
        at = roots
        for _ in range(depth):
            leaf = is_leaf[at]
            if leaf.all():
                break
            v = x[feature[at]]
            go_left = np.where(np.isnan(v), missing_left[at], v <= threshold[at])
            at = np.where(leaf, at, np.where(go_left, left[at], right[at]))
        if binary:  # the served default: expit as the loss has it, without its call overhead
            positive = float(expit(baseline_one + value[at].sum()))
            return np.array([1.0 - positive, positive])
        raw = baseline + np.bincount(owner, weights=value[at], minlength=per_iteration)
        # the loss is scikit-learn's (untyped): its probabilities, or the value through its link
        out: np.ndarray = (
            np.asarray(loss.predict_proba(raw), dtype=np.float64)[0]
            if classifier
            else np.asarray(loss.link.inverse(raw[:, 0]), dtype=np.float64)
        )
        return out

    return answer
