"""Tests for the answer records per task, reading them back, and the numbers drift watches."""

import numpy as np
import pytest

from {{ cookiecutter.package }}.tasks.outputs import (
    BINARY,
    MULTICLASS,
    REGRESSION,
    answers,
    invariance_share,
    read_back,
    watched,
)


def test_binary_answers_keep_todays_shape():
    """Binary answers are {id, score, label}, the label at the threshold."""
    records = answers(BINARY, [0.2, 0.7], ids=["a", "b"], threshold=0.5)
    assert records == [
        {"id": "a", "score": 0.2, "label": 0},
        {"id": "b", "score": 0.7, "label": 1},
    ]


def test_regression_answers_carry_the_value():
    """Regression answers are {id, value}; without ids, just the value."""
    assert answers(REGRESSION, [3.5, -1.0]) == [{"value": 3.5}, {"value": -1.0}]


def test_multiclass_answers_carry_the_class_and_every_probability():
    """The label is the most probable class, as given (a model's numpy classes become plain)."""
    classes = np.array([10, 20, 30])
    records = answers(MULTICLASS, [[0.2, 0.5, 0.3]], classes, ids=[7])
    assert records == [{"id": 7, "label": 20, "probabilities": {"10": 0.2, "20": 0.5, "30": 0.3}}]
    assert type(records[0]["label"]) is int


@pytest.mark.parametrize(
    ("outputs", "prediction", "classes"),
    [
        (BINARY, np.array([0.1, 0.9, 0.5]), ()),
        (REGRESSION, np.array([1.25, 3.0, -2.0]), ()),
        (MULTICLASS, np.array([[0.1, 0.9], [0.6, 0.4]]), ("no", "yes")),
    ],
)
def test_read_back_inverts_answers(outputs, prediction, classes):
    """A server's records read back to the very prediction that made them."""
    records = answers(outputs, prediction, classes)
    assert np.array_equal(read_back(outputs, records, classes), prediction)


def test_read_back_names_the_record_that_does_not_fit():
    """A record with missing classes or a missing field says which record and what."""
    with pytest.raises(ValueError, match=r"answer record 1: probabilities are given for \['a'\]"):
        read_back(
            MULTICLASS,
            [
                {"label": "a", "probabilities": {"a": 0.5, "b": 0.5}},
                {"label": "a", "probabilities": {"a": 1.0}},
            ],
            ("a", "b"),
        )
    with pytest.raises(ValueError, match="answer record 0"):
        read_back(REGRESSION, [{"score": 0.3, "label": 0}])


def test_watched_numbers_per_task():
    """Drift follows the score, the value, or each class's probability."""
    assert list(watched(BINARY, [0.3])) == ["score"]
    assert list(watched(REGRESSION, [3.0])) == ["value"]
    per_class = watched(MULTICLASS, [[0.25, 0.75]], ("a", "b"))
    assert {k: v.tolist() for k, v in per_class.items()} == {
        "probability[a]": [0.25],
        "probability[b]": [0.75],
    }


def test_mismatched_classes_or_ids_are_refused():
    """The class list must match the probability columns; ids must match the rows."""
    with pytest.raises(ValueError, match="classes has 1 names"):
        answers(MULTICLASS, [[0.5, 0.5]], ("a",))
    with pytest.raises(ValueError, match="ids has 1 entries"):
        answers(REGRESSION, [1.0, 2.0], ids=["x"])


def test_invariance_share_follows_the_watched_number():
    """The share of rows moving the declared way: the value, the score, or a named class."""
    assert (
        invariance_share(REGRESSION, [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 4.0, 3.0], "increase") == 0.5
    )
    assert invariance_share(BINARY, [0.5, 0.5], [0.4, 0.6], "decrease") == 0.5
    before = [[0.5, 0.5], [0.6, 0.4]]
    after = [[0.3, 0.7], [0.5, 0.5]]
    assert (
        invariance_share(MULTICLASS, before, after, "increase", ("a", "b"), "probability[b]") == 1.0
    )


def test_invariance_share_needs_a_class_for_multiclass():
    """Multiclass watches one number per class, so the rule must say which; bad input is named."""
    with pytest.raises(ValueError, match=r"watch must be one of \['probability\[a\]'"):
        invariance_share(MULTICLASS, [[0.5, 0.5]], [[0.4, 0.6]], "increase", ("a", "b"))
    with pytest.raises(ValueError, match="direction"):
        invariance_share(BINARY, [0.5], [0.6], "up")
    with pytest.raises(ValueError, match="before has 2 rows but after has 1"):
        invariance_share(REGRESSION, [1.0, 2.0], [1.0], "increase")
