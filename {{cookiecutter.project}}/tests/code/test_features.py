"""Feature functions: shapes, periodicity, ranges and frequencies."""

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package }}.features import (
    DateFeatures,
    FrequencyEncoder,
    cyclical_encode,
    days_since,
    frequency_encode,
)


class TestCyclicalEncode:
    def test_output_shape(self):
        """One sin and one cos column per input, named after it."""
        result = cyclical_encode(pd.Series(range(24), name="hour"), period=24)
        assert result.shape == (24, 2)
        assert list(result.columns) == ["hour_sin", "hour_cos"]

    def test_periodicity(self):
        """Hour 0 and hour 24 are the same point on the circle."""
        result = cyclical_encode(pd.Series([0, 24], name="hour"), period=24)
        np.testing.assert_allclose(result.iloc[0], result.iloc[1], atol=1e-10)

    def test_range(self):
        """sin and cos stay in [-1, 1]."""
        result = cyclical_encode(pd.Series(np.linspace(0, 100, 500), name="h"), period=24)
        assert result.to_numpy().max() <= 1.0 + 1e-12
        assert result.to_numpy().min() >= -1.0 - 1e-12

    def test_neighbours_stay_close(self):
        """23:00 is as close to 00:00 as 01:00 is: no artificial jump at midnight."""
        result = cyclical_encode(pd.Series([23, 0, 1], name="h"), period=24).to_numpy()
        before, after = result[0] - result[1], result[2] - result[1]
        assert np.linalg.norm(before) == pytest.approx(np.linalg.norm(after))


class TestFrequencyEncode:
    def test_shares(self):
        """Each value becomes its share of the rows."""
        s = pd.Series(["a", "b", "a", "c"])
        result = frequency_encode(s, normalize=True)
        assert result.tolist() == [0.5, 0.25, 0.5, 0.25]

    def test_counts_and_no_nan(self):
        """Counts when not normalised; never NaN, even for missing values."""
        result = frequency_encode(pd.Series(["x", "y", "x", None]), normalize=False)
        assert result.isna().sum() == 0
        assert result.tolist() == [2.0, 1.0, 2.0, 1.0]

    def test_encoder_uses_training_frequencies(self):
        """At prediction time, a category gets its training share; an unseen one gets 0."""
        encoder = FrequencyEncoder().fit(pd.DataFrame({"c": ["a", "a", "b", "b"]}))
        out = encoder.transform(pd.DataFrame({"c": ["a", "zzz"]}))
        assert out[:, 0].tolist() == [0.5, 0.0]


class TestDaysSince:
    def test_days(self):
        """Whole days to the reference date; later dates give smaller numbers."""
        stamps = pd.Series(
            pd.to_datetime(["2026-06-30 00:00", "2026-06-01 12:00"]), name="signup_at"
        )
        result = days_since(stamps, "2026-07-01")
        assert result.tolist() == [1.0, 29.5]
        assert result.name == "signup_at_days_since"

    def test_date_features_shape_and_names(self):
        """Five features per timestamp column, named for the column."""
        frame = pd.DataFrame({"t": pd.to_datetime(["2026-01-01 06:00", "2026-01-02 18:00"])})
        transformer = DateFeatures(reference="2026-02-01").fit(frame)
        assert transformer.transform(frame).shape == (2, 5)
        assert transformer.get_feature_names_out()[-1] == "t_days_since"
