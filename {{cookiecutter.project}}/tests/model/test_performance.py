"""Delayed labels: joined by id with batch predictions, judged against the evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package }}.config import PerformanceConfig, load_config
from {{ cookiecutter.package }}.errors import DataError
from {{ cookiecutter.package }}.monitoring.performance import (
    drop_verdict,
    performance_report,
    read_labels,
    read_predictions,
    render_html,
    summary_lines,
)
from {{ cookiecutter.package }}.score import score_file
from {{ cookiecutter.package }}.stats import Interval

from ..conftest import ROOT, require_output


@pytest.fixture(scope="module")
def scored(champion_registry, raw_holdout, contract, tmp_path_factory):
    """The holdout's raw rows scored as an unlabelled batch (labels arrive later)."""
    tmp = tmp_path_factory.mktemp("perf")
    batch = tmp / "batch.parquet"
    raw_holdout.to_parquet(batch, index=False)
    out = tmp / "predictions.parquet"
    score_file(batch, out, contract, champion_registry)
    return out


def labels_file(holdout, contract, path, swap_label, flip_share=0.0, rows=None):
    """The holdout's own labels in the target's own values, a share of them turned over."""
    frame = holdout[[contract.id, contract.target]].head(rows).copy()
    rng = np.random.default_rng(3)
    flip = rng.random(len(frame)) < flip_share
    frame.loc[flip, contract.target] = frame.loc[flip, contract.target].map(swap_label)
    frame.to_csv(path, index=False)
    return path


def report_for(scored, labels, contract, registry, features=None):
    predictions, _ = read_predictions([scored], contract)
    table, _ = read_labels(labels, contract)
    return performance_report(predictions, table, contract, load_config(ROOT / "params.yaml"),
                              registry, features)  # fmt: skip


def test_labels_of_the_evaluated_rows_show_no_drop(
    scored, holdout, contract, champion_registry, tmp_path, swap_label
):
    """The holdout's own labels reproduce the evaluated ROC AUC: no drop, full coverage."""
    labels = labels_file(holdout, contract, tmp_path / "l.csv", swap_label)
    report = report_for(scored, labels, contract, champion_registry)
    ((_, entry),) = report["versions"].items()
    metrics = json.loads(require_output("metrics/metrics.json").read_text(encoding="utf-8"))
    assert entry["metrics"]["roc_auc"]["value"] == pytest.approx(
        metrics["metrics"]["roc_auc"]["value"]
    )
    assert entry["coverage"] == 1.0
    assert entry["drop"]["status"] == "ok"
    assert report["status"] == "ok"


def test_degraded_labels_are_a_significant_drop(
    scored, holdout, contract, champion_registry, tmp_path, swap_label
):
    """When a third of the outcomes turn against the model, the drop is significant."""
    labels = labels_file(holdout, contract, tmp_path / "l.csv", swap_label, flip_share=0.35)
    report = report_for(scored, labels, contract, champion_registry)
    ((version, entry),) = report["versions"].items()
    assert entry["drop"]["status"] == "drop"
    assert entry["drop"]["realised_upper"] < entry["drop"]["floor"]
    assert report["dropped_versions"] == [version]
    assert any("DROP" in line for line in summary_lines(report))


def test_partial_coverage_unknown_and_duplicate_labels(
    scored, holdout, contract, champion_registry, tmp_path, swap_label
):
    """Half the rows labelled, plus labels for ids never scored and repeated rows: all counted."""
    frame = holdout[[contract.id, contract.target]].head(len(holdout) // 2)
    strangers = pd.DataFrame({contract.id: ["never-scored-1", "never-scored-2"],
                              contract.target: list(swap_label)})  # fmt: skip
    path = tmp_path / "labels.csv"
    pd.concat([frame, frame.head(10), strangers]).to_csv(path, index=False)
    _, duplicates = read_labels(path, contract)
    assert duplicates == 10
    report = report_for(scored, path, contract, champion_registry)
    ((_, entry),) = report["versions"].items()
    assert entry["coverage"] == pytest.approx(len(frame) / len(holdout))
    assert report["unknown_ids"]["count"] == 2
    assert "never-scored-1" in report["unknown_ids"]["examples"]


def test_conflicting_labels_name_the_ids(holdout, contract, tmp_path, swap_label):
    """One id with two different outcomes is an error that names it."""
    frame = holdout[[contract.id, contract.target]].head(20).copy()
    clash = frame.head(1).assign(**{contract.target: swap_label[frame[contract.target].iloc[0]]})
    path = tmp_path / "labels.csv"
    pd.concat([frame, clash]).to_csv(path, index=False)
    with pytest.raises(DataError, match=str(frame[contract.id].iloc[0])):
        read_labels(path, contract)


def test_slices_when_features_are_given(
    scored, holdout, contract, champion_registry, tmp_path, swap_label
):
    """With the scored rows' features, realised ROC AUC is reported per contract slice, in
    one table per version; the page charts each batch against the evaluated interval."""
    if not contract.slices:
        pytest.skip("this contract defines no slices")
    labels = labels_file(holdout, contract, tmp_path / "l.csv", swap_label)
    features = holdout[[contract.id, *contract.slice_columns]].astype({contract.id: "str"})
    report = report_for(scored, labels, contract, champion_registry, features)
    ((version, entry),) = report["versions"].items()
    assert set(entry["slices"]) == set(contract.slices)
    earlier = json.loads(json.dumps(report))
    page = render_html(report, [("2026-01", earlier)], "2026-02")
    assert page.count(f"Version {version}: slices") == 1
    assert all(f"<td>{name}</td>" in page for name in contract.slices)
    chart = page.split(f"Version {version}: realised ROC AUC per batch")[1]
    assert chart.count("<circle") == 2  # two batches
    assert "evaluated" in chart  # over the evaluated interval's band
    assert "Generated by <code>make performance</code>" in page


@pytest.mark.parametrize(
    ("evaluated", "realised", "expected"),
    [
        # the batch's 95% upper bound 0.80 + 1.645 * 0.0102 = 0.817 is above 0.81: no alarm,
        # although the point estimate is 0.04 below the evaluated 0.84
        ((0.84, 0.81, 0.87), (0.80, 0.78, 0.82), "ok"),
        # 0.77 + 0.0168 = 0.787 < 0.81: the batch is surely below anything evaluate allowed
        ((0.84, 0.81, 0.87), (0.77, 0.75, 0.79), "drop"),
    ],
)
def test_the_alarm_needs_the_batch_below_the_evaluated_interval(evaluated, realised, expected):
    """The reference is uncertain too: a batch alarms only when its one-sided upper bound is
    under the evaluated interval's lower end, not whenever it is under the point value."""
    verdict = drop_verdict(
        Interval(*realised, "delong"), Interval(*evaluated, "delong"), 0.95, PerformanceConfig()
    )
    assert verdict["status"] == expected


def test_an_empty_prediction_log_is_no_error(scored, contract, tmp_path):
    """A server that answered nothing yet leaves an empty log: it adds no predictions."""
    empty = tmp_path / "predictions-staging-1.jsonl"
    empty.write_text("")
    with_empty, _ = read_predictions([scored, empty], contract)
    alone, _ = read_predictions([scored], contract)
    pd.testing.assert_frame_equal(with_empty, alone)
    with pytest.raises(DataError, match=r"no predictions in .*nothing was scored yet"):
        read_predictions([empty], contract)
