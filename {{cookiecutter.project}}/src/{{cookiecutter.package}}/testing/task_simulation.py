"""Simulated decisions of each task: the paired promotion test, its refusal, the drop alarm.

A scenario is a large finite population of rows, each with a target and both models'
predictions; a simulated holdout is rows drawn from it with replacement. The true improvement
is then exactly known (the population's mean per-row difference, or its AUC difference for
binary), so a null edge is exact: `min_delta` set to the true improvement. The delayed-label
alarm (`realised_performance`) is simulated the same way: an evaluation and later labels drawn
independently from one population. The calibration test and `bench/bench_tasks.py` both run
these; nothing here is used in production.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, softmax

from .. import stats
from ..tasks import TASKS, Task, realised_performance
from ..tasks.paired_loss import detectability_refusal

__all__ = [
    "DropRates",
    "Population",
    "Rates",
    "champion_noise_for",
    "drop_rates",
    "population",
    "promotion_rates",
    "true_improvement",
]

Floats = NDArray[np.float64]
POPULATION_ROWS = 100_000
CLASSES = 4
CHALLENGER_NOISE = 0.5  # the challenger's noise (regression: error sd; else logit noise sd)


@dataclass(frozen=True)
class Population:
    """A finite population of rows: target, challenger's and champion's predictions."""

    task: Task
    y: NDArray[np.generic]
    challenger: Floats
    champion: Floats


@dataclass(frozen=True)
class Rates:
    """Outcomes of simulated comparisons, each share with its Monte Carlo standard error."""

    comparisons: int
    promoted: float
    promoted_se: float
    refused: float
    mean_mde: float  # mean minimum detectable delta of the holdouts (compared metric's units)
    mean_se: float  # mean standard error of the observed improvement


def population(
    task: Task, champion_noise: float, seed: int, tails: str = "normal", rows: int = POPULATION_ROWS
) -> Population:
    """Draw a population where the champion's noise is `champion_noise`, the challenger's 0.5.

    Regression: errors share half their variance between the models (rows hard for one are
    hard for the other), with normal or Student t(5) tails. Classification: both models see
    the true logits plus their own noise. The same seed gives the same draws for any noise, so
    improvement grows smoothly with `champion_noise`.
    """
    rng = np.random.default_rng(seed)

    def unit(size: tuple[int, ...]) -> Floats:
        if tails == "normal":
            return rng.standard_normal(size)
        if tails == "t5":
            draws: Floats = rng.standard_t(5, size) / math.sqrt(5 / 3)  # unit variance
            return draws
        raise ValueError(f"tails must be 'normal' or 't5'; got {tails!r}")

    if task == "regression":
        y = 50.0 + 10.0 * rng.standard_normal(rows)
        shared, own1, own2 = unit((rows,)), unit((rows,)), unit((rows,))
        noise1 = math.sqrt(0.5) * (shared + own1)
        noise2 = math.sqrt(0.5) * (shared + own2)
        return Population(task, y, y + CHALLENGER_NOISE * noise1, y + champion_noise * noise2)
    if task == "multiclass":
        logits = 1.5 * rng.standard_normal((rows, CLASSES))
        u = rng.random(rows)[:, None]
        truth = softmax(logits, axis=1)
        y = (u > truth.cumsum(axis=1)).sum(axis=1).clip(0, CLASSES - 1)
        own1, own2 = unit((rows, CLASSES)), unit((rows, CLASSES))
        challenger = softmax(logits + CHALLENGER_NOISE * own1, axis=1)
        return Population(task, y, challenger, softmax(logits + champion_noise * own2, axis=1))
    if task == "binary":
        logit = -1.0 + 2.0 * rng.standard_normal(rows)
        y = (rng.random(rows) < expit(logit)).astype(np.int64)
        own1, own2 = unit((rows,)), unit((rows,))
        challenger = expit(logit + 2 * CHALLENGER_NOISE * own1)
        return Population(task, y, challenger, expit(logit + 2 * champion_noise * own2))
    raise ValueError(f"task must be one of {sorted(TASKS)}; got {task!r}")


def true_improvement(pop: Population) -> float:
    """The challenger's true improvement on the population, in the paired test's units."""
    if pop.task == "binary":
        return stats.roc_auc(pop.y, pop.challenger) - stats.roc_auc(pop.y, pop.champion)
    loss = TASKS[pop.task].row_loss
    return float((loss(pop.y, pop.champion) - loss(pop.y, pop.challenger)).mean())


def champion_noise_for(
    task: Task,
    improvement: float,
    seed: int,
    tails: str = "normal",
    rows: int = POPULATION_ROWS,
) -> float:
    """The champion noise at which the challenger's true improvement is `improvement`."""
    low, high = CHALLENGER_NOISE, 8 * CHALLENGER_NOISE + 4

    def gain(noise: float) -> float:
        return true_improvement(population(task, noise, seed, tails, rows))

    if not gain(low) <= improvement <= gain(high):
        raise ValueError(f"improvement {improvement} is out of reach for {task}")
    for _ in range(40):  # improvement grows with the champion's noise
        mid = (low + high) / 2
        low, high = (mid, high) if gain(mid) < improvement else (low, mid)
    return (low + high) / 2


def promotion_rates(
    pop: Population,
    rows: int,
    comparisons: int,
    min_delta: float,
    seed: int,
    alpha: float = 0.05,
    max_detectable_delta: float = math.inf,
) -> Rates:
    """Run `comparisons` paired tests on holdouts of `rows` drawn from the population.

    Promoted means what promotion does: significant and not refused for a holdout too small
    to detect `max_detectable_delta`.
    """
    test = TASKS[pop.task].paired_test
    rng = np.random.default_rng(seed)
    promoted = refused = 0
    mdes, ses = [], []
    size = pop.challenger.shape[0]
    for _ in range(comparisons):
        idx = rng.integers(0, size, rows)
        result = test(
            pop.y[idx], pop.challenger[idx], pop.champion[idx], min_delta=min_delta, alpha=alpha
        )
        refusal = detectability_refusal(result, max_detectable_delta)
        refused += refusal is not None
        promoted += refusal is None and result.significant
        mdes.append(stats.minimum_detectable_delta(result.se, alpha))
        ses.append(result.se)
    share = promoted / comparisons
    return Rates(
        comparisons=comparisons,
        promoted=share,
        promoted_se=math.sqrt(share * (1 - share) / comparisons),
        refused=refused / comparisons,
        mean_mde=float(np.mean(mdes)),
        mean_se=float(np.mean(ses)),
    )


@dataclass(frozen=True)
class DropRates:
    """How often delayed labels raised a drop, with its Monte Carlo standard error."""

    comparisons: int
    dropped: float
    dropped_se: float
    true_drop: float  # how much worse the realised model truly is, in the headline's units


def _headline(pop: Population, predictions: Floats) -> float:
    task = TASKS[pop.task]
    metrics = task.metrics(pop.y, predictions, (), level=0.5, resamples=1, seed=0)
    sign = 1.0 if task.higher_is_better(task.headline) else -1.0
    return sign * metrics[task.headline].value


def drop_rates(
    pop: Population,
    holdout_rows: int,
    label_rows: int,
    comparisons: int,
    seed: int,
    degraded: bool = False,
    alpha: float = 0.05,
    resamples: int = 200,
) -> DropRates:
    """Evaluate the challenger on one sample, judge delayed labels on another, many times.

    The labelled rows are scored by the challenger itself (no true drop: any alarm is false)
    or, with `degraded`, by the champion's predictions (a true drop the alarm should catch).
    """
    rng = np.random.default_rng(seed)
    size = pop.challenger.shape[0]
    realised_by = pop.champion if degraded else pop.challenger
    headline = TASKS[pop.task].headline
    dropped = 0
    for i in range(comparisons):
        held, labelled = rng.integers(0, size, holdout_rows), rng.integers(0, size, label_rows)
        evaluated = TASKS[pop.task].metrics(
            pop.y[held], pop.challenger[held], (), level=0.95, resamples=resamples, seed=i
        )[headline]
        judged = realised_performance(
            pop.task,
            pop.y[labelled],
            realised_by[labelled],
            evaluated,
            alpha=alpha,
            resamples=resamples,
            seed=i,
        )
        dropped += judged["status"] == "drop"
    share = dropped / comparisons
    true_drop = _headline(pop, pop.challenger) - _headline(pop, realised_by)
    return DropRates(comparisons, share, math.sqrt(share * (1 - share) / comparisons), true_drop)
