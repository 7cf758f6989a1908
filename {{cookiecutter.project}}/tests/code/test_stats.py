"""Tests for the statistics behind evaluation intervals and the promotion decision."""

import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)

from {{ cookiecutter.package }} import stats as stats_module
from {{ cookiecutter.package }}.stats import (
    HIGHER_IS_BETTER,
    METRICS,
    accuracy,
    average_precision,
    bootstrap_interval,
    bootstrap_intervals,
    bootstrap_replicates,
    brier_score,
    compare,
    delong_covariance,
    delong_interval,
    delong_paired_test,
    fpr_at_recall,
    minimum_detectable_delta,
    paired_bootstrap_test,
    precision_at_top,
    roc_auc,
    stratified_resample_counts,
)

# pROC's aSAH data set (113 patients with aneurysmal subarachnoid haemorrhage; Robin et al.
# 2011, BMC Bioinformatics 12:77): outcome (P = poor, the positive class), WFNS grade, S100B
# and NDKA. Every pROC value quoted below is reproduced to 1e-9, which also checks this copy.
ASAH_OUTCOME = (
    "GGGGPPGPGGPGPPGGPGPPPGPGGGGGGGGGPGGPPGPPGGGGGGGGGPPGGGPGGGPG"
    "PGGPPPGPPGPPPPGGGPPGPGGGGGGPGGGGGGGGGGGGPPPPPPGGGPGGG"
)
ASAH_WFNS = (
    "111132541252551252252111121211342145414255112411255212512221"
    "51125214524414121421232421451154221113125225552445111"
)
ASAH_S100B = """
0.13 0.14 0.1 0.04 0.13 0.1 0.47 0.16 0.18 0.1 0.12 0.1 0.44 0.71 0.04 0.08 0.49 0.04
0.07 0.33 0.09 0.09 0.07 0.11 0.07 0.17 0.07 0.11 0.13 0.19 0.05 0.16 0.41 0.14 0.34
0.35 0.48 0.09 0.96 0.25 0.5 0.46 0.16 0.07 0.43 0.45 0.11 0.08 0.09 0.86 0.52 0.08 0.06
0.13 2.07 0.1 0.14 0.15 0.07 0.06 0.77 0.05 0.09 0.3 0.03 0.09 0.04 0.23 0.7 0.09 0.27
0.71 0.08 0.26 0.08 0.16 0.09 0.13 0.1 0.08 0.11 0.33 0.11 0.28 0.07 0.1 0.32 0.22 0.07
0.05 0.24 0.38 0.1 0.15 0.08 0.14 0.1 0.07 0.04 0.19 0.56 0.14 0.58 0.32 0.82 0.74 0.15
0.47 0.17 0.44 0.15 0.5 0.48
"""
ASAH_NDKA = """
3.01 8.54 8.09 10.42 17.4 12.75 6.0 13.2 15.54 6.01 15.96 17.86 5.18 8.9 13.41 20.75
11.6 16.11 32.37 54.82 32.41 49.94 40.34 9.47 6.29 12.53 6.54 6.3 80.3 12.8 9.8 9.81
9.85 18.21 5.03 14.04 21.93 8.02 7.42 8.38 6.59 9.63 13.12 7.96 14.34 41.43 7.63 7.06
12.59 13.56 3.87 9.44 7.66 12.98 419.19 27.19 22.27 9.95 21.22 11.73 10.4 58.83 6.39
11.09 12.22 13.67 17.21 22.63 12.9 9.7 21.57 8.23 72.57 15.54 10.51 10.6 14.57 5.19 9.63
4.61 21.48 17.3 12.71 9.44 11.07 19.46 10.83 5.37 11.97 7.75 9.83 10.55 28.49 8.53 12.57
12.9 46.83 11.68 12.67 9.01 9.57 34.06 11.72 14.26 47.61 11.67 24.58 10.33 13.87 15.89
22.43 6.79 13.45
"""


@pytest.fixture(scope="module")
def asah():
    """Return (y, wfns, s100b, ndka) as numpy arrays."""
    y = np.array([c == "P" for c in ASAH_OUTCOME], dtype=int)
    wfns = np.array([float(c) for c in ASAH_WFNS])
    s100b = np.array(ASAH_S100B.split(), dtype=float)
    ndka = np.array(ASAH_NDKA.split(), dtype=float)
    return y, wfns, s100b, ndka


def _random_case(seed, n=None, ties=False):
    """Return labels and probability scores; with ties, scores take only a few values."""
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(3, 400))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    latent = rng.normal(size=n) + y
    scores = 1 / (1 + np.exp(-latent))
    if ties:
        scores = np.round(scores * 8) / 8
    return y, scores


def _two_models(rng, n, challenger_noise, champion_noise):
    """Return labels and two noisy copies of one latent risk (smaller noise = better model)."""
    latent = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * latent))).astype(int)
    challenger = latent + challenger_noise * rng.normal(size=n)
    champion = latent + champion_noise * rng.normal(size=n)
    return y, challenger, champion


# ---------------------------------------------------------------------------------------------
# Point metrics against sklearn and slow references


def _precision_at_top_reference(y, scores, fraction):
    """Precision over the top ceil(fraction * n) rows; the boundary tie shares pro rata."""
    k = math.ceil(round(fraction * len(y), 9))
    threshold = sorted(scores, reverse=True)[k - 1]
    above = [label for label, s in zip(y, scores, strict=True) if s > threshold]
    tied = [label for label, s in zip(y, scores, strict=True) if s == threshold]
    return (sum(above) + (k - len(above)) * sum(tied) / len(tied)) / k


def _fpr_at_recall_reference(y, scores, recall):
    """Smallest false-positive rate over every threshold whose recall reaches `recall`."""
    n_pos, n_neg = sum(y), len(y) - sum(y)
    best = math.inf
    for threshold in set(scores):
        flagged = [label for label, s in zip(y, scores, strict=True) if s >= threshold]
        if sum(flagged) / n_pos >= recall:
            best = min(best, (len(flagged) - sum(flagged)) / n_neg)
    return best


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_point_metrics_match_sklearn(seed, ties):
    """roc_auc, average_precision, brier and accuracy equal sklearn's, tied scores included."""
    y, scores = _random_case(seed, ties=ties)
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert average_precision(y, scores) == pytest.approx(
        average_precision_score(y, scores), abs=1e-12
    )
    assert brier_score(y, scores) == pytest.approx(brier_score_loss(y, scores), abs=1e-12)
    assert accuracy(y, scores) == pytest.approx(accuracy_score(y, scores > 0.5), abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_threshold_metrics_match_slow_references(seed, ties):
    """precision_at_top and fpr_at_recall equal obvious loop implementations, ties included."""
    y, scores = _random_case(100 + seed, ties=ties)
    for fraction in (0.05, 0.1, 0.5, 1.0):
        expected = _precision_at_top_reference(list(y), list(scores), fraction)
        assert precision_at_top(y, scores, fraction) == pytest.approx(expected, abs=1e-12)
    for recall in (0.5, 0.8, 1.0):
        expected = _fpr_at_recall_reference(list(y), list(scores), recall)
        assert fpr_at_recall(y, scores, recall) == pytest.approx(expected, abs=1e-12)


def test_row_counts_ignore_floating_point_noise():
    """0.07 * 100 and 0.28 * 25 exceed 7 in floats; they still mean 7 rows, not 8."""
    y = np.array([1] * 7 + [0] * 93)
    assert precision_at_top(y, np.linspace(1, 0, 100), 0.07) == 1.0
    y = np.array([1] * 7 + [0] + [1] * 18 + [0] * 9)
    assert fpr_at_recall(y, np.linspace(1, 0, 35), 0.28) == 0.0


def test_metric_registry_is_consistent():
    """Every registered metric has a direction, and the promotion metrics are registered."""
    assert set(METRICS) == set(HIGHER_IS_BETTER)
    assert {"roc_auc", "precision_at_5pct", "fpr_at_recall_80"} <= set(METRICS)
    assert not HIGHER_IS_BETTER["fpr_at_recall_80"]
    assert not HIGHER_IS_BETTER["brier"]
    y, scores = _random_case(5)
    assert METRICS["precision_at_5pct"](y, scores) == precision_at_top(y, scores, 0.05)
    assert METRICS["fpr_at_recall_80"](y, scores) == fpr_at_recall(y, scores, 0.80)


# ---------------------------------------------------------------------------------------------
# DeLong


def _delong_reference(y, *scores):
    """DeLong et al. (1988) structural components from the full n_pos x n_neg kernel matrix."""
    y = np.asarray(y).astype(bool)
    v10, v01 = [], []
    for s in scores:
        x, z = s[y][:, None], s[~y][None, :]
        psi = (x > z) + 0.5 * (x == z)
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    covariance = np.cov(v10) / y.sum() + np.cov(v01) / (~y).sum()
    return np.array([v.mean() for v in v10]), np.atleast_2d(covariance)


@pytest.mark.parametrize("seed", range(5))
def test_delong_covariance_matches_quadratic_reference(seed):
    """The O(n log n) DeLong AUCs and covariance equal the O(n_pos * n_neg) definition."""
    y, a = _random_case(200 + seed, ties=True)
    rng = np.random.default_rng(seed)
    b = np.round(a + rng.normal(0, 0.2, a.size), 1)
    c = rng.random(a.size)
    aucs, covariance = delong_covariance(y, a, b, c)
    ref_aucs, ref_covariance = _delong_reference(y, a, b, c)
    np.testing.assert_allclose(aucs, ref_aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(covariance, ref_covariance, rtol=1e-9, atol=1e-15)

    test = delong_paired_test(y, a, b)
    var = ref_covariance[0, 0] + ref_covariance[1, 1] - 2 * ref_covariance[0, 1]
    assert test.se == pytest.approx(math.sqrt(var), rel=1e-9)


def test_delong_matches_published_proc_values(asah):
    """AUCs, (co)variances, paired z, p and CI equal pROC's test suite on aSAH.

    Expected values from github.com/xrobin/pROC tests/testthat: test-var.R (var of r.wfns,
    r.ndka, r.s100b), test-cov.R (their pairwise cov), test-roc.test.R (roc.test(r.wfns,
    r.s100b): Z, two-sided 95% conf.int, one-sided "greater" p). pROC implements DeLong et al.
    (1988) with the fast algorithm of Sun & Xu (2014).
    """
    y, wfns, s100b, ndka = asah
    aucs, covariance = delong_covariance(y, wfns, ndka, s100b)
    np.testing.assert_allclose(aucs[:2], [0.823678861788618, 0.611957994579946], rtol=1e-12)
    expected = np.array(
        [
            [0.00146991470882363, -0.000532967856762438, 0.00119615567376754],
            [-0.000532967856762438, 0.0031908105493913, -0.000756164938056579],
            [0.00119615567376754, -0.000756164938056579, 0.00266868245717244],
        ]
    )
    np.testing.assert_allclose(covariance, expected, rtol=1e-9)
    test = delong_paired_test(y, wfns, s100b, level=0.95)
    assert test.statistic == pytest.approx(2.20898359144091, rel=1e-9)
    assert test.p_value == pytest.approx(0.0135878911145941, rel=1e-9)
    assert (test.low, test.high) == pytest.approx((0.0104061769564846, 0.174214419249478), rel=1e-9)
    reverse = delong_paired_test(y, ndka, wfns, level=0.95)
    assert reverse.statistic == pytest.approx(-2.79777591868904, rel=1e-9)


def test_delong_interval_matches_proc_and_stays_in_unit_range(asah):
    """The interval equals pROC's ci.auc(r.ndka) (tests/testthat/test-ci.auc.R), within [0, 1]."""
    y, _, _, ndka = asah
    interval = delong_interval(y, ndka)
    assert interval.method == "delong"
    assert (interval.low, interval.high) == pytest.approx(
        (0.501244999271703, 0.722670989888189), rel=1e-9
    )
    perfect = delong_interval(y, y + 0.1 * ndka / ndka.max(), level=0.99)
    assert (perfect.value, perfect.high) == (1.0, 1.0)
    assert 0 <= perfect.low <= 1


def test_delong_one_sided_p_and_interval_agree():
    """With the default level, significant <=> the (1 - 2 alpha) interval's low > min_delta."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        y, challenger, champion = _two_models(rng, 300, 0.8, 1.0)
        min_delta = float(rng.uniform(-0.02, 0.03))
        test = delong_paired_test(y, challenger, champion, min_delta=min_delta, alpha=0.05)
        assert test.significant == (test.low > min_delta)
        assert test.statistic == pytest.approx((test.diff - min_delta) / test.se)


def test_identical_models_are_never_promoted_and_serialise():
    """Identical scores: zero variance, p = 1, not significant; to_dict is strict JSON."""
    y, scores = _random_case(9, n=200)
    test = compare(y, scores, scores, "roc_auc", min_delta=0.0, alpha=0.05, resamples=10, seed=0)
    assert (test.diff, test.se, test.p_value, test.significant) == (0.0, 0.0, 1.0, False)
    data = test.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["significant"] is False
    assert data["method"] == "delong"


# ---------------------------------------------------------------------------------------------
# Stratified bootstrap


def test_bootstrap_interval_contains_point_estimate_for_every_metric():
    """Each registered metric's percentile interval brackets its point estimate."""
    y, scores = _random_case(11, n=3000)
    intervals = bootstrap_intervals(y, scores, list(METRICS), resamples=300, seed=1)
    for name, interval in intervals.items():
        assert interval.method == "bootstrap"
        assert interval.value == METRICS[name](y, scores)
        assert interval.low <= interval.value <= interval.high, name


def test_bootstrap_width_shrinks_with_sample_size():
    """Sixteen times the rows gives a clearly narrower interval (about four times)."""
    widths = []
    for n in (500, 8000):
        y, scores = _random_case(12, n=n)
        interval = bootstrap_interval(y, scores, "roc_auc", resamples=300, seed=2)
        widths.append(interval.high - interval.low)
    assert widths[1] < 0.5 * widths[0]


def test_bootstrap_is_reproducible_and_seeded():
    """The same seed gives identical replicates; another seed gives different ones."""
    y, scores = _random_case(13, n=500)
    first = bootstrap_replicates(y, scores, "precision_at_5pct", resamples=50, seed=3)
    again = bootstrap_replicates(y, scores, "precision_at_5pct", resamples=50, seed=3)
    other = bootstrap_replicates(y, scores, "precision_at_5pct", resamples=50, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_bootstrap_does_not_depend_on_chunk_size(monkeypatch):
    """Memory chunking is an implementation detail: results are identical for any chunk."""
    y, scores = _random_case(14, n=300)
    whole = bootstrap_replicates(y, scores, "roc_auc", resamples=40, seed=5)
    monkeypatch.setattr(stats_module, "_CHUNK_ELEMENTS", 700)
    np.testing.assert_array_equal(
        whole, bootstrap_replicates(y, scores, "roc_auc", resamples=40, seed=5)
    )


def test_stratified_resamples_keep_class_counts():
    """Every resample draws exactly n_pos positives and n_neg negatives."""
    y, _ = _random_case(15, n=257)
    counts = stratified_resample_counts(y, resamples=30, seed=6)
    assert counts.shape == (30, 257)
    assert (counts[:, y == 1].sum(axis=1) == y.sum()).all()
    assert (counts[:, y == 0].sum(axis=1) == (y == 0).sum()).all()
    assert counts.min() >= 0
    assert (counts == 0).any()


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_weighted_replicates_equal_metric_on_materialised_resample(metric):
    """A replicate computed from draw counts equals the metric on the repeated rows."""
    y, scores = _random_case(16, n=180, ties=True)
    counts = stratified_resample_counts(y, resamples=4, seed=7)
    replicates = bootstrap_replicates(y, scores, metric, resamples=4, seed=7)
    for row, value in zip(counts, replicates, strict=True):
        rows = np.repeat(np.arange(y.size), row)
        assert value == pytest.approx(METRICS[metric](y[rows], scores[rows]), abs=1e-12)


def test_paired_bootstrap_flips_lower_is_better_metrics():
    """For brier (lower is better) a better-calibrated challenger has a positive diff."""
    rng = np.random.default_rng(17)
    y, challenger, champion = _two_models(rng, 2000, 0.2, 1.5)
    challenger, champion = 1 / (1 + np.exp(-2 * challenger)), 1 / (1 + np.exp(-2 * champion))
    test = paired_bootstrap_test(y, challenger, champion, "brier", resamples=200, seed=8)
    assert test.challenger < test.champion
    assert test.diff == pytest.approx(test.champion - test.challenger)
    assert test.significant
    assert test.method == "paired_bootstrap"
    assert 1 / 201 <= test.p_value < 0.05


def test_compare_dispatches_by_metric():
    """roc_auc is decided by DeLong, any other metric by the paired bootstrap."""
    rng = np.random.default_rng(18)
    y, challenger, champion = _two_models(rng, 400, 0.5, 1.0)
    assert compare(y, challenger, champion, "roc_auc", 0.0, 0.05, 50, 0).method == "delong"
    result = compare(y, challenger, champion, "fpr_at_recall_80", 0.0, 0.05, 50, 0)
    assert (result.method, result.metric) == ("paired_bootstrap", "fpr_at_recall_80")


# ---------------------------------------------------------------------------------------------
# Promotion behaviour over simulated data sets


def test_equally_good_models_are_promoted_at_about_alpha():
    """With no true difference the DeLong promotion rate over 200 data sets stays near 0.05."""
    rng = np.random.default_rng(19)
    promoted = [
        delong_paired_test(*_two_models(rng, 400, 1.0, 1.0), alpha=0.05).significant
        for _ in range(200)
    ]
    assert 0.01 <= np.mean(promoted) <= 0.10


def test_paired_bootstrap_promotion_rate_under_the_null_is_near_alpha():
    """With no true difference the paired-bootstrap promotion rate stays near 0.05."""
    rng = np.random.default_rng(20)
    promoted = [
        paired_bootstrap_test(
            *_two_models(rng, 300, 1.0, 1.0), "average_precision", resamples=200, seed=i
        ).significant
        for i in range(100)
    ]
    assert 0.0 <= np.mean(promoted) <= 0.12


def test_better_model_is_detected_and_worse_model_never_promoted():
    """A clearly better challenger is promoted with high power; a worse one never is."""
    rng = np.random.default_rng(21)
    better = [
        delong_paired_test(*_two_models(rng, 400, 0.4, 1.0), min_delta=0.005).significant
        for _ in range(100)
    ]
    assert np.mean(better) >= 0.9
    worse = [
        delong_paired_test(*_two_models(rng, 400, 1.0, 0.4), min_delta=0.0).significant
        for _ in range(200)
    ]
    assert not any(worse)


def test_minimum_detectable_delta_gives_the_stated_power():
    """A true improvement equal to the MDD is detected with the stated power (normal model)."""
    se, alpha, power = 0.01, 0.05, 0.8
    mdd = minimum_detectable_delta(se, alpha, power)
    assert mdd == pytest.approx((1.6448536269514722 + 0.8416212335729143) * se)
    z_alpha = 1.6448536269514722
    detected = 0.5 * math.erfc((z_alpha - mdd / se) / math.sqrt(2))
    assert detected == pytest.approx(power)
    # against "better by more than min_delta" the test needs min_delta more: without it, a
    # reader assuming power 0.8 at the reported value would get 0.38 (min_delta 0.005)
    shifted = minimum_detectable_delta(se, alpha, power, min_delta=0.005)
    assert shifted == pytest.approx(mdd + 0.005)
    detected = 0.5 * math.erfc((z_alpha - (shifted - 0.005) / se) / math.sqrt(2))
    assert detected == pytest.approx(power)


# ---------------------------------------------------------------------------------------------
# Bad inputs


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda y, s: roc_auc(y, s[:-1]), "scores"),
        (lambda y, s: roc_auc(np.zeros_like(y), s), "y_true"),
        (lambda y, s: roc_auc(y * 2, s), "y_true"),
        (lambda y, s: roc_auc(y, np.where(y == 1, np.nan, s)), "scores"),
        (lambda y, s: roc_auc(y, np.full(y.size, np.inf)), "scores"),
        (lambda y, s: delong_interval(y, s, level=1.0), "level"),
        (lambda y, s: bootstrap_interval(y, s, "roc_auc", level=0), "level"),
        (lambda y, s: bootstrap_interval(y, s, "f1"), "metric"),
        (lambda y, s: bootstrap_interval(y, s, "roc_auc", resamples=0), "resamples"),
        (lambda y, s: brier_score(y, s * 3), "scores"),
        (lambda y, s: precision_at_top(y, s, fraction=0), "fraction"),
        (lambda y, s: fpr_at_recall(y, s, recall=1.5), "recall"),
        (lambda y, s: delong_paired_test(y, s, s[:-1]), "champion"),
        (lambda y, s: delong_paired_test(y, s[:-1], s), "challenger"),
        (lambda y, s: delong_paired_test(y, s, s, alpha=0.7), "alpha"),
        (lambda y, s: delong_paired_test(y, s, s, min_delta=math.nan), "min_delta"),
        (lambda y, s: paired_bootstrap_test(y, s, s, "roc_auc", level=2.0), "level"),
        (lambda y, s: minimum_detectable_delta(-1.0, 0.05), "se"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(call, argument):
    """Misuse fails fast with a ValueError that names the offending argument."""
    y, scores = _random_case(22, n=50)
    with pytest.raises(ValueError, match=argument):
        call(y, scores)
