"""Broken data stops `dvc repro` at validate, says what is wrong, and loses nothing."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import pytest

from .conftest import bake, run

pytestmark = pytest.mark.slow
DATA = Path("data/raw/churn.csv")
KEPT = ["models/model.skops", "metrics/metrics.json", "metrics/gate.json", "metrics/promotion.json"]


def digest(project: Path) -> dict[str, str]:
    return {name: hashlib.sha256((project / name).read_bytes()).hexdigest() for name in KEPT}


def champion(project: Path) -> str:
    """The last promoted version, from the registry's promotion log."""
    log = run([sys.executable, "-m", "churn_model", "promotion-log"], project).stdout.splitlines()
    promoted = [json.loads(line) for line in log if json.loads(line).get("decision") == "promoted"]
    return promoted[-1]["version"]


def rewrite(path: Path, change) -> None:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows = change(rows)
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def set_cell(column: str, row: int, value: str):
    def change(rows):
        rows[row][rows[0].index(column)] = value
        return rows

    return change


def drop_column(column: str):
    def change(rows):
        index = rows[0].index(column)
        return [r[:index] + r[index + 1 :] for r in rows]

    return change


CASES = {
    # DVC checks dependencies before running the stage, and says so itself
    # bare `dvc repro` stops before any stage and names the file (`make repro` would first
    # regenerate a sample or pull it: tests/test_team.py)
    "missing_file": (None, ["data/raw/churn.csv", "missing data"]),
    "empty_file": (lambda rows: [], ["churn.csv", "empty"]),
    "missing_column": (drop_column("contract_type"), ["'contract_type'", "missing"]),
    "wrong_type": (set_cell("tenure_months", 5, "five"), ["'tenure_months'", "integer", "five"]),
    "unknown_category": (
        set_cell("contract_type", 7, "weekly"),
        ["'contract_type'", "value_set", "weekly"],
    ),
    "null_label": (set_cell("churned", 9, ""), ["'churned'", "not_be_null"]),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One baked project with a trained champion, shared by the cases (each restores the data)."""
    project = bake(tmp_path_factory.mktemp("bad-data"))
    run(["dvc", "repro"], project)
    return project


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_stops_at_validate(project, case):
    """Non-zero exit at validate, a message naming file/column/expectation, outputs untouched."""
    change, expected = CASES[case]
    path = project / DATA
    original = path.read_bytes()
    before, champion_before = digest(project), champion(project)
    try:
        if change is None:
            path.unlink()
        else:
            rewrite(path, change)
        result = run(["dvc", "repro"], project, check=False)
    finally:
        path.write_bytes(original)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Running stage 'train'" not in output
    for text in expected:
        assert text in output, f"{text!r} not in:\n{output[-3000:]}"
    assert digest(project) == before
    assert champion(project) == champion_before
