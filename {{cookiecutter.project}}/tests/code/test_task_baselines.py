"""Tests for predictions that need no model: constants and the best one-feature model."""

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package }}.tasks.baselines import (
    MIN_GROUP_ROWS,
    best_single_feature_classes,
    best_single_feature_value,
    class_baselines,
    feature_groups,
    value_baselines,
)


def _frame(seed: int, n: int = 400) -> tuple[pd.DataFrame, np.random.Generator]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "noise": rng.standard_normal(n),
            "signal": rng.uniform(0, 10, n),
            "region": rng.choice(["north", "south"], n),
            "constant": np.ones(n),
        }
    )
    return frame, rng


def test_value_baselines_are_the_fit_targets_mean_and_median():
    """Constants come from the training target, one per holdout row."""
    constants = value_baselines([1.0, 2.0, 9.0], 4)
    assert constants["mean"].tolist() == [4.0] * 4
    assert constants["median"].tolist() == [2.0] * 4


def test_class_baselines_are_the_prior_and_the_majority():
    """The prior is the training class shares; the majority puts all mass on the commonest."""
    constants = class_baselines([0, 1, 1, 2], 3, 2)
    assert constants["prior"].tolist() == [[0.25, 0.5, 0.25]] * 2
    assert constants["majority"].tolist() == [[0.0, 1.0, 0.0]] * 2


def test_feature_groups_bin_numbers_and_keep_missing_apart():
    """A number falls into up to 10 quantile bins; missing values form a group of their own."""
    values = pd.Series([float(i) for i in range(100)] + [np.nan] * 5)
    groups = feature_groups(values)
    assert groups is not None
    assert np.unique(groups[:100]).size == 10
    assert np.unique(groups[100:]).size == 1
    assert groups[100] not in set(groups[:100])


def test_feature_groups_pool_rare_categories_and_skip_constants():
    """Category values seen on fewer than MIN_GROUP_ROWS rows share one group; a constant is no feature."""
    common = ["a"] * MIN_GROUP_ROWS + ["b"] * MIN_GROUP_ROWS
    groups = feature_groups(pd.Series([*common, "c", "d", None]))
    assert groups is not None
    assert np.unique(groups).size == 3  # a, b, and the pooled rare values (missing included)
    assert feature_groups(pd.Series([3.0] * 50)) is None
    assert feature_groups(pd.Series([True, False] * 30)) is not None


def test_feature_groups_bin_dates_with_any_time_zone():
    """Dates bin by time; NaT is its own group."""
    dates = pd.Series(pd.date_range("2024-01-01", periods=60, freq="D", tz="UTC"))
    dates[3] = pd.NaT
    groups = feature_groups(dates)
    assert groups is not None
    assert np.unique(groups).size == 11


def test_best_single_feature_for_a_value_finds_the_signal():
    """The column that predicts the target is chosen, and its group means beat the mean."""
    frame, rng = _frame(1)
    y = np.sin(frame["signal"].to_numpy()) * 5 + rng.normal(0, 0.5, len(frame))
    name, predicted = best_single_feature_value(frame, y)
    assert name == "signal"
    assert ((predicted - y) ** 2).mean() < 0.5 * y.var()


def test_best_single_feature_for_classes_finds_the_signal():
    """The column whose groups separate the classes is chosen; shares are proper probabilities."""
    frame, rng = _frame(2)
    y = np.where(frame["region"] == "north", 0, 1 + (rng.random(len(frame)) < 0.5))
    name, proba = best_single_feature_classes(frame, y, 3)
    assert name == "region"
    assert proba.sum(axis=1) == pytest.approx(np.ones(len(frame)))
    assert proba[frame["region"].to_numpy() == "north", 0].min() > 0.9


def test_without_any_varying_column_the_constant_is_returned():
    """No informative column: the mean (value) or the prior (classes) is the bar."""
    frame = pd.DataFrame({"constant": np.ones(6)})
    assert best_single_feature_value(frame, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])[0] == "mean"
    name, proba = best_single_feature_classes(frame, [0, 0, 1, 1, 1, 1], 2)
    assert name == "prior"
    assert proba[0].tolist() == pytest.approx([1 / 3, 2 / 3])
