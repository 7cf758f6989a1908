"""Batch scoring: chunked, validated first, the same scores as one big predict, nothing partial."""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow.parquet as pq
import pytest

from {{ cookiecutter.package }}.errors import DataError, RefusedError
from {{ cookiecutter.package }}.model_io import load_model
from {{ cookiecutter.package }}.score import score_file
from {{ cookiecutter.package }}.serve.schema import target_labels

from ..conftest import require_output


@pytest.fixture(scope="module")
def batch(raw_holdout, tmp_path_factory):
    """Unlabelled rows as a user would bring them: the holdout's raw rows as a CSV."""
    path = tmp_path_factory.mktemp("batch") / "batch.csv"
    raw_holdout.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def chunk_rows(holdout):
    """A chunk size that cuts this holdout into three chunks, whatever its size."""
    if len(holdout) < 3:
        pytest.skip(f"the holdout has {len(holdout)} rows: too few to cut into three chunks")
    return math.ceil(len(holdout) / 3)


def test_chunked_scores_equal_one_predict(
    batch, champion_registry, contract, holdout, tmp_path, chunk_rows
):
    """Three chunks give exactly the scores of one predict_proba over the whole table."""
    out = tmp_path / "scores.parquet"
    summary = score_file(batch, out, contract, champion_registry, chunk_rows=chunk_rows)
    scored = pd.read_parquet(out)
    model = load_model(require_output("models/model.skops"))
    expected = model.predict_proba(holdout[contract.feature_columns])[:, 1]
    assert summary.rows == len(scored) == len(holdout)
    assert scored[contract.id].astype(str).tolist() == holdout[contract.id].astype(str).tolist()
    assert scored["score"].to_numpy() == pytest.approx(expected, abs=1e-12)
    assert set(scored["model_version"]) == {summary.model_version}
    # labels in the table's own values (yes/no, CH/MM...), the positive one at the threshold
    negative, positive = target_labels(contract)
    expected_labels = [positive if s >= 0.5 else negative for s in expected]
    assert [str(v) for v in scored["label"]] == [str(v) for v in expected_labels]


def test_output_records_version_and_data_hash(
    batch, champion_registry, contract, tmp_path, chunk_rows
):
    """The Parquet metadata and the sidecar name the model version and the input's sha256."""
    out = tmp_path / "scores.parquet"
    summary = score_file(batch, out, contract, champion_registry, chunk_rows=chunk_rows)
    metadata = pq.read_schema(out).metadata
    assert metadata[b"ml.model_version"].decode() == summary.model_version
    assert metadata[b"ml.data_sha256"].decode() == summary.data_sha256
    sidecar = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["data_sha256"] == summary.data_sha256
    assert sidecar["model_sha256"] == summary.model_sha256


def test_bad_rows_are_named_and_nothing_is_written(
    batch, champion_registry, contract, tmp_path, chunk_rows
):
    """A bad value in the last chunk stops the run with its id; the previous output survives."""
    numeric = next((n for n in contract.feature_columns if contract.columns[n].is_numeric), None)
    if numeric is None:
        pytest.skip("contract.yaml has no numeric feature to put an out-of-range value in")
    out = tmp_path / "scores.parquet"
    score_file(batch, out, contract, champion_registry, chunk_rows=chunk_rows)
    before = out.read_bytes()
    rows = pd.read_csv(batch)
    last = len(rows) - 1  # in the third chunk: the first two were scored before it
    bad_id = rows.loc[last, contract.id]
    rows.loc[last, numeric] = -(10**9)
    broken = tmp_path / "broken.csv"
    rows.to_csv(broken, index=False)
    with pytest.raises(DataError) as caught:
        score_file(broken, out, contract, champion_registry, chunk_rows=chunk_rows)
    assert str(bad_id) in str(caught.value)
    assert numeric in str(caught.value)
    assert out.read_bytes() == before
    assert not list(tmp_path.glob(".scores.parquet.*"))


def test_unknown_version_is_refused(batch, champion_registry, contract, tmp_path):
    """VERSION must exist in the registry."""
    with pytest.raises(RefusedError, match="99"):
        score_file(batch, tmp_path / "x.parquet", contract, champion_registry, version="99")
