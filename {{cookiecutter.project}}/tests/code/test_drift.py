"""Drift: PSI arithmetic, reference profiles, and one verdict for batches and served traffic."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from {{ cookiecutter.package }}.config import DriftConfig
from {{ cookiecutter.package }}.drift import (
    RunningProfile,
    build_reference,
    compare,
    count_frame,
    psi,
)
from {{ cookiecutter.package }}.reports.pages import render_drift
from tests.tiny_contract import DRIFT, tiny_contract, tiny_table

LIMITS = DriftConfig.model_validate(DRIFT).limits()


@pytest.fixture(scope="module")
def reference():
    return build_reference(tiny_table(4000, seed=1), tiny_contract(), bins=10)


def test_psi_matches_hand_computation():
    """PSI = sum((cur - ref) * ln(cur / ref)) over bins, from counts or shares alike."""
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(expected)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.274653, abs=1e-6)


def test_empty_bin_counts_as_the_floor():
    """A bin empty in the reference adds a large but finite term, set by the floor."""
    floor = 1e-4
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - floor) * math.log(0.5 / floor)
    assert psi([100, 0], [50, 50], floor=floor) == pytest.approx(expected)
    assert psi([100, 0], [50, 50], floor=1e-3) < psi([100, 0], [50, 50], floor=1e-6)


def test_psi_of_nothing_is_undefined():
    """With no values on one side there is no distribution to compare."""
    assert math.isnan(psi([0, 0], [1, 2]))


def test_reference_is_json_and_complete(reference):
    """The profile survives JSON and covers every feature with shares that sum to one."""
    assert json.loads(json.dumps(reference)) == reference
    assert set(reference["features"]) == set(tiny_contract().feature_columns)
    assert reference["rows"] == 4000
    for name, feature in reference["features"].items():
        assert sum(feature["shares"]) == pytest.approx(1.0), name
    spend = reference["features"]["spend"]
    assert len(spend["edges"]) == 9  # ten quantile bins
    assert max(spend["shares"]) < 0.11  # quantile bins hold about a tenth each
    assert reference["features"]["visits"]["null_share"] == pytest.approx(0.05, abs=0.015)
    assert reference["features"]["plan"]["categories"] == ["basic", "plus", "pro"]


def test_identical_data_has_no_drift(reference):
    """The reference's own data scores PSI 0 on every feature."""
    report = compare(reference, tiny_table(4000, seed=1), tiny_contract(), LIMITS)
    assert report["status"] == "ok"
    assert report["max_psi"] == pytest.approx(0.0, abs=1e-9)


def test_fresh_sample_of_same_population_is_stable(reference):
    """Sampling noise alone stays well below the threshold."""
    report = compare(reference, tiny_table(4000, seed=2), tiny_contract(), LIMITS)
    assert report["status"] == "ok", report["features"][0]
    assert report["max_psi"] < 0.05


def test_shifted_feature_drifts_and_comes_first(reference):
    """Moving spend by a standard deviation gives PSI > 0.2 and tops the sorted table."""
    shifted = tiny_table(4000, seed=2, spend_shift=30.0)
    report = compare(reference, shifted, tiny_contract(), LIMITS)
    assert report["status"] == "drift"
    assert report["drifted"] == ["spend"]
    assert report["features"][0]["feature"] == "spend"
    assert report["features"][0]["psi"] > 0.2
    psis = [f["psi"] for f in report["features"][1:]]
    assert psis == sorted(psis, reverse=True)


def test_unseen_categories_and_nulls_are_judged(reference):
    """Values outside the reference's categories and a growth in nulls are drift of their own."""
    df = tiny_table(4000, seed=2)
    df.loc[df.index[:200], "plan"] = "enterprise"
    df.loc[df.index[:800], "visits"] = np.nan
    report = compare(reference, df, tiny_contract(), LIMITS)
    by_name = {f["feature"]: f for f in report["features"]}
    assert by_name["plan"]["unseen_share"]["current"] == pytest.approx(0.05)
    assert any("not among the reference's categories" in r for r in by_name["plan"]["reasons"])
    assert any("null share" in r for r in by_name["visits"]["reasons"])


def test_missing_column_is_drift(reference):
    """A feature the data no longer has cannot be compared, and says so."""
    report = compare(reference, tiny_table(500).drop(columns="plan"), tiny_contract(), LIMITS)
    plan = next(f for f in report["features"] if f["feature"] == "plan")
    assert (plan["verdict"], plan["reasons"]) == ("drift", ["column is missing from the data"])


def test_few_rows_are_reported_not_judged(reference):
    """Below min_rows PSI is mostly noise: the status says so instead of raising an alarm."""
    report = compare(reference, tiny_table(50, spend_shift=300.0), tiny_contract(), LIMITS)
    assert report["status"] == "too_few_rows"
    assert report["drifted"] == []


def test_running_profile_equals_batch_profile(reference):
    """Rows counted one by one, as a server sees them, give the batch's counts and verdict."""
    df = tiny_table(1500, seed=3, spend_shift=20.0)
    records = df.to_dict("records")
    for record in records[::2]:  # request bodies carry text and None where a file has NaN
        record["is_business"] = str(record["is_business"])
        record["visits"] = None if math.isnan(record["visits"]) else record["visits"]
    running = RunningProfile(reference)
    running.update_many(records)
    assert running.snapshot() == count_frame(reference, df)
    batch = compare(reference, df, tiny_contract(), LIMITS)
    assert batch.pop("contract_changed") is False
    assert running.compare(LIMITS) == batch


def test_running_profile_windows(reference):
    """A whole frame counts like its rows, and reset hands over the window and starts afresh."""
    df = tiny_table(600, seed=4)
    running = RunningProfile(reference)
    running.update_frame(df.iloc[:300])
    running.update_many(df.iloc[300:].to_dict("records"))
    assert running.reset() == count_frame(reference, df)
    assert running.rows == 0
    assert running.snapshot()["features"]["spend"]["counts"] == [0] * 10


def test_drift_page_is_offline_and_escaped(reference):
    """The HTML page draws every feature, loads nothing from the network, escapes data."""
    df = tiny_table(1000, seed=5, spend_shift=30.0)
    df.loc[df.index[:5], "plan"] = "<script>alert(1)</script>"
    report = compare(reference, df, tiny_contract(), LIMITS)
    html = render_drift({"data": "batch.csv", "reference": "test", **report})
    assert html.count("<svg") == len(reference["features"])
    assert "<script" not in html
    assert "src=" not in html
    assert "<link" not in html
    table = html[html.index("<table>") : html.index("</table>")]
    assert table.index(">spend<") < table.index(">plan<")  # worst drift first
