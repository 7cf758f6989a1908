"""Tests for disparity between protected groups: error ratio and recall gap, with intervals."""

import numpy as np
import pytest

from {{ cookiecutter.package }}.tasks.fairness import error_ratio, group_codes, recall_gap


def test_group_codes_name_groups_and_keep_missing_apart():
    """Each distinct value is a group, missing values one more, named in sorted order."""
    code, names = group_codes(["b", "a", None, "b"], 4)
    assert names == ["(missing)", "a", "b"]
    assert code.tolist() == [2, 1, 0, 2]
    with pytest.raises(ValueError, match="groups has 2 rows"):
        group_codes(["a", "b"], 3)


def test_error_ratio_is_the_worst_groups_mae_over_the_best():
    """Group a errs twice as much as group b: ratio 2, with each group's MAE reported."""
    y = np.zeros(80)
    predictions = np.r_[np.full(40, 2.0), np.full(40, -1.0)]
    groups = ["a"] * 40 + ["b"] * 40
    result = error_ratio(y, predictions, groups, min_rows=30, resamples=100)
    assert result.interval.value == pytest.approx(2.0)
    assert result.groups == {"a": {"n": 40, "mae": 2.0}, "b": {"n": 40, "mae": 1.0}}
    assert (result.measure, result.parity, result.left_out) == ("error_ratio", 1.0, [])
    assert result.contrast == "a / b"


def test_error_ratio_interval_covers_a_known_disparity():
    """Group y's errors are truly 1.5 times group x's: the interval contains 1.5."""
    rng = np.random.default_rng(1)
    groups = rng.choice(["x", "y"], 1200)
    y = rng.normal(10, 2, 1200)
    predictions = y + rng.standard_normal(1200) * np.where(groups == "y", 1.5, 1.0)
    result = error_ratio(y, predictions, groups, resamples=400, seed=2)
    assert result.interval.low <= 1.5 <= result.interval.high
    assert result.interval.method == "stratified bootstrap"


def test_alike_groups_have_an_interval_that_reaches_parity():
    """The worst and best groups are fixed on the holdout, so for alike groups the interval
    reaches parity instead of sitting above it as a fresh max per resample would."""
    rng = np.random.default_rng(5)
    y = rng.normal(10, 2, 1200)
    predictions = y + rng.standard_normal(1200)
    groups = rng.choice(["x", "y", "z"], 1200)
    result = error_ratio(y, predictions, groups, resamples=300)
    assert result.interval.low <= 1.0 <= result.interval.high
    proba = np.eye(2)[(rng.random(1200) < 0.8).astype(int)]  # class 1 predicted 80% of the time
    truth = np.ones(1200, dtype=int)
    truth[:300] = 0
    gap = recall_gap(truth, proba, groups, resamples=300)
    assert gap.interval.low <= 0.0 <= gap.interval.high


def test_small_groups_are_reported_but_left_out():
    """A group below min_rows appears in the report and in left_out, not in the ratio."""
    y = np.zeros(65)
    predictions = np.r_[np.full(30, 1.0), np.full(30, 1.0), np.full(5, 9.0)]
    groups = ["a"] * 30 + ["b"] * 30 + ["tiny"] * 5
    result = error_ratio(y, predictions, groups, min_rows=30, resamples=50)
    assert result.interval.value == 1.0
    assert result.left_out == ["tiny"]
    assert result.groups["tiny"]["n"] == 5
    with pytest.raises(ValueError, match="two groups of 40 rows"):
        error_ratio(y, predictions, groups, min_rows=40)


def test_binary_recall_gap_is_the_equalized_odds_gap():
    """With two classes the recall gap is max(TPR spread, FPR spread) across groups."""
    rng = np.random.default_rng(3)
    n = 800
    y = rng.integers(0, 2, n)
    groups = rng.choice(["f", "m"], n)
    p = np.clip(0.5 * y + 0.25 + rng.normal(0, 0.25 + 0.1 * (groups == "m"), n), 0, 1)
    result = recall_gap(y, np.column_stack([1 - p, p]), groups, resamples=100)
    predicted = (p > 0.5).astype(int)
    tpr = {g: predicted[(groups == g) & (y == 1)].mean() for g in ("f", "m")}
    fpr = {g: predicted[(groups == g) & (y == 0)].mean() for g in ("f", "m")}
    expected = max(abs(tpr["f"] - tpr["m"]), abs(fpr["f"] - fpr["m"]))
    assert result.interval.value == pytest.approx(expected)
    assert result.groups["f"]["recall"]["1"] == pytest.approx(tpr["f"])


def test_multiclass_recall_gap_finds_the_class_served_worse_in_one_group():
    """Class 2 is never recalled in group b but always in group a: the gap is 1."""
    y = np.array([0, 1, 2] * 40)
    groups = np.array(["a"] * 60 + ["b"] * 60)
    proba = np.eye(3)[y] * 0.7 + 0.1
    proba[(groups == "b") & (y == 2)] = [0.1, 0.8, 0.1]
    result = recall_gap(y, proba, groups, ["low", "mid", "high"], resamples=100)
    assert result.interval.value == 1.0
    assert result.groups["b"]["recall"] == {"low": 1.0, "mid": 1.0, "high": 0.0}
    assert (result.measure, result.parity) == ("recall_gap", 0.0)
    assert result.contrast == "recall of high: a - b"


def test_recall_gap_interval_covers_a_known_gap():
    """Class 2 is recalled 80% of the time in group a, 50% in group b, other classes alike:
    the interval contains the true gap 0.3."""
    rng = np.random.default_rng(4)
    n = 3000
    y = rng.integers(0, 3, n)
    groups = rng.choice(["a", "b"], n)
    rate = np.where((groups == "b") & (y == 2), 0.5, 0.8)
    predicted = np.where(rng.random(n) < rate, y, (y + 1) % 3)
    proba = np.eye(3)[predicted] * 0.7 + 0.1
    result = recall_gap(y, proba, groups, resamples=400, seed=6)
    assert result.interval.low <= 0.3 <= result.interval.high


def test_recall_gap_needs_two_judged_groups_for_some_class():
    """Nothing to compare: the error lists rows per group and class."""
    with pytest.raises(ValueError, match="rows per group and class"):
        recall_gap([0, 1, 0, 1], np.eye(2)[[0, 1, 0, 1]], ["a", "a", "b", "b"], min_rows=2)
