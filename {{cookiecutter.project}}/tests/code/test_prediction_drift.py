"""Drift of the prediction distribution: each watched number's PSI against the holdout's."""

from __future__ import annotations

import numpy as np
import pytest

from {{ cookiecutter.package }}.monitoring.prediction_drift import compare_predictions, counts
from {{ cookiecutter.package }}.tasks.outputs import MULTICLASS, REGRESSION, watched

RNG = np.random.default_rng(11)


def judge(reference, current, min_rows=200):
    return compare_predictions(reference, current, 10, 0.2, 1e-4, min_rows)


def test_the_same_distribution_is_no_drift_and_a_shift_is():
    """A regression's values drawn again from the same distribution pass; shifted by one
    standard deviation they drift."""
    reference = watched(REGRESSION, RNG.normal(100, 10, 3000))
    same = judge(reference, watched(REGRESSION, RNG.normal(100, 10, 2000)))
    assert same["status"] == "ok"
    assert same["watched"][0]["watched"] == "value"
    moved = judge(reference, watched(REGRESSION, RNG.normal(110, 10, 2000)))
    assert moved["status"] == "drift"
    assert moved["watched"][0]["psi"] > 0.2


def test_multiclass_watches_every_class_probability():
    """One series per class; a batch whose answers move toward one class drifts on it."""
    classes = ["low", "high"]
    p = RNG.uniform(0.1, 0.9, 3000)
    reference = watched(MULTICLASS, np.column_stack([p, 1 - p]), classes)
    q = RNG.uniform(0.5, 0.99, 1000)
    report = judge(reference, watched(MULTICLASS, np.column_stack([q, 1 - q]), classes))
    assert [e["watched"] for e in report["watched"]] == ["probability[low]", "probability[high]"]
    assert report["status"] == "drift"


def test_few_rows_are_reported_not_judged():
    """Below drift.min_rows the PSI is shown but the verdict is too_few_rows."""
    reference = watched(REGRESSION, RNG.normal(0, 1, 3000))
    report = judge(reference, watched(REGRESSION, RNG.normal(5, 1, 50)))
    assert report["status"] == "too_few_rows"
    assert report["rows"] == 50


def test_counts_cover_every_value_once():
    """Every value lands in exactly one bin, the edges' own values included."""
    edges = np.array([1.0, 2.0])
    assert counts(np.array([0.5, 1.0, 1.5, 2.0, 9.0]), edges) == [2, 2, 1]
    assert sum(counts(RNG.normal(size=500), edges)) == 500


@pytest.mark.parametrize("values", [np.full(400, 3.0), np.repeat([1.0, 2.0], 200)])
def test_constant_or_two_valued_predictions_still_bin(values):
    """Repeated quantiles merge into fewer bins instead of failing."""
    report = judge(watched(REGRESSION, values), watched(REGRESSION, values))
    assert report["status"] == "ok"
    assert report["watched"][0]["psi"] == pytest.approx(0.0)
