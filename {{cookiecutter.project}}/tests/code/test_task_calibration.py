"""Every task's statistical decisions keep their level, by simulation.

The paired champion/challenger test: each comparison draws a holdout from a finite population
whose true improvement is known exactly, then runs the task's own paired test and the
promotion's refusal. The delayed-label drop alarm: an evaluation and later labels drawn
independently from one population. `bench/bench_tasks.py` in the template runs the same
scenarios with ten times the comparisons and reports power too.
"""

import math

import pytest

from {{ cookiecutter.package }}.testing.task_simulation import (
    CHALLENGER_NOISE,
    champion_noise_for,
    drop_rates,
    population,
    promotion_rates,
    true_improvement,
)

ALPHA = 0.05
COMPARISONS = 400
ROWS = 300
POPULATION = 20_000
# (task, tails, min_delta): regression's in mean squared error (the challenger's is 0.25),
# multiclass's in log loss (nats), binary's in ROC AUC.
SCENARIOS = [
    ("regression", "normal", 0.025),
    ("regression", "t5", 0.025),
    ("multiclass", "normal", 0.01),
    ("binary", "normal", 0.005),
]
# The promotion rate of a level-alpha test over COMPARISONS independent comparisons lies within
# three binomial standard errors of alpha unless the level is off.
TOLERANCE = 3 * math.sqrt(ALPHA * (1 - ALPHA) / COMPARISONS)


def _edge(task, tails, min_delta, seed):
    noise = champion_noise_for(task, min_delta, seed, tails, POPULATION)
    return population(task, noise, seed, tails, POPULATION)


@pytest.mark.parametrize(("task", "tails", "min_delta"), SCENARIOS)
def test_false_promotion_at_the_null_edge_is_alpha(task, tails, min_delta):
    """A challenger truly better by exactly min_delta is promoted at rate alpha, no more."""
    pop = _edge(task, tails, min_delta, seed=11)
    truth = true_improvement(pop)
    assert truth == pytest.approx(min_delta, rel=1e-3)
    rates = promotion_rates(pop, ROWS, COMPARISONS, truth, seed=12, alpha=ALPHA)
    assert abs(rates.promoted - ALPHA) <= TOLERANCE, rates


@pytest.mark.parametrize("task", ["regression", "multiclass", "binary"])
def test_two_equal_models_are_promoted_at_alpha(task):
    """Equal models (the same noise, exchangeable) are promoted at rate alpha at min_delta = truth."""
    pop = population(task, CHALLENGER_NOISE, 21, rows=POPULATION)
    rates = promotion_rates(pop, ROWS, COMPARISONS, true_improvement(pop), seed=22, alpha=ALPHA)
    assert abs(rates.promoted - ALPHA) <= TOLERANCE, rates


@pytest.mark.parametrize(("task", "tails", "min_delta"), SCENARIOS)
def test_an_improvement_twice_the_detectable_delta_is_found(task, tails, min_delta):
    """Two minimum detectable deltas beyond min_delta: the normal theory's power is 0.99."""
    edge = promotion_rates(_edge(task, tails, min_delta, 31), ROWS, 100, min_delta, seed=32)
    target = min_delta + 2 * edge.mean_mde
    pop = population(
        task, champion_noise_for(task, target, 31, tails, POPULATION), 31, tails, POPULATION
    )
    rates = promotion_rates(pop, ROWS, 100, min_delta, seed=33, alpha=ALPHA)
    assert rates.promoted >= 0.85, rates


@pytest.mark.parametrize("task", ["regression", "multiclass", "binary"])
def test_a_holdout_too_small_for_the_delta_is_refused_not_decided(task):
    """Holdouts whose detectable delta is above the limit are refused and never promote."""
    pop = population(task, 2.0, 41, rows=POPULATION)  # a far better challenger
    full = promotion_rates(pop, ROWS, 50, 0.0, seed=42)
    limit = full.mean_mde  # what ROWS rows can detect; 30 rows detect about 3x less finely
    small = promotion_rates(pop, 30, 50, 0.0, seed=43, max_detectable_delta=limit)
    assert small.refused >= 0.9
    assert small.promoted <= 1 - small.refused


DROP_COMPARISONS = 200
DROP_TOLERANCE = 3 * math.sqrt(ALPHA * (1 - ALPHA) / DROP_COMPARISONS)


@pytest.mark.parametrize("task", ["regression", "multiclass", "binary"])
def test_delayed_labels_of_an_unchanged_model_raise_a_drop_at_most_at_alpha(task):
    """Labels from the model that was evaluated (no true drop) alarm at rate alpha or less:
    the rule compares with the evaluated interval's far end, so it errs towards quiet."""
    pop = population(task, CHALLENGER_NOISE, 51, rows=POPULATION)
    rates = drop_rates(pop, ROWS, ROWS, DROP_COMPARISONS, seed=52, alpha=ALPHA)
    assert rates.true_drop == 0.0
    assert rates.dropped <= ALPHA + DROP_TOLERANCE, rates


@pytest.mark.parametrize("task", ["regression", "multiclass", "binary"])
def test_delayed_labels_of_a_much_worse_model_raise_a_drop(task):
    """A model far worse than the one evaluated is caught almost every time."""
    pop = population(task, 3.0, 61, rows=POPULATION)
    rates = drop_rates(pop, ROWS, ROWS, 40, seed=62, degraded=True, alpha=ALPHA)
    assert rates.true_drop > 0
    assert rates.dropped >= 0.9, rates
