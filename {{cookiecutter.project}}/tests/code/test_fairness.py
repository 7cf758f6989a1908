"""Fairness measures: exact on the data, with bootstrap intervals around them."""

import numpy as np
import pandas as pd

from {{ cookiecutter.package }}.evaluate import fairness
from tests.tiny_contract import tiny_contract

SETTINGS = {"threshold": 0.5, "bootstrap_resamples": 300, "bootstrap_seed": 1, "level": 0.95}


def data(rows=3000, seed=0, bias=0.0):
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    y = (rng.random(rows) < 0.3).astype(int)
    scores = np.clip(0.35 * y + rng.random(rows) * 0.7 + bias * (plan == "pro"), 0, 1)
    return pd.DataFrame({"plan": plan}), y, scores


def contract_with_protected_plan():
    contract = tiny_contract()
    return contract.model_copy(update={"protected": ("plan",)})


def test_point_estimates_are_the_plain_rates():
    """The reported value is min/max of the groups' positive rates, computed directly."""
    frame, y, scores = data()
    report = fairness(frame, y, scores, contract_with_protected_plan(), SETTINGS)["plan"]
    rates = [(scores[frame["plan"] == g] >= 0.5).mean() for g in ("basic", "plus", "pro")]
    assert np.isclose(report["disparate_impact"]["value"], min(rates) / max(rates))
    assert set(report["groups"]) == {"basic", "plus", "pro"}


def test_intervals_bracket_the_estimate_and_see_real_bias():
    """Each interval contains its estimate; a favoured group pulls the whole interval down."""
    frame, y, scores = data()
    fair = fairness(frame, y, scores, contract_with_protected_plan(), SETTINGS)["plan"]
    for name in ("disparate_impact", "equalized_odds_gap"):
        entry = fair[name]
        assert entry["low"] <= entry["value"] <= entry["high"]
    frame, y, scores = data(bias=0.3)
    biased = fairness(frame, y, scores, contract_with_protected_plan(), SETTINGS)["plan"]
    assert biased["disparate_impact"]["high"] < fair["disparate_impact"]["low"]
