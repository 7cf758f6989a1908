"""Gate checks are pure functions of metrics and thresholds: tested on inline data."""

import pytest

from {{ cookiecutter.package }}.gate import CHECKS, run_checks, to_markdown

GATES = {
    "judge_on": "point",
    "auc_roc": 0.80,
    "precision_at_5pct": 0.5,
    "max_fpr_at_recall_80": 0.3,
    "min_slice_auc": 0.7,
    "beat_baseline": True,
    "fairness": {"min_disparate_impact": 0.8, "max_equalized_odds_gap": 0.1},
}


def metrics(auc=0.85, low=0.83, fpr=0.2, slice_auc=0.8, di=0.9, eo=0.05, share=0.95):
    return {
        "metrics": {
            "roc_auc": {"value": auc, "low": low, "high": auc + 0.02},
            "precision_at_5pct": {"value": 0.7, "low": 0.6, "high": 0.8},
            "fpr_at_recall_80": {"value": fpr, "low": fpr - 0.02, "high": fpr + 0.02},
        },
        "baseline": {"name": "single feature: x", "roc_auc": {"value": 0.7}},
        "slices": {
            "big": {"judged": True, "roc_auc": {"value": slice_auc, "low": 0.7, "high": 0.9}},
            "tiny": {"judged": False, "reason": "too small to judge"},
        },
        "fairness": {
            "group": {
                "disparate_impact": {"value": di, "low": di - 0.1, "high": di + 0.1},
                "equalized_odds_gap": {"value": eo, "low": max(eo - 0.04, 0.0), "high": eo + 0.04},
            }
        },
        "invariances": {"rule": {"share": share, "min_share": 0.9}},
    }


def failed(results):
    return {(r.id, r.subject) for r in results if not r.passed}


def test_good_model_passes_every_check():
    """A model above every bound passes, and every registered check is reported."""
    results = run_checks(metrics(), GATES)
    assert failed(results) == set()
    assert {r.id for r in results} == set(CHECKS)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"auc": 0.79}, {("auc_roc", None)}),
        ({"fpr": 0.31}, {("max_fpr_at_recall_80", None)}),
        ({"slice_auc": 0.69}, {("min_slice_auc", "big")}),
        ({"di": 0.7}, {("min_disparate_impact", "group")}),
        ({"eo": 0.2}, {("max_equalized_odds_gap", "group")}),
        ({"share": 0.5}, {("invariance", "rule")}),
    ],
)
def test_each_bound_fails_alone(change, expected):
    """Crossing one bound fails exactly that check, naming the slice, group or rule."""
    assert failed(run_checks(metrics(**change), GATES)) == expected


def test_small_slices_are_not_judged():
    """A slice too small to judge is not turned into a pass or a fail."""
    subjects = {r.subject for r in run_checks(metrics(), GATES) if r.id == "min_slice_auc"}
    assert subjects == {"big"}


def test_lower_bound_judging_is_stricter():
    """Judged on the interval's lower bound, a point estimate above the bar can still fail."""
    results = run_checks(metrics(auc=0.81, low=0.79), {**GATES, "judge_on": "lower_bound"})
    assert ("auc_roc", None) in failed(results)
    assert ("auc_roc", None) not in failed(run_checks(metrics(auc=0.81, low=0.79), GATES))


def test_baseline_must_be_beaten():
    """Equal to the single-feature baseline is not good enough."""
    results = run_checks(
        metrics(auc=0.7, low=0.68), {**GATES, "auc_roc": 0.5, "min_slice_auc": 0.5}
    )
    assert ("beat_baseline", "single feature: x") in failed(results)


def test_every_check_says_how_to_fix():
    """Each check has a one-line fix hint, shown for failures in the Markdown report."""
    assert all((fn.__doc__ or "").strip() for fn in CHECKS.values())
    from dataclasses import asdict

    report = {"passed": False, "checks": [asdict(r) for r in run_checks(metrics(auc=0.5), GATES)]}
    markdown = to_markdown(report)
    assert "Model gate: FAILED" in markdown
    assert CHECKS["auc_roc"].__doc__.strip() in markdown


def test_fairness_can_be_judged_on_its_interval():
    """Judged on intervals, a disparate impact whose lower end is below the bound fails."""
    results = run_checks(metrics(di=0.85), {**GATES, "judge_on": "lower_bound"})
    assert ("min_disparate_impact", "group") in failed(results)
    assert ("min_disparate_impact", "group") not in failed(run_checks(metrics(di=0.85), GATES))
