"""Tests for regression metrics, their bootstrap intervals and per-row losses."""

import numpy as np
import pytest
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    r2_score,
)

from {{ cookiecutter.package }}.tasks.regression import (
    HIGHER_IS_BETTER,
    absolute_error,
    mape_applies,
    metric_names,
    regression_intervals,
    regression_metrics,
    squared_error,
    values,
)


def _case(seed: int, n: int = 300, offset: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = offset + 3.0 * rng.standard_normal(n)
    return y, y + rng.normal(0.3, 1.0, n)


def test_point_metrics_equal_scikit_learn():
    """RMSE, MAE, R² and MAPE agree with scikit-learn; relative MAE is MAE / mean |y|."""
    y, predicted = _case(1)
    metrics = regression_metrics(y, predicted)
    assert metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, predicted)))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, predicted))
    assert metrics["r2"] == pytest.approx(r2_score(y, predicted))
    assert metrics["mape"] == pytest.approx(mean_absolute_percentage_error(y, predicted))
    assert metrics["relative_mae"] == pytest.approx(metrics["mae"] / np.abs(y).mean())
    assert set(metrics) == set(HIGHER_IS_BETTER)


def test_mape_is_reported_only_when_no_target_is_near_zero():
    """A target crossing zero gets no MAPE (one row's percentage would swamp the rest)."""
    y, predicted = _case(2, offset=0.0)
    assert not mape_applies(y)
    assert "mape" not in regression_metrics(y, predicted)
    assert metric_names(y) == ["rmse", "mae", "r2", "relative_mae"]
    assert mape_applies([10.0, 12.0, 9.0])
    assert not mape_applies([10.0, 12.0, 0.5])  # 0.5 < 10% of the mean


def test_intervals_contain_the_point_and_narrow_with_more_rows():
    """Each interval holds its point estimate; four times the rows about halves its width."""
    small = regression_intervals(*_case(3, n=200), resamples=400, seed=1)
    large = regression_intervals(*_case(3, n=800), resamples=400, seed=1)
    for name, interval in small.items():
        assert interval.low <= interval.value <= interval.high, name
        assert interval.method == "bootstrap"
    ratio = (large["rmse"].high - large["rmse"].low) / (small["rmse"].high - small["rmse"].low)
    assert 0.35 < ratio < 0.7


def test_intervals_are_reproducible_and_seeded():
    """The same seed gives the same interval; another seed a different one."""
    y, predicted = _case(4)
    first = regression_intervals(y, predicted, resamples=200, seed=5)
    assert regression_intervals(y, predicted, resamples=200, seed=5) == first
    assert regression_intervals(y, predicted, resamples=200, seed=6)["mae"] != first["mae"]


def test_rmse_interval_covers_the_truth_at_about_its_level():
    """Over 100 data sets with known error sd 1, the 90% RMSE interval covers 1 about 90%."""
    rng = np.random.default_rng(7)
    covered = 0
    for i in range(100):
        y = rng.normal(5.0, 2.0, 400)
        interval = regression_intervals(
            y, y + rng.standard_normal(400), level=0.9, resamples=300, seed=i
        )["rmse"]
        covered += interval.low <= 1.0 <= interval.high
    assert 80 <= covered <= 97


def test_row_losses_are_squared_and_absolute_errors():
    """Per-row losses are what the paired test averages."""
    assert squared_error([1.0, 2.0], [2.0, 0.0]).tolist() == [1.0, 4.0]
    assert absolute_error([1.0, 2.0], [2.0, 0.0]).tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0]), "predictions has 2 rows"),
        (lambda: regression_metrics([1.0, np.nan], [1.0, 2.0]), "y_true contains 1 NaN"),
        (lambda: regression_metrics([2.0, 2.0], [1.0, 2.0]), "two different values"),
        (lambda: regression_metrics([1.0, 2.0], ["a", "b"]), "predictions must be numeric"),
        (lambda: values([[1.0]], "y_true"), "1-D"),
        (lambda: regression_intervals([1.0, 2.0], [1.0, 2.0], level=1.5), "level"),
        (lambda: regression_intervals([1.0, 2.0], [1.0, 2.0], resamples=0), "resamples"),
    ],
)
def test_bad_input_names_what_is_wrong(call, message):
    """Misuse fails fast with a ValueError that says which argument and what was expected."""
    with pytest.raises(ValueError, match=message):
        call()
