"""Tests for the paired per-row loss test and the refusal of holdouts too small to decide."""

import math

import numpy as np
import pytest
from scipy.stats import ttest_rel

from {{ cookiecutter.package }}.stats import minimum_detectable_delta
from {{ cookiecutter.package }}.tasks.paired_loss import detectability_refusal, paired_loss_test


def _losses(seed: int, n: int = 200, gain: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    champion = rng.exponential(1.0, n)
    return champion - gain + 0.3 * rng.standard_normal(n), champion


def test_p_value_is_the_one_sided_paired_t_test():
    """With min_delta 0 the p-value is scipy's one-sided paired t-test (champion > challenger)."""
    challenger, champion = _losses(1)
    result = paired_loss_test(challenger, champion, "squared_error")
    expected = ttest_rel(champion, challenger, alternative="greater")
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.diff == pytest.approx(champion.mean() - challenger.mean())
    assert (result.metric, result.method, result.n) == ("squared_error", "paired t", 200)


def test_min_delta_shifts_the_null():
    """Testing diff > min_delta is testing the shifted differences against zero."""
    challenger, champion = _losses(2)
    result = paired_loss_test(challenger, champion, "log_loss", min_delta=0.05)
    shifted = ttest_rel(champion - 0.05, challenger, alternative="greater")
    assert result.p_value == pytest.approx(shifted.pvalue)


def test_default_interval_agrees_with_the_test():
    """At level 1 - 2 alpha, the interval's lower end is above min_delta exactly when significant."""
    for seed in range(20):
        challenger, champion = _losses(seed, gain=0.03)
        result = paired_loss_test(challenger, champion, "absolute_error", 0.01, alpha=0.05)
        assert result.significant == (result.low > 0.01)


def test_identical_models_are_never_promoted():
    """No difference on any row: p is 1 and the interval is the single point 0."""
    losses = np.linspace(0.1, 2.0, 50)
    result = paired_loss_test(losses, losses, "squared_error")
    assert (result.p_value, result.low, result.high, result.se) == (1.0, 0.0, 0.0, 0.0)
    assert not result.significant


def test_a_constant_improvement_above_min_delta_is_certain():
    """Every row better by 0.25 > min_delta 0.1: no sampling doubt, p is 0."""
    losses = np.arange(1, 51) / 4  # exact in binary, so every difference is exactly 0.25
    result = paired_loss_test(losses - 0.25, losses, "squared_error", min_delta=0.1)
    assert result.p_value == 0.0
    assert math.isinf(result.statistic)


def test_refusal_when_the_holdout_cannot_detect_the_delta():
    """Refused exactly when the minimum detectable delta exceeds max_detectable_delta."""
    challenger, champion = _losses(3, n=40)
    result = paired_loss_test(challenger, champion, "squared_error")
    mde = minimum_detectable_delta(result.se, result.alpha)
    reason = detectability_refusal(result, max_detectable_delta=mde * 0.99)
    assert reason is not None
    assert "holdout too small" in reason
    assert "squared_error" in reason
    assert detectability_refusal(result, max_detectable_delta=mde * 1.01) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"challenger_loss": [1.0]}, "at least 2 rows"),
        ({"champion_loss": [1.0, 2.0]}, "champion_loss has 2 rows"),
        ({"challenger_loss": [1.0, np.nan, 2.0]}, "NaN or infinite"),
        ({"min_delta": math.inf}, "min_delta"),
        ({"alpha": 0.5}, "alpha"),
        ({"level": 1.0}, "level"),
    ],
)
def test_bad_input_names_what_is_wrong(kwargs, message):
    """Misuse fails fast with a ValueError naming the argument."""
    arguments = {"challenger_loss": [1.0, 2.0, 3.0], "champion_loss": [1.0, 2.5, 3.5]}
    arguments |= kwargs
    with pytest.raises(ValueError, match=message):
        paired_loss_test(metric="squared_error", **arguments)
