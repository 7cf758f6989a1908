"""Gate checks are pure functions of metrics and thresholds: tested on inline data."""

import pytest

from {{ cookiecutter.package }}.config import GatesConfig
from {{ cookiecutter.package }}.errors import RefusedError, run_main
from {{ cookiecutter.package }}.pipeline.gate import CHECKS, describe, run_checks, to_markdown
from {{ cookiecutter.package }}.records import GateReport, Metrics

GATES = GatesConfig(
    judge_on="point",
    auc_roc=0.80,
    precision_at_5pct=0.5,
    min_lift_at_5pct=2.0,
    max_fpr_at_recall_80=0.3,
    min_slice_auc=0.7,
    beat_baseline=True,
    fairness={"min_disparate_impact": 0.8, "max_equalized_odds_gap": 0.1},
)


def judged_on(mode):
    return GATES.model_copy(update={"judge_on": mode})


def raw_metrics(
    auc=0.85, low=0.83, fpr=0.2, slice_auc=0.8, di=0.9, eo=0.05, share=0.95, lift=3.5, gain=0.1
):
    """A complete metrics.json, as evaluate writes it."""
    return {
        "n": 1000,
        "positives": 300,
        "prevalence": 0.3,
        "level": 0.95,
        "metrics": {
            "roc_auc": {"value": auc, "low": low, "high": auc + 0.02},
            "precision_at_5pct": {"value": 0.7, "low": 0.6, "high": 0.8},
            "fpr_at_recall_80": {"value": fpr, "low": fpr - 0.02, "high": fpr + 0.02},
            "lift_at_5pct": {"value": lift, "low": lift - 1.0, "high": lift + 1.0},
        },
        "baseline": {
            "name": "single feature: x",
            "roc_auc": {"value": 0.7},
            "auc_gain": {"value": gain, "low": gain - 0.03, "high": gain + 0.03},
        },
        "slices": {
            "big": {
                "n": 900,
                "positives": 270,
                "judged": True,
                "roc_auc": {"value": slice_auc, "low": 0.7, "high": 0.9},
            },
            "tiny": {"n": 100, "positives": 3, "judged": False, "reason": "too small to judge"},
        },
        "fairness": {
            "group": {
                "threshold": 0.5,
                "disparate_impact": {"value": di, "low": di - 0.1, "high": di + 0.1},
                "equalized_odds_gap": {"value": eo, "low": max(eo - 0.04, 0.0), "high": eo + 0.04},
                "groups": {},
            }
        },
        "invariances": {
            "rule": {
                "column": "x",
                "change": [0, 1],
                "direction": "increase",
                "share": share,
                "min_share": 0.9,
            }
        },
        "importance": [],
    }


def metrics(**change):
    return Metrics.model_validate(raw_metrics(**change))


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
        ({"lift": 1.9}, {("min_lift_at_5pct", None)}),
        ({"gain": 0.0}, {("beat_baseline", "single feature: x")}),
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
    results = run_checks(metrics(auc=0.81, low=0.79), judged_on("lower_bound"))
    assert ("auc_roc", None) in failed(results)
    assert ("auc_roc", None) not in failed(run_checks(metrics(auc=0.81, low=0.79), GATES))


def test_baseline_must_be_beaten():
    """Equal to the single-feature baseline is not good enough; on intervals, the gain must be sure."""
    assert ("beat_baseline", "single feature: x") in failed(run_checks(metrics(gain=0.0), GATES))
    judged = judged_on("lower_bound")
    assert ("beat_baseline", "single feature: x") in failed(run_checks(metrics(gain=0.02), judged))
    assert failed(run_checks(metrics(gain=0.02), GATES)) == set()


def test_a_baseline_margin_asks_only_for_non_inferiority():
    """With `baseline_margin`, a model may trail the best feature by less than the margin."""
    margin = judged_on("lower_bound").model_copy(update={"baseline_margin": 0.05})
    assert failed(run_checks(metrics(gain=-0.01), margin)) == set()  # low end -0.04 > -0.05
    assert ("beat_baseline", "single feature: x") in failed(run_checks(metrics(gain=-0.03), margin))


def test_a_failure_line_says_what_was_required_and_what_was_found():
    """Never a false inequality such as `-0.0117 > 0.0000`: required, found, and which end."""
    (result,) = [
        r
        for r in run_checks(metrics(gain=0.02), judged_on("lower_bound"))
        if r.id == "beat_baseline"
    ]
    line = describe(result)
    assert line.startswith(
        "FAIL beat_baseline [single feature: x]: required > 0.0000, found -0.0100"
    )
    assert "lower end of [-0.0100, 0.0500]" in line
    assert "estimate 0.0200" in line
    assert "(bound: params.yaml: gates.beat_baseline)" in line
    passed = [r for r in run_checks(metrics(), judged_on("lower_bound")) if r.passed]
    assert all(
        " >= " in describe(r) or " <= " in describe(r) or " > " in describe(r) for r in passed
    )


def test_a_null_bound_turns_its_gate_off():
    """Absolute gates are optional: a null bound is not judged (drafted gates use this)."""
    off = GATES.model_copy(
        update={"auc_roc": None, "precision_at_5pct": None, "min_lift_at_5pct": None}
    )
    ids = {r.id for r in run_checks(metrics(auc=0.6, low=0.55, gain=0.2), off)}
    assert not ids & {"auc_roc", "precision_at_5pct", "min_lift_at_5pct"}
    assert "beat_baseline" in ids


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"auc": 0.5}, "params.yaml: gates.auc_roc"),
        ({"lift": 1.0}, "params.yaml: gates.min_lift_at_5pct"),
        ({"gain": -0.1}, "params.yaml: gates.beat_baseline"),
        ({"di": 0.5}, "params.yaml: gates.fairness.min_disparate_impact"),
        ({"share": 0.5}, "contract.yaml: invariances (rule).min_share"),
    ],
)
def test_a_failure_names_the_key_to_edit(change, key, tmp_path, monkeypatch, capsys):
    """The terminal and the Markdown report name the exact key that sets a failed bound."""
    import json

    import yaml

    from {{ cookiecutter.package }}.pipeline.gate import main
    from tests.conftest import ROOT

    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "metrics.json").write_text(json.dumps(raw_metrics(**change)))
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    # the metrics are a binary model's: judged as one whatever this project's task
    params |= {"task": "binary", "gates": GATES.model_dump()}
    params.pop("promotion")  # config.py's binary defaults
    params["model"]["kind"] = "logistic_regression"  # a classifier, whatever the project trains
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_main("gate", main, []) == RefusedError.exit_code
    assert key in capsys.readouterr().err
    assert main(["--markdown"]) == 0
    assert key in capsys.readouterr().out


def test_every_check_says_how_to_fix():
    """Each check has a one-line fix hint, shown for failures in the Markdown report."""
    assert all((fn.__doc__ or "").strip() for fn in CHECKS.values())
    checks = run_checks(metrics(auc=0.5), GATES)
    markdown = to_markdown(GateReport(passed=False, judge_on="point", checks=checks))
    assert "Model gate: FAILED" in markdown
    assert CHECKS["auc_roc"].__doc__.strip() in markdown


def test_fairness_can_be_judged_on_its_interval():
    """Judged on intervals, a disparate impact whose lower end is below the bound fails."""
    results = run_checks(metrics(di=0.85), judged_on("lower_bound"))
    assert ("min_disparate_impact", "group") in failed(results)
    assert ("min_disparate_impact", "group") not in failed(run_checks(metrics(di=0.85), GATES))


@pytest.mark.parametrize(
    ("mode", "auc_low", "auc_high", "fails"),
    [
        ("point", 0.70, 0.82, True),  # estimate 0.76 < 0.80
        ("lower_bound", 0.79, 0.90, True),  # the low end is below the bound
        ("whole_interval", 0.70, 0.82, False),  # the interval reaches the bound
        ("whole_interval", 0.70, 0.79, True),  # the whole interval is below it
    ],
)
def test_judge_on_modes(mode, auc_low, auc_high, fails):
    """Each mode compares the bound with the estimate or the end of the interval it names."""
    entry = {"value": (auc_low + auc_high) / 2, "low": auc_low, "high": auc_high}
    table = raw_metrics()
    table["metrics"]["roc_auc"] = entry
    assert (
        ("auc_roc", None) in failed(run_checks(Metrics.model_validate(table), judged_on(mode)))
    ) is fails


def test_a_typo_in_judge_on_is_refused():
    """`judge_on: lower-bound` is an error that lists the modes, never a silent `point`."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="whole_interval"):
        GatesConfig(judge_on="lower-bound")
