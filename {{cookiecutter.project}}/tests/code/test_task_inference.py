"""Tests for inferring the task from the target column, and for the TASK= override."""

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package }}.errors import ConfigError, DataError
from {{ cookiecutter.package }}.tasks.inference import MAX_CLASSES, infer_task


@pytest.mark.parametrize(
    ("values", "task", "because"),
    [
        ([0, 1, 1, 0], "binary", "two values"),
        (["yes", "no", "no"], "binary", "two values"),
        ([True, False, True], "binary", "two values"),
        ([1.5, 2.25, 3.0, 9.75], "regression", "fractions"),
        (list(range(MAX_CLASSES + 1)), "regression", "31 distinct whole numbers"),
        ([1, 2, 3, 3, 2, 1, 1], "multiclass", "3 distinct whole numbers, read as classes"),
        (["gold", "silver", "bronze", "gold"], "multiclass", "3 classes"),
    ],
)
def test_the_task_follows_from_the_target(values, task, because):
    """Two values: binary; fractional or many numbers: regression; 3 to 30 values: multiclass."""
    guess = infer_task(pd.Series(values, name="y"))
    assert guess.task == task
    assert because in guess.reason


def test_whole_number_classes_name_their_smallest_class_and_the_override():
    """A rating-like target says which class is smallest and how to read it as amounts."""
    guess = infer_task(pd.Series([1, 1, 1, 2, 2, 3]))
    assert "smallest class '3' has 1 rows" in guess.reason
    assert "TASK=regression" in guess.reason


def test_an_override_the_data_supports_wins():
    """TASK=regression on whole-number ratings is taken, and said to be given."""
    guess = infer_task(pd.Series([1, 2, 3, 4, 5, 3]), override="regression")
    assert (guess.task, guess.reason) == ("regression", "TASK=regression given")


@pytest.mark.parametrize(
    ("values", "override", "error", "message"),
    [
        ([1, 2, 3], "binary", DataError, "binary needs exactly two values; the target has 3"),
        ([0, 1, 0], "multiclass", DataError, "at least three classes"),
        (["a", "b", "c"], "regression", DataError, "numeric target"),
        ([1, 2, 3], "ranking", ConfigError, "TASK must be one of binary, multiclass, regression"),
    ],
)
def test_an_override_the_data_cannot_support_is_refused(values, override, error, message):
    """The refusal says what the task needs and what the target has."""
    with pytest.raises(error, match=message):
        infer_task(pd.Series(values), override=override)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, np.nan, 2.0], "1 blank values"),
        ([4, 4, 4], "a single value"),
        ([f"v{i}" for i in range(MAX_CLASSES + 5)], "35 distinct values that are not numbers"),
    ],
)
def test_a_target_no_task_fits_is_a_data_error(values, message):
    """Blanks, a constant, or too many text values: a DataError that says what to do."""
    with pytest.raises(DataError, match=message):
        infer_task(pd.Series(values, name="y"))
