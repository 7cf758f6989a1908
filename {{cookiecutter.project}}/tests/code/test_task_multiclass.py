"""Tests for multiclass metrics, their class-stratified intervals and per-row log loss."""

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import accuracy_score, f1_score, log_loss, recall_score, roc_auc_score

from {{ cookiecutter.package }}.tasks.multiclass import (
    HIGHER_IS_BETTER,
    codes,
    encode,
    log_loss_rows,
    multiclass_intervals,
    multiclass_metrics,
    probabilities,
    recall_name,
)

CLASSES = ("low", "medium", "high")


def _case(seed: int, n: int = 300, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.standard_normal((n, k))
    logits[np.arange(n), y] += 1.0
    return y, softmax(logits, axis=1)


def test_point_metrics_equal_scikit_learn():
    """Macro-F1, log loss, one-vs-rest macro AUC, accuracy and per-class recall match sklearn."""
    y, proba = _case(1)
    metrics = multiclass_metrics(y, proba, CLASSES)
    predicted = proba.argmax(axis=1)
    assert metrics["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, proba))
    assert metrics["macro_roc_auc_ovr"] == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    recalls = recall_score(y, predicted, average=None)
    for c, name in enumerate(CLASSES):
        assert metrics[recall_name(name)] == pytest.approx(recalls[c])
    assert set(HIGHER_IS_BETTER) < set(metrics)


def test_tied_probabilities_count_one_half_in_the_auc():
    """A constant prediction ranks nothing: every one-vs-rest AUC is exactly 0.5."""
    y = np.array([0, 1, 2, 0, 1, 2])
    assert multiclass_metrics(y, np.full((6, 3), 1 / 3))["macro_roc_auc_ovr"] == 0.5


def test_intervals_contain_the_point():
    """Every interval holds its point estimate and says how it was resampled."""
    y, proba = _case(2, n=240)
    intervals = multiclass_intervals(y, proba, CLASSES, resamples=300, seed=3)
    for name, interval in intervals.items():
        assert interval.low <= interval.value <= interval.high, name
        assert interval.method == "stratified bootstrap"


def test_a_rare_class_is_in_every_resample():
    """Stratified by class: a 4-row class keeps 4 rows, so its recall is defined in every resample
    (a plain bootstrap would leave it out of about 2% of them and give no interval)."""
    y, proba = _case(5, n=200)
    y[y == 2] = 1
    y[:4] = 2
    intervals = multiclass_intervals(y, proba, resamples=500, seed=1)
    rare = intervals[recall_name(2)]
    assert np.isfinite([rare.low, rare.high]).all()
    assert {rare.low * 4, rare.high * 4} <= {0.0, 1.0, 2.0, 3.0, 4.0}


def test_log_loss_rows_average_to_the_log_loss():
    """Per-row log loss (clipped like sklearn's) averages to the metric."""
    y, proba = _case(4)
    assert log_loss_rows(y, proba).mean() == pytest.approx(log_loss(y, proba))
    assert log_loss_rows([0], [[0.0, 1.0]])[0] == pytest.approx(-np.log(1e-15))


def test_encode_maps_labels_to_probability_columns():
    """Labels become their position in `classes`; an unknown label is named in the error."""
    assert encode(["high", "low", "high"], CLASSES).tolist() == [2, 0, 2]
    with pytest.raises(ValueError, match="extreme"):
        encode(["low", "extreme"], CLASSES)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: codes([0, 3], 3), "class codes 0..2"),
        (lambda: codes(["a"], 3), "class codes"),
        (lambda: probabilities([[0.5, 0.6]]), "sum to 1 per row; row 0"),
        (lambda: probabilities([0.5, 0.5]), "rows, classes"),
        (lambda: probabilities([[1.5, -0.5]]), r"within \[0, 1\]"),
        (
            lambda: multiclass_metrics([0, 0], [[0.5, 0.5], [0.5, 0.5]]),
            r"classes \[1\] have no rows",
        ),
        (lambda: multiclass_metrics([0, 1], [[0.5, 0.5]]), "1 rows but y_true has 2"),
        (lambda: multiclass_metrics([0, 1], [[1, 0], [0, 1]], ["a"]), "classes has 1 names"),
    ],
)
def test_bad_input_names_what_is_wrong(call, message):
    """Misuse fails fast with a ValueError that says what was expected."""
    with pytest.raises(ValueError, match=message):
        call()
