"""The single-feature baseline and the lift that the drafted gates compare a model with."""

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package }} import stats
from {{ cookiecutter.package }}.config import EvaluateConfig
from {{ cookiecutter.package }}.contract import parse_contract
from {{ cookiecutter.package }}.evaluation import baseline, lift, single_feature_scores

ROWS = 400


def contract():
    return parse_contract(
        {
            "name": "t",
            "id": "id",
            "target": "y",
            "columns": {
                "id": {"type": "string"},
                "y": {"type": "integer", "values": [0, 1]},
                "noise": {"type": "float"},
                "flag": {"type": "boolean"},
                "store": {"type": "category", "encoding": "frequency", "values": ["a", "b"]},
                "at": {"type": "datetime", "reference": "2025-01-01"},
            },
        }
    )


def frame(y: np.ndarray, flag_matches: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    agree = rng.random(ROWS) < flag_matches
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(ROWS)],
            "y": y,
            "noise": rng.normal(size=ROWS),
            "flag": np.where(agree, y == 1, y == 0).astype(str),  # conformed booleans are text
            "store": np.where(y == 1, "a", "b"),  # frequency-encoded: never a baseline
            "at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, ROWS), "D"),
        }
    )


def test_the_most_telling_usable_feature_is_the_baseline():
    """A boolean that agrees with the label 90% of the time beats noise and dates; a
    frequency-encoded category, which would memorise labels, is never used."""
    y = (np.arange(ROWS) % 4 == 0).astype(int)
    name, scores = single_feature_scores(frame(y, 0.9), y, contract())
    assert name == "flag"
    assert stats.roc_auc(y, scores) == pytest.approx(0.9, abs=0.05)


def test_no_usable_feature_means_the_prior():
    """With only constant columns the baseline is the prior: a constant score, AUC 0.5."""
    y = (np.arange(ROWS) % 2).astype(int)
    table = frame(y, 0.5).assign(noise=1.0, flag="True", at=pd.Timestamp("2024-01-01"))
    name, scores = single_feature_scores(table, y, contract())
    assert name == "prior"
    assert np.ptp(scores) == 0


def test_the_gain_is_paired_on_the_same_rows():
    """The model's gain over the baseline is the AUC difference, with a DeLong interval around it."""
    y = (np.arange(ROWS) % 4 == 0).astype(int)
    table = frame(y, 0.8)
    model = y + np.random.default_rng(1).normal(0, 0.6, ROWS)
    entry = baseline(table, y, model, contract(), EvaluateConfig(level=0.95))
    _, reference = single_feature_scores(table, y, contract())
    gain = entry["auc_gain"]
    assert gain["value"] == pytest.approx(stats.roc_auc(y, model) - stats.roc_auc(y, reference))
    assert gain["low"] < gain["value"] < gain["high"]
    assert entry["name"] == "single feature: flag"


def test_lift_is_precision_over_prevalence():
    """Lift scales the precision estimate and both interval ends by the same prevalence."""
    out = lift({"value": 0.3, "low": 0.2, "high": 0.4, "method": "bootstrap"}, 0.05)
    assert out["value"] == pytest.approx(6.0)
    assert (out["low"], out["high"]) == (pytest.approx(4.0), pytest.approx(8.0))
