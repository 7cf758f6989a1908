"""Delayed labels: joined by id with batch predictions, judged against the evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package }}.config import load_config
from {{ cookiecutter.package }}.errors import DataError
from {{ cookiecutter.package }}.monitoring.performance import (
    performance_report,
    read_labels,
    read_predictions,
    summary_lines,
)
from {{ cookiecutter.package }}.score import score_file

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
    assert entry["drop"]["p_value"] < 0.05
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
    """With the scored rows' features, realised ROC AUC is reported per contract slice."""
    if not contract.slices:
        pytest.skip("this contract defines no slices")
    labels = labels_file(holdout, contract, tmp_path / "l.csv", swap_label)
    features = holdout[[contract.id, *contract.slice_columns]].astype({contract.id: "str"})
    report = report_for(scored, labels, contract, champion_registry, features)
    ((_, entry),) = report["versions"].items()
    assert set(entry["slices"]) == set(contract.slices)


def test_an_empty_prediction_log_is_no_error(scored, contract, tmp_path):
    """A server that answered nothing yet leaves an empty log: it adds no predictions."""
    empty = tmp_path / "predictions-staging-1.jsonl"
    empty.write_text("")
    with_empty, _ = read_predictions([scored, empty], contract)
    alone, _ = read_predictions([scored], contract)
    pd.testing.assert_frame_equal(with_empty, alone)
    with pytest.raises(DataError, match=r"no predictions in .*nothing was scored yet"):
        read_predictions([empty], contract)
