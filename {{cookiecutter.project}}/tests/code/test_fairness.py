"""Fairness measures: exact on the data, with bootstrap intervals around them."""

import numpy as np
import pandas as pd

from {{ cookiecutter.package }}.config import EvaluateConfig
from {{ cookiecutter.package }}.evaluation import fairness
from tests.tiny_contract import tiny_contract

SETTINGS = EvaluateConfig(threshold=0.5, bootstrap_resamples=300, bootstrap_seed=1, level=0.95)


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


def test_whole_interval_mode_fails_a_model_at_the_bound_near_alpha():
    """Simulated: a model whose true disparate impact is exactly the bound (0.8) on a small group.

    whole_interval fails it about (1 - level) / 2 of the time, as its statistics promise;
    the point estimate fails it about half the time, lower_bound nearly always.
    """
    from {{ cookiecutter.package }}.config import GatesConfig
    from {{ cookiecutter.package }}.pipeline.gate import min_disparate_impact

    rng = np.random.default_rng(7)
    contract = tiny_contract().model_copy(update={"protected": ("plan",)})
    settings = SETTINGS.model_copy(update={"bootstrap_resamples": 400})
    runs, failures = 300, {"point": 0, "lower_bound": 0, "whole_interval": 0}
    for run in range(runs):
        plan = np.array(["basic"] * 400 + ["pro"] * 80)
        rate = np.where(plan == "basic", 0.5, 0.4)  # true disparate impact 0.4 / 0.5 = 0.8
        scores = (rng.random(len(plan)) < rate).astype(float)
        y = (rng.random(len(plan)) < 0.3).astype(int)
        report = fairness(
            pd.DataFrame({"plan": plan}),
            y,
            scores,
            contract,
            settings.model_copy(update={"bootstrap_seed": run}),
        )
        for mode in failures:
            gates = GatesConfig(judge_on=mode)
            failures[mode] += not all(
                r.passed for r in min_disparate_impact(report_of(report), gates)
            )
    alpha = 1 - SETTINGS.level
    assert failures["whole_interval"] / runs <= alpha
    assert 0.3 <= failures["point"] / runs <= 0.7
    assert failures["lower_bound"] / runs >= 0.9


def report_of(fairness_report):
    """The part of metrics.json this check reads: fairness, typed as evaluate writes it."""
    from {{ cookiecutter.package }}.records import Fairness, Metrics

    typed = {name: Fairness.model_validate(entry) for name, entry in fairness_report.items()}
    return Metrics.model_construct(fairness=typed)
