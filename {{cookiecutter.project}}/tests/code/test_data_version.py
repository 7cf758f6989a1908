"""The next version of the data comes on purpose: recorded by `make data-update`, or refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from {{ cookiecutter.package }}.data_version import record, record_path, unrecorded_change, update
from {{ cookiecutter.package }}.errors import DataError, RefusedError
from {{ cookiecutter.package }}.pipeline import validate
from tests.tiny_contract import tiny_table, write_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DVC repository (no git) with the tiny contract and its raw data, recorded."""
    monkeypatch.chdir(tmp_path)
    subprocess.run(["dvc", "init", "--no-scm", "--quiet"], check=True)
    write_project(tmp_path)
    tiny_table(300).to_csv(tmp_path / "data.csv", index=False)
    record(tmp_path / "data.csv")
    return tmp_path


def test_a_replaced_raw_file_is_named_with_both_ways_out(project: Path) -> None:
    """Unchanged: no complaint. Replaced by hand: the message says how to accept or undo it."""
    raw = project / "data.csv"
    assert unrecorded_change(raw) is None
    tiny_table(200, seed=5).to_csv(raw, index=False)
    message = unrecorded_change(raw)
    assert message is not None
    assert f"make data-update DATA={raw}" in message
    assert f"dvc checkout {raw}" in message
    record_path(raw).unlink()
    assert unrecorded_change(raw) is None  # nothing recorded (sample data): nothing to check


def test_validate_refuses_an_unrecorded_raw_file_and_writes_nothing(project: Path) -> None:
    """The validate stage stops before it writes: the previous validated table stays."""
    out = project / "validated.parquet"
    out.write_bytes(b"previous")
    tiny_table(200, seed=5).to_csv(project / "data.csv", index=False)
    with pytest.raises(RefusedError, match="nobody said this data should change"):
        validate.main(["--report", str(project / "v.json"), "--out", str(out)])
    assert out.read_bytes() == b"previous"


def test_update_validates_adds_and_records(project: Path) -> None:
    """A file that meets the contract becomes the raw data, `dvc add`ed, with what to commit."""
    new = project / "next.csv"
    tiny_table(400, seed=9).to_csv(new, index=False)
    lines = update(new, project / "data.csv", project / "contract.yaml")
    assert (project / "data.csv").read_bytes() == new.read_bytes()
    assert (project / "data.csv.dvc").is_file()
    assert unrecorded_change(project / "data.csv") is None
    assert any("git add" in line and "data.csv.recorded" in line for line in lines)
    assert update(new, project / "data.csv", project / "contract.yaml") == [
        f"data-update: {new} is the same as {project / 'data.csv'}: nothing to do"
    ]


def test_update_refuses_a_file_that_breaks_the_contract(project: Path) -> None:
    """Nothing changes, and the failure says which key would accept the data."""
    bad = tiny_table(300, seed=9)
    bad.loc[3, "plan"] = "platinum"
    path = project / "bad.csv"
    bad.to_csv(path, index=False)
    before = (project / "data.csv").read_bytes()
    with pytest.raises(DataError, match=r"contract.yaml: columns.plan.values"):
        update(path, project / "data.csv", project / "contract.yaml")
    assert (project / "data.csv").read_bytes() == before
    assert not (project / "data.csv.dvc").exists()
