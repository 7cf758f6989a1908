"""Permutation importance ranks what the model uses; the card is filled from measured values."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from {{ cookiecutter.package }}.reports.model_card import limitations, permutation_importances


def test_importance_ranks_the_signal_above_noise():
    """A column the label depends on outranks one it does not; noise costs ~nothing."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"noise": rng.normal(size=3000), "signal": rng.normal(size=3000)})
    y = (X["signal"] + 0.3 * rng.normal(size=3000) > 0).astype(int).to_numpy()
    model = LogisticRegression().fit(X, y)
    ranked = permutation_importances(model, X, y, seed=1)
    assert [r["feature"] for r in ranked] == ["signal", "noise"]
    assert ranked[0]["auc_drop"] > 0.3
    assert abs(ranked[1]["auc_drop"]) < 0.01


def test_limitations_are_read_off_the_numbers():
    """Unjudged slices, wide fairness intervals and failed invariances become limitations."""
    entry = {"value": 0.84, "low": 0.82, "high": 0.86}
    metrics = {
        "metrics": {"roc_auc": entry},
        "slices": {"tiny": {"judged": False}, "big": {"judged": True}},
        "fairness": {"age": {"disparate_impact": {"value": 0.9, "low": 0.6, "high": 1.1}}},
        "invariances": {"price_up": {"share": 0.5, "min_share": 0.9}},
    }
    meta = {"rows": {"train": 100}, "contract": "demo"}
    text = "\n".join(limitations(metrics, meta))
    assert "tiny" in text
    assert "big" not in text
    assert "Disparate impact on `age`" in text
    assert "price_up" in text
