"""Tests for the shadow comparison's disagreement per task."""

import math

import numpy as np
import pytest

from {{ cookiecutter.package }}.tasks.agreement import (
    label_disagreement,
    value_disagreement,
    wilson_interval,
)


def test_wilson_interval_matches_its_closed_form():
    """0 of 10 has upper bound z^2 / (n + z^2); a share of one half is centred."""
    z = 1.959963984540054
    assert wilson_interval(0, 10) == pytest.approx((0.0, z * z / (10 + z * z)))
    low, high = wilson_interval(50, 100)
    assert (low + high) / 2 == pytest.approx(0.5)
    assert high - low == pytest.approx(
        2 * z * math.sqrt(0.25 / 100 + z * z / 40000) / (1 + z * z / 100)
    )


def test_label_disagreement_counts_different_labels():
    """Two of four labels differ: share one half, with its Wilson interval."""
    result = label_disagreement(["a", "b", "c", "a"], ["a", "c", "c", "b"])
    assert (result.share, result.rows, result.disagreeing) == (0.5, 4, 2)
    assert (result.low, result.high) == wilson_interval(2, 4)
    assert result.to_dict()["rule"] == "label differs"


def test_value_disagreement_uses_the_relative_tolerance():
    """Rows differ when apart by more than the tolerance times the larger of |primary| and floor."""
    primary = np.array([100.0, 100.0, 1.0, 0.0])
    shadow = np.array([104.0, 106.0, 1.5, 0.3])
    assert value_disagreement(primary, shadow, 0.05).disagreeing == 3
    # With a floor of 10, small predictions may differ by up to 0.5 before they count.
    assert value_disagreement(primary, shadow, 0.05, floor=10.0).disagreeing == 1


def test_identical_predictions_never_disagree():
    """A shadow equal to the primary disagrees on no row, even at tolerance zero."""
    values = np.linspace(-5, 5, 30)
    result = value_disagreement(values, values.copy(), relative_tolerance=0.0)
    assert result.share == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: label_disagreement([1, 2], [1]), "same length"),
        (lambda: label_disagreement([], []), "non-empty"),
        (lambda: value_disagreement([1.0, 2.0], [1.0]), "shadow has 1 rows"),
        (lambda: value_disagreement([1.0], [1.0], relative_tolerance=-1), "relative_tolerance"),
        (lambda: value_disagreement([1.0], [1.0], floor=math.nan), "floor"),
        (lambda: wilson_interval(3, 2), "count"),
        (lambda: wilson_interval(1, 2, level=0), "level"),
    ],
)
def test_bad_input_names_what_is_wrong(call, message):
    """Misuse fails fast with a ValueError naming the argument."""
    with pytest.raises(ValueError, match=message):
        call()
