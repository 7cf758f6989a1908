"""Malformed input gets a clear error that names the file, column and expectation, and no output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package }}.data import DataError, load_table
from {{ cookiecutter.package }}.validate import main, validate_file
from tests.tiny_contract import tiny_contract, tiny_table, write_project

Writer = Callable[[Path], Path]


def _csv(df: pd.DataFrame, path: Path, **options: object) -> Path:
    df.to_csv(path, index=False, **options)
    return path


def wrong_delimiter(tmp: Path) -> Path:
    return _csv(tiny_table(50), tmp / "semicolons.csv", sep=";")


def header_only(tmp: Path) -> Path:
    return _csv(tiny_table(50).head(0), tmp / "header_only.csv")


def duplicate_ids(tmp: Path) -> Path:
    df = tiny_table(50)
    df.loc[7, "account"] = df.loc[3, "account"]
    return _csv(df, tmp / "duplicates.csv")


def mixed_types(tmp: Path) -> Path:
    df = tiny_table(50).astype({"spend": object})
    df.loc[[4, 9], "spend"] = ["twelve", "n/a"]
    return _csv(df, tmp / "mixed.csv")


def renamed_column(tmp: Path) -> Path:
    return _csv(tiny_table(50).rename(columns={"plan": "plan_name"}), tmp / "renamed.csv")


def numbers_as_strings(tmp: Path) -> Path:
    df = tiny_table(50)
    df["visits"] = df["visits"].astype(str)  # a Parquet writer kept the text: "6.0", "nan"
    path = tmp / "strings.parquet"
    df.to_parquet(path, index=False)
    return path


def not_a_table(tmp: Path) -> Path:
    path = tmp / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    return path


def text_named_parquet(tmp: Path) -> Path:
    path = tmp / "notes.parquet"
    path.write_text("account,spend\nA1,3.5\n", encoding="utf-8")
    return path


def empty_file(tmp: Path) -> Path:
    path = tmp / "empty.csv"
    path.write_bytes(b"")
    return path


def missing_file(tmp: Path) -> Path:
    return tmp / "nowhere.csv"


def unknown_category(tmp: Path) -> Path:
    df = tiny_table(50)
    df.loc[11, "plan"] = "platinum"
    return _csv(df, tmp / "unknown_plan.csv")


def null_label(tmp: Path) -> Path:
    df = tiny_table(50).astype({"left": "float64"})
    df.loc[5, "left"] = None
    return _csv(df, tmp / "null_label.csv")


# case -> (file writer, words the error must contain besides the file name)
CASES: dict[str, tuple[Writer, tuple[str, ...]]] = {
    "wrong_delimiter": (wrong_delimiter, ("';'-delimited", "comma-separated")),
    "header_only": (header_only, ("header but no rows",)),
    "duplicate_ids": (duplicate_ids, ("'account'", "expect_column_values_to_be_unique", "A000003")),
    "mixed_types": (mixed_types, ("'spend'", "type", "twelve")),
    "renamed_column": (renamed_column, ("'plan'", "missing", "plan_name")),
    "numbers_as_strings": (
        numbers_as_strings,
        ("'visits'", "expect_column_values_to_be_in_type_list", "numbers stored as text"),
    ),
    "not_a_table": (not_a_table, ("binary content",)),
    "text_named_parquet": (text_named_parquet, ("cannot be read as PARQUET",)),
    "empty_file": (empty_file, ("empty",)),
    "missing_file": (missing_file, ("not found",)),
    "unknown_category": (
        unknown_category,
        ("'plan'", "expect_column_values_to_be_in_set", "platinum"),
    ),
    "null_label": (null_label, ("'left'", "expect_column_values_to_not_be_null", "A000005")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_is_rejected_with_a_clear_error(case, tmp_path, capsys):
    """The stage exits 1, says what is wrong and where, and writes no validated table."""
    writer, words = CASES[case]
    contract_path, params_path = write_project(tmp_path)
    data = writer(tmp_path)
    out = tmp_path / "validated.parquet"
    report = tmp_path / "reports" / "validation.json"
    args = ["--data", str(data), "--contract", str(contract_path), "--params", str(params_path)]
    code = main([*args, "--report", str(report), "--out", str(out)])
    error = capsys.readouterr().err
    assert code == 1
    assert str(data) in error
    for word in words:
        assert word in error, f"{word!r} not in:\n{error}"
    assert not out.exists()
    assert report.is_file()
    assert report.with_suffix(".html").is_file()
    assert '"status": "skipped"' in (report.parent / "drift.json").read_text(encoding="utf-8")


def test_failed_run_removes_a_stale_validated_table(tmp_path):
    """A table left by an earlier good run must not outlive a failed one (train would use it)."""
    contract_path, params_path = write_project(tmp_path)
    out = tmp_path / "validated.parquet"
    out.write_bytes(b"from an earlier run")
    data = unknown_category(tmp_path)
    args = ["--data", str(data), "--contract", str(contract_path), "--params", str(params_path)]
    assert main([*args, "--report", str(tmp_path / "v.json"), "--out", str(out)]) == 1
    assert not out.exists()


def test_good_file_passes(tmp_path, monkeypatch):
    """The same contract accepts well-formed data: the cases above fail for their defect alone."""
    monkeypatch.chdir(tmp_path)  # no registry here: drift reports "no reference yet"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # not even a shared one
    contract_path, params_path = write_project(tmp_path)
    data = _csv(tiny_table(300), tmp_path / "good.csv")
    args = ["--data", str(data), "--contract", str(contract_path), "--params", str(params_path)]
    assert main([*args, "--report", "reports/validation.json", "--out", "validated.parquet"]) == 0
    assert len(pd.read_parquet(tmp_path / "validated.parquet")) == 300
    assert '"status": "no_reference"' in (tmp_path / "reports" / "drift.json").read_text()


def test_loader_errors_name_the_file(tmp_path):
    """load_table raises DataError (not a pandas traceback) for each unreadable file."""
    for writer in (wrong_delimiter, header_only, not_a_table, empty_file, missing_file):
        path = writer(tmp_path)
        with pytest.raises(DataError, match=path.name):
            load_table(path)


def test_report_names_offending_rows(tmp_path):
    """A failed value check lists example values and the ids of the rows that hold them."""
    report, table = validate_file(unknown_category(tmp_path), tiny_contract())
    assert table is None
    failed = [c for c in report["checks"] if not c["success"]]
    assert [(c["column"], c["examples"], c["rows"]) for c in failed] == [
        ("plan", ["platinum"], ["A000011"])
    ]
