"""Tests for the table of per-task statistics: every stage looks its task up, none branches."""

from typing import get_args

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, softmax
from sklearn.metrics import log_loss

from {{ cookiecutter.package }}.stats import Interval
from {{ cookiecutter.package }}.tasks import (
    TASKS,
    ShadowRule,
    Task,
    baseline_report,
    realised_performance,
    slice_report,
)
from {{ cookiecutter.package }}.tasks.outputs import answers, read_back

N = 400
CLASSES = {"binary": (0, 1), "regression": (), "multiclass": ("low", "medium", "high")}


def _case(task: str, seed: int, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """A target, a prediction of it in the task's shape (noisier with `noise`), and features."""
    rng = np.random.default_rng(seed)
    # Two features matter, "signal" most: the best single feature is a real but beatable bar.
    signal, other = rng.standard_normal(N), rng.standard_normal(N)
    features = pd.DataFrame({"signal": signal, "other": other})
    latent = 2 * signal + 1.5 * other
    if task == "regression":
        y = 10 + 1.5 * latent + rng.standard_normal(N)
        return y, y + noise * 3 * rng.standard_normal(N), features
    if task == "binary":
        y = (rng.random(N) < expit(latent)).astype(np.int64)
        return y, expit(latent + noise * 2 * rng.standard_normal(N)), features
    logits = np.column_stack([latent, -latent, rng.standard_normal(N)])
    truth = softmax(logits, axis=1)
    y = (rng.random(N)[:, None] > truth.cumsum(axis=1)).sum(axis=1).clip(0, 2)
    return y, softmax(logits + noise * 2 * rng.standard_normal((N, 3)), axis=1), features


def test_the_table_holds_every_task_of_the_configuration():
    """The table's keys are exactly the task names the configuration allows."""
    assert set(TASKS) == set(get_args(Task))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_metrics_include_the_headline_with_an_interval(task):
    """Each task's metrics carry its headline, each with an interval around its point."""
    y, prediction, _ = _case(task, 1)
    stats = TASKS[task]
    metrics = stats.metrics(y, prediction, CLASSES[task], level=0.95, resamples=200, seed=0)
    assert stats.headline in metrics
    for name, interval in metrics.items():
        assert interval.low <= interval.value <= interval.high, name
        assert isinstance(stats.higher_is_better(name), bool)


def test_headline_directions():
    """Regression's RMSE is lower-is-better; binary's AUC and multiclass's macro-F1 higher."""
    directions = {task: s.higher_is_better(s.headline) for task, s in TASKS.items()}
    assert directions == {"binary": True, "regression": False, "multiclass": True}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_paired_test_promotes_a_clearly_better_challenger_only(task):
    """A much less noisy challenger wins on the same rows; the reverse never does."""
    y, better, _ = _case(task, 2, noise=0.2)
    _, worse, _ = _case(task, 2, noise=1.5)
    test = TASKS[task].paired_test
    won = test(y, better, worse, min_delta=0.0, alpha=0.05)
    lost = test(y, worse, better, min_delta=0.0, alpha=0.05)
    assert won.significant
    assert not lost.significant
    assert won.metric == TASKS[task].compared
    assert won.diff > 0 > lost.diff


def test_binary_row_loss_is_the_log_loss():
    """Binary's per-row loss averages to scikit-learn's log loss."""
    y, prediction, _ = _case("binary", 3)
    assert TASKS["binary"].row_loss(y, prediction).mean() == pytest.approx(log_loss(y, prediction))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_baselines_have_the_prediction_shape(task):
    """Constants and the single feature predict every row in the task's prediction shape."""
    y, prediction, features = _case(task, 4)
    stats = TASKS[task]
    for name, constant in stats.baselines(y, N, CLASSES[task]).items():
        assert constant.shape == prediction.shape, name
    name, reference = stats.single_feature(features, y, CLASSES[task])
    assert name == "signal"
    assert reference.shape == prediction.shape


@pytest.mark.parametrize("task", sorted(TASKS))
def test_baseline_report_shows_the_gain_over_the_best_single_feature(task):
    """A good model's paired gain over the best single feature has its interval above zero."""
    y, prediction, features = _case(task, 5, noise=0.05)
    report = baseline_report(task, y, prediction, y, features, CLASSES[task], resamples=100, seed=1)
    assert report["single_feature"]["name"] == "signal"
    assert report["gain"]["metric"] == TASKS[task].compared
    assert report["gain"]["low"] > 0
    assert report["headline"] == TASKS[task].headline
    assert TASKS[task].headline in report["single_feature"]
    assert set(report["constants"]) == set(TASKS[task].baselines(y, N, CLASSES[task]))


def test_too_small_names_the_short_class_or_the_row_count():
    """A holdout that cannot compare models says why, in the task's terms."""
    assert "2 positives" in TASKS["binary"].too_small([1, 1, 0, 0, 0], 3, (0, 1))
    assert TASKS["binary"].too_small([1, 1, 0, 0], 2, (0, 1)) is None
    assert "5 rows (need 10)" in TASKS["regression"].too_small([1.0] * 5, 10, ())
    short = TASKS["multiclass"].too_small([0, 0, 1, 2, 2], 2, ("a", "b", "c"))
    assert short is not None
    assert "b (1)" in short
    assert TASKS["multiclass"].too_small([0, 0, 1, 1, 2, 2], 2, ("a", "b", "c")) is None


def test_disagreement_per_task():
    """Labels for classification (binary at 0.5, multiclass by argmax), tolerance for values."""
    rule = ShadowRule(relative_tolerance=0.1)
    assert TASKS["binary"].disagreement([0.2, 0.7], [0.4, 0.4], rule, 0.95).disagreeing == 1
    proba = [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]
    other = [[0.5, 0.4, 0.1], [0.5, 0.2, 0.3]]
    assert TASKS["multiclass"].disagreement(proba, other, rule, 0.95).disagreeing == 1
    assert TASKS["regression"].disagreement([10.0, 10.0], [10.5, 12.0], rule, 0.95).share == 0.5


@pytest.mark.parametrize("task", sorted(TASKS))
def test_the_shadow_compares_two_servers_answers(task):
    """Answers read back from two servers' records give the task's disagreement."""
    _, primary, _ = _case(task, 10, noise=0.2)
    _, shadow, _ = _case(task, 10, noise=1.5)
    stats = TASKS[task]
    records = [answers(stats.outputs, p, CLASSES[task]) for p in (primary, shadow)]
    read = [read_back(stats.outputs, r, CLASSES[task]) for r in records]
    rule = ShadowRule(relative_tolerance=0.05)
    from_records = stats.disagreement(read[0], read[1], rule, 0.95)
    assert from_records == stats.disagreement(primary, shadow, rule, 0.95)
    assert 0 < from_records.share < 1


@pytest.mark.parametrize("task", sorted(TASKS))
def test_fairness_compares_the_groups_of_a_protected_attribute(task):
    """Each task has one disparity measure (error ratio or recall gap) over the same groups."""
    y, prediction, features = _case(task, 9)
    groups = np.where(features["other"] > 0, "a", "b")
    measure = TASKS[task].fairness(
        y, prediction, groups, CLASSES[task], min_rows=10, level=0.9, resamples=100, seed=0
    )
    assert measure.measure == ("error_ratio" if task == "regression" else "recall_gap")
    assert set(measure.groups) == {"a", "b"}
    assert measure.interval.low <= measure.interval.value <= measure.interval.high


@pytest.mark.parametrize("task", sorted(TASKS))
def test_slice_report_judges_big_slices_and_says_why_not_small_ones(task):
    """A large slice gets the headline with its interval; a small one is kept with its reason."""
    y, prediction, features = _case(task, 11)
    big = features["other"].to_numpy() > -0.5
    small = np.zeros(N, dtype=bool)
    small[:20] = True
    report = slice_report(
        task, y, prediction, {"big": big, "small": small}, CLASSES[task], min_rows=50, resamples=100
    )
    headline = TASKS[task].headline
    assert report["big"]["judged"]
    assert report["big"][headline]["low"] <= report["big"][headline]["value"]
    assert report["small"] == {
        "n": 20,
        "judged": False,
        "reason": "too small to judge: 20 rows (need 50)",
    }


def test_a_slice_missing_a_class_is_not_judged():
    """A multiclass slice with too few rows of some class says which class."""
    y = np.array([0, 1, 2] * 40)
    proba = np.full((120, 3), 1 / 3)
    only_two = y != 2
    only_two[:6] = True  # two rows of class 2
    report = slice_report("multiclass", y, proba, {"s": only_two}, ("a", "b", "c"), min_rows=10)
    assert not report["s"]["judged"]
    assert "c (2)" in report["s"]["reason"]


def test_realised_performance_flags_a_significant_drop_in_a_lower_is_better_metric():
    """A realised RMSE far above the evaluated one is a drop; the same RMSE is not."""
    y, prediction, _ = _case("regression", 6)
    realised = TASKS["regression"].metrics(y, prediction, (), level=0.95, resamples=200, seed=0)
    rmse = realised["rmse"]
    better = Interval(rmse.value / 2, rmse.low / 2, rmse.high / 2, "bootstrap")
    dropped = realised_performance("regression", y, prediction, better, resamples=200)
    assert (dropped["status"], dropped["metric"]) == ("drop", "rmse")
    assert dropped["diff"] == pytest.approx(rmse.value / 2)  # realised minus evaluated
    # For a lower-is-better metric the bound is the realised RMSE's lower one, the limit the
    # evaluated interval's upper end.
    assert dropped["realised_bound"] < rmse.value
    assert dropped["limit"] == pytest.approx(better.high)
    assert "lower bound" in dropped["rule"]
    same = realised_performance("regression", y, prediction, rmse, resamples=200)
    assert same["status"] == "ok"


def test_realised_performance_flags_a_drop_in_a_higher_is_better_metric():
    """A realised macro-F1 far below the evaluated one is a drop; far above is not."""
    y, prediction, _ = _case("multiclass", 7)
    classes = CLASSES["multiclass"]
    high = Interval(0.99, 0.98, 1.0, "bootstrap")
    low = Interval(0.05, 0.0, 0.1, "bootstrap")
    assert (
        realised_performance("multiclass", y, prediction, high, classes, resamples=200)["status"]
        == "drop"
    )
    assert (
        realised_performance("multiclass", y, prediction, low, classes, resamples=200)["status"]
        == "ok"
    )


def test_realised_performance_rejects_an_unknown_metric():
    """Asking for a metric the task does not report names the ones it does."""
    y, prediction, _ = _case("regression", 8)
    evaluated = Interval(1.0, 0.9, 1.1, "bootstrap")
    with pytest.raises(ValueError, match="macro_f1"):
        realised_performance(
            "regression", y, prediction, evaluated, metric="macro_f1", resamples=50
        )
