"""The drafted `beat_baseline` rule, driven by simulation: its error rates on our own code."""

from __future__ import annotations

import numpy as np

from {{ cookiecutter.package }} import stats
from {{ cookiecutter.package }}.draft_gates import POWER, baseline_rule

LEVEL, TEST_SIZE, ROWS, REPLICATES = 0.95, 0.3, 4000, 300


def table(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rare positives driven by one signal; the best feature and an equally good model each see
    it through their own noise (the same AUC, correlated as a model and a feature are)."""
    signal = rng.normal(0, 1, rows)
    y = (signal + rng.normal(0, 0.35, rows) > 1.9).astype(np.int64)
    feature = signal + rng.normal(0, 0.3, rows)
    model = signal + rng.normal(0, 0.3, rows)
    return y, feature, model


def pass_rate(margin: float, rng: np.random.Generator) -> float:
    """How often the gate passes an equally good model, judged as `gate` judges it: the lower
    end of evaluate's paired DeLong interval of the gain above -margin."""
    passed = 0
    for _ in range(REPLICATES):
        y, feature, model = table(rng, int(ROWS * TEST_SIZE))
        gain = stats.delong_paired_test(y, model, feature, alpha=(1 - LEVEL) / 2, level=LEVEL)
        passed += gain.low > 0.0 - margin
    return passed / REPLICATES


def test_a_good_model_passes_the_drafted_gate_where_superiority_refuses_it():
    """One feature at ROC AUC ~0.96 with ~100 holdout positives (the credit-default case): the
    draft asks for non-inferiority, under which a model as good as the feature passes at least
    as often as the drafted power; demanding a gain would refuse nearly every such model."""
    rng = np.random.default_rng(20261207)
    y, feature, _ = table(rng, ROWS)
    assert stats.roc_auc(y, feature) > 0.93
    detectable, margin = baseline_rule(y, feature, TEST_SIZE, LEVEL)
    assert margin > 0, "a holdout this small cannot show a gain over such a feature"
    assert margin >= detectable
    assert pass_rate(margin, rng) >= POWER - 0.05  # 300 replicates: +/- 0.05 at 2 SE
    assert pass_rate(0.0, rng) <= 0.05  # superiority: a good model refused ~97.5% of the time


def test_a_feature_that_leaves_room_keeps_superiority():
    """A weak best feature (ROC AUC ~0.7): the holdout can show a gain, so one is required."""
    rng = np.random.default_rng(7)
    signal = rng.normal(0, 1, ROWS)
    y = (signal + rng.normal(0, 1.0, ROWS) > 0.8).astype(np.int64)
    feature = signal + rng.normal(0, 1.5, ROWS)
    assert 0.6 < stats.roc_auc(y, feature) < 0.8
    detectable, margin = baseline_rule(y, feature, TEST_SIZE, LEVEL)
    assert margin == 0.0
    assert 0 < detectable < (1 - stats.roc_auc(y, feature)) / 3
