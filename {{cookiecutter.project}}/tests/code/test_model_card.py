"""Permutation importance ranks what the model uses; the card is filled from measured values."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from {{ cookiecutter.package }}.records import Metrics
from {{ cookiecutter.package }}.reports.model_card import limitations, permutation_importances

from .test_gate import raw_metrics


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
    table = raw_metrics(share=0.5)
    table["fairness"]["group"]["disparate_impact"] = {"value": 0.9, "low": 0.6, "high": 1.1}
    metrics = Metrics.model_validate(table)
    meta = {"rows": {"train": 100}, "contract": "demo"}
    text = "\n".join(limitations(metrics, meta))
    assert "tiny" in text
    assert "big" not in text
    assert "Disparate impact on `group`" in text
    assert "Expected behaviour does not hold: rule" in text
