"""Tests for bootstrap resamples as per-row draw counts, stratified by any grouping."""

import numpy as np
import pytest

from {{ cookiecutter.package }}.tasks import resample


def _strata() -> list[np.ndarray]:
    return [np.array([0, 2, 4]), np.array([1, 3]), np.array([5])]


def test_every_stratum_keeps_its_size_in_every_resample():
    """Draws stay within their stratum and sum to its size, so class balance is kept."""
    counts = np.vstack(list(resample.count_chunks(_strata(), 6, 50, seed=1)))
    assert counts.shape == (50, 6)
    for rows in _strata():
        assert (counts[:, rows].sum(axis=1) == rows.size).all()
    assert (counts[:, 5] == 1).all()  # a one-row stratum is always drawn once


def test_resamples_are_split_into_chunks_that_add_up(monkeypatch: pytest.MonkeyPatch):
    """Small chunks (as for a large holdout) still yield exactly `resamples` rows of counts."""
    monkeypatch.setattr(resample, "_CHUNK_ELEMENTS", 12)
    chunks = list(resample.count_chunks([np.arange(6)], 6, 7, seed=2))
    assert [chunk.shape[0] for chunk in chunks] == [2, 2, 2, 1]
    assert all((chunk.sum(axis=1) == 6).all() for chunk in chunks)


def test_counts_are_seeded():
    """The same seed draws the same resamples; another seed others."""
    first = np.vstack(list(resample.count_chunks([np.arange(20)], 20, 10, seed=3)))
    again = np.vstack(list(resample.count_chunks([np.arange(20)], 20, 10, seed=3)))
    other = np.vstack(list(resample.count_chunks([np.arange(20)], 20, 10, seed=4)))
    assert (first == again).all()
    assert (first != other).any()


def test_draws_are_uniform_within_a_stratum():
    """Each row is drawn once per resample on average (Poisson-like spread around 1)."""
    counts = np.vstack(list(resample.count_chunks([np.arange(10)], 10, 4000, seed=5)))
    assert counts.mean(axis=0) == pytest.approx(np.ones(10), abs=0.06)


def test_point_is_the_kernel_with_every_row_drawn_once():
    """A kernel's point estimates are its metrics on the holdout itself."""
    values = np.array([1.0, 2.0, 6.0])

    def kernel(counts):
        return {"mean": counts @ values / 3, "max": counts.max(axis=1)}

    assert resample.point(kernel, 3) == {"mean": 3.0, "max": 1.0}


def test_percentile_intervals_match_the_replicates_quantiles():
    """The interval ends are the level's quantiles of the same resamples' values."""
    values = np.arange(8, dtype=float)

    def kernel(counts):
        return {"mean": counts @ values / 8, "sum": counts @ values}

    strata = [np.arange(8)]
    interval = resample.percentile_intervals(kernel, strata, 8, resamples=300, seed=6, level=0.8)
    replicates = resample.bootstrap(kernel, strata, 8, 300, 6)
    low, high = np.quantile(replicates["mean"], [0.1, 0.9])
    assert (interval["mean"].value, interval["mean"].low, interval["mean"].high) == (3.5, low, high)
    assert interval["sum"].value == 28.0
    assert interval["mean"].method == "bootstrap"
    assert np.allclose(replicates["sum"], 8 * replicates["mean"])  # one resample, all metrics


@pytest.mark.parametrize("resamples", [0, -1, 2.5, True])
def test_resamples_must_be_a_positive_integer(resamples):
    """A resample count that is not a positive integer is named in the error."""
    with pytest.raises(ValueError, match="resamples"):
        next(resample.count_chunks([np.arange(3)], 3, resamples, seed=0))


def test_level_must_be_a_fraction():
    """A level outside (0, 1) is rejected before any resampling."""
    with pytest.raises(ValueError, match="level"):
        resample.percentile_intervals(dict, [np.arange(3)], 3, resamples=5, seed=0, level=95)
