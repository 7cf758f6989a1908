"""Reading tables: CSV or Parquet in, a clear error out when the file is not what we expect."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .contract import Contract
from .errors import DataError

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_OTHER_DELIMITERS = (";", "\t", "|")
# Conformed to text: booleans become "True"/"False", so a file, a Parquet table and a request
# all give the model the same two categories.
TEXT_TYPES = ("string", "category", "boolean")


def load_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; raise DataError naming the file and the problem."""
    path = Path(path)
    kind = readable_kind(path)
    try:
        df = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as error:
        raise unreadable(path, kind, error) from None
    check_columns(path, kind, df)
    if df.empty:
        raise no_rows(path)
    return df


def readable_kind(path: Path) -> str:
    """The reader ("csv" or "parquet") for a file worth reading; DataError for one that is not."""
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; expected .csv or .parquet")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; expected a header and at least one row")
    if kind == "csv":
        with path.open("rb") as handle:
            head = handle.read(4096)
        if b"\x00" in head:
            raise DataError(f"{path}: binary content; expected a comma-separated text file")
    return kind


def check_columns(path: Path, kind: str, df: pd.DataFrame) -> None:
    """Refuse a CSV whose single column is a header written with another delimiter."""
    if kind != "csv" or df.shape[1] != 1:
        return
    header = str(df.columns[0])
    for delimiter in _OTHER_DELIMITERS:
        if delimiter in header:
            raise DataError(
                f"{path}: looks {delimiter!r}-delimited (header {header[:60]!r}); "
                "expected comma-separated values"
            )


def unreadable(path: Path, kind: str, error: Exception) -> DataError:
    """The error for a file its reader cannot parse."""
    return DataError(f"{path}: cannot be read as {kind.upper()}: {error}")


def no_rows(path: Path) -> DataError:
    """The error for a table with a header and nothing under it."""
    return DataError(f"{path}: has a header but no rows; expected at least one row")


def conform(df: pd.DataFrame, contract: Contract, columns: list[str] | None = None) -> pd.DataFrame:
    """Give each contract column (or each of `columns`) its canonical dtype, once validated."""
    names = list(contract.columns) if columns is None else columns
    out = df[names].copy()
    for name in names:
        column = contract.columns[name]
        if column.type == "datetime":
            out[name] = pd.to_datetime(out[name], utc=True).dt.tz_localize(None)
        elif column.type in TEXT_TYPES:
            values = out[name]
            if pd.api.types.infer_dtype(values, skipna=True) != "string":  # booleans, numbers
                values = values.map(lambda v: v if pd.isna(v) else str(v))
            out[name] = values.astype("str")
        elif column.type == "float" or (column.type == "integer" and out[name].isna().any()):
            out[name] = pd.to_numeric(out[name]).astype("float64")
        else:
            out[name] = pd.to_numeric(out[name]).astype("int64")
    return out


def features_and_target(df: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, np.ndarray]:
    """Split a conformed table into the model's input columns and a 0/1 target."""
    positive = contract.positive
    if contract.columns[contract.target].type in TEXT_TYPES:
        positive = str(positive)  # the conformed column holds text (True -> "True")
    y = (df[contract.target] == positive).to_numpy(dtype=np.int64)
    return df[contract.feature_columns], y


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hash a file in chunks so large data never sits in memory twice."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_log_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of one JSON-lines log (the server's prediction log), and whether its last line was torn by a crash (skipped)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    records, torn = [], 0
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) and not text.endswith("\n"):
                torn = 1  # the writer was killed mid-line
                continue
            raise DataError(f"{path}:{number}: not a JSON prediction record") from None
    return records, torn
