"""The data the pipeline trains on meets the contract."""

from pathlib import Path

import pytest

from {{ cookiecutter.package }}.data import load_table
from {{ cookiecutter.package }}.pipeline.validate import validate_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw_path(config):
    path = ROOT / config.data.raw
    if not path.exists():
        pytest.fail(
            f"{path.name} is missing: `make setup` (sample data) or `make contract DATA=...`"
        )
    return path


def test_loader_schema(raw_path, contract):
    """Every contract column is present in the raw data."""
    df = load_table(raw_path)
    assert set(contract.columns) <= set(df.columns)


def test_no_duplicate_ids(raw_path, contract):
    """One row per id: duplicates would leak between training and holdout."""
    df = load_table(raw_path)
    assert df[contract.id].is_unique


def test_raw_data_meets_contract(raw_path, contract):
    """The Great Expectations suite built from the contract passes on the raw data."""
    report, table = validate_file(raw_path, contract)
    assert report["success"], "\n".join(report["failures"])
    assert table is not None
    assert len(table) == report["rows"]
