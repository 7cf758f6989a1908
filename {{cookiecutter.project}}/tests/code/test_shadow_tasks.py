"""The shadow's comparison for each task: what counts as a disagreement, and the per-row
difference it records (binary's label comparison is unchanged)."""

from __future__ import annotations

import json

import pytest

from {{ cookiecutter.package }}.config import Shadow
from {{ cookiecutter.package }}.rollout.shadow import compare


def body(*predictions: dict) -> bytes:
    return json.dumps({"request_id": "r", "predictions": list(predictions)}).encode()


def test_binary_answers_compare_their_labels_as_before():
    """Binary: the labels the server gave decide; the score difference is recorded."""
    same = compare(body({"id": "1", "score": 0.61, "label": "yes"}),
                   body({"id": "1", "score": 0.52, "label": "yes"}))  # fmt: skip
    assert same[0] is True
    assert same[1] == pytest.approx([0.09])
    flipped = compare(body({"id": "1", "score": 0.51, "label": "yes"}),
                      body({"id": "1", "score": 0.49, "label": "no"}))  # fmt: skip
    assert flipped[0] is False


def test_regression_disagrees_beyond_the_relative_tolerance():
    """Values within 5 % of the primary's agree; one row beyond makes the request disagree."""
    primary = body({"id": "1", "value": 100.0}, {"id": "2", "value": -200.0})
    close = body({"id": "1", "value": 104.0}, {"id": "2", "value": -191.0})
    agree, diffs = compare(primary, close, relative_tolerance=0.05)
    assert agree is True
    assert diffs == pytest.approx([0.04, 0.045])
    far = body({"id": "1", "value": 100.0}, {"id": "2", "value": -189.0})
    assert compare(primary, far, relative_tolerance=0.05)[0] is False
    assert compare(primary, far, relative_tolerance=0.06)[0] is True


def test_regression_floor_keeps_values_near_zero_from_always_disagreeing():
    """Near zero, the tolerance is taken of the floor (target units), not of the tiny value."""
    primary, shadow = body({"id": "1", "value": 0.01}), body({"id": "1", "value": 0.3})
    assert compare(primary, shadow, relative_tolerance=0.05)[0] is False
    assert compare(primary, shadow, relative_tolerance=0.05, floor=10.0)[0] is True


def test_multiclass_disagrees_on_the_label_only():
    """The same class with other probabilities agrees (their largest difference is recorded);
    another class disagrees."""
    primary = body({"id": "1", "label": "a", "probabilities": {"a": 0.6, "b": 0.3, "c": 0.1}})
    shifted = body({"id": "1", "label": "a", "probabilities": {"a": 0.45, "b": 0.4, "c": 0.15}})
    agree, diffs = compare(primary, shifted)
    assert agree is True
    assert diffs == pytest.approx([0.15])
    other = body({"id": "1", "label": "b", "probabilities": {"a": 0.3, "b": 0.6, "c": 0.1}})
    assert compare(primary, other)[0] is False


def test_answers_of_different_shapes_are_an_error_not_an_agreement():
    """A shadow whose classes differ, or that answers another task, cannot be compared: the
    mirror counts such a copy as an error."""
    primary = body({"id": "1", "label": "a", "probabilities": {"a": 0.6, "b": 0.4}})
    other_classes = body({"id": "1", "label": "a", "probabilities": {"a": 0.6, "z": 0.4}})
    with pytest.raises(ValueError, match="expected the classes"):
        compare(primary, other_classes)
    with pytest.raises(ValueError, match="answer record 0"):
        compare(body({"id": "1", "value": 1.0}), primary)


def test_params_state_the_tolerance():
    """The tolerance is read from params.yaml's rollout.shadow (defaults: 5 %, no floor)."""
    assert Shadow().relative_tolerance == 0.05
    assert Shadow(relative_tolerance=0.1, tolerance_floor=50).tolerance_floor == 50
