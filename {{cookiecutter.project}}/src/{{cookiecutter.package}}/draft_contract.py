"""`make contract DATA=path`: draft contract.yaml from your own data, for you to review."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .contract import ContractError, parse_contract
from .data import DataError, load_table
from .params import PARAMS

MAX_CATEGORIES = 30
RAW_DIR = Path("data/raw")


def infer_column(values: pd.Series) -> dict[str, Any]:
    """A column entry from observed values; ranges are widened so new data is not refused at once."""
    spec: dict[str, Any] = {}
    present = values.dropna()
    if pd.api.types.is_bool_dtype(values) or (
        pd.api.types.is_integer_dtype(present) and set(present.unique()) <= {0, 1}
    ):
        spec = {"type": "integer", "values": [0, 1]}
    elif pd.api.types.is_numeric_dtype(values):
        integral = bool(len(present)) and bool((present == present.round()).all())
        low, high = float(present.min()), float(present.max())
        margin = 0.1 * (high - low)
        kind = "integer" if integral else "float"
        spec = {"type": kind, "min": _round(low - margin, kind), "max": _round(high + margin, kind)}
        mean, spread = float(present.mean()), float(present.std() or abs(present.mean()) or 1.0)
        spec["mean"] = [round(mean - spread, 4), round(mean + spread, 4)]
    else:
        as_dates = pd.to_datetime(present, errors="coerce", format="mixed")
        if len(present) and as_dates.notna().mean() > 0.98:
            latest = as_dates.max()
            spec = {
                "type": "datetime",
                "min": str(as_dates.min().date()),
                "max": str((latest + pd.Timedelta(days=365)).date()),
                "reference": str((latest + pd.Timedelta(days=1)).date()),
            }
        elif present.nunique() <= MAX_CATEGORIES:
            spec = {"type": "category", "values": sorted(str(v) for v in present.unique())}
        else:
            spec = {"type": "string"}
    if values.isna().any():
        spec["nullable"] = True
    return spec


def _round(value: float, kind: str) -> float | int:
    return int(value // 1 if value < 0 else value) if kind == "integer" else round(value, 4)


def guess_id(df: pd.DataFrame) -> str:
    """The first all-unique text or integer column whose name looks like an id."""
    for name in df.columns:
        if re.search(r"(^|_)id$|_id$|^id_", str(name).lower()) and df[name].is_unique:
            return str(name)
    raise DataError("no id column found: pass --id NAME (a column with one unique value per row)")


def guess_target(df: pd.DataFrame, id_column: str) -> str:
    """The last two-valued column: targets usually come last."""
    for name in reversed(df.columns):
        if name != id_column and df[name].dropna().nunique() == 2:
            return str(name)
    raise DataError("no two-valued target column found: pass --target NAME")


def draft(df: pd.DataFrame, name: str, id_column: str | None, target: str | None) -> dict[str, Any]:
    """A contract mapping for `df`; the caller validates it with parse_contract."""
    id_column = id_column or guess_id(df)
    target = target or guess_target(df, id_column)
    for role, column in (("id", id_column), ("target", target)):
        if column not in df.columns:
            raise DataError(f"--{role} {column!r} is not a column; the data has {list(df.columns)}")
    columns = {str(c): infer_column(df[c]) for c in df.columns}
    columns[id_column] = {"type": "string", "unique": True}
    positive = sorted(df[target].dropna().unique(), key=str)[-1]
    return {
        "name": name,
        "version": 1,
        "id": id_column,
        "target": target,
        "positive": positive.item() if hasattr(positive, "item") else positive,
        "columns": columns,
        "slices": {},
        "protected": [],
        "invariances": [],
    }


def point_params_at(data_file: Path, params: Path = PARAMS) -> None:
    """Set `data.raw` in params.yaml, keeping its comments (a line edit, not a YAML rewrite)."""
    text = params.read_text(encoding="utf-8")
    updated, count = re.subn(
        r"(?m)^(  raw: ).*$", lambda m: f"{m.group(1)}{data_file.as_posix()!s}", text, count=1
    )
    if count != 1:
        raise ContractError(f"{params}: no `data.raw` line to update")
    params.write_text(updated, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Draft contract.yaml from a CSV or Parquet file and make it the pipeline's raw data."""
    parser = argparse.ArgumentParser(prog="contract", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--id", help="id column (default: guessed from names like customer_id)")
    parser.add_argument("--target", help="0/1 target column (default: the last two-valued column)")
    parser.add_argument("--out", type=Path, default=Path("contract.yaml"))
    parser.add_argument("--force", action="store_true", help="overwrite an existing contract")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        print(
            f"contract: {args.out} exists; review it by hand, or pass --force to redraft",
            file=sys.stderr,
        )
        return 1
    try:
        df = load_table(args.data)
        raw = draft(df, args.data.stem, args.id, args.target)
        parse_contract(raw, source=str(args.data))
    except (DataError, ContractError) as error:
        print(f"contract: {error}", file=sys.stderr)
        return 1
    destination = RAW_DIR / f"dataset{args.data.suffix.lower()}"
    destination.parent.mkdir(parents=True, exist_ok=True)
    if args.data.resolve() != destination.resolve():
        shutil.copyfile(args.data, destination)
    header = "# Drafted from your data by `make contract`. Review every range and add slices,\n# protected attributes and invariances: the pipeline enforces what this file says.\n"
    args.out.write_text(
        header + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    point_params_at(destination)
    print(
        f"contract: drafted {args.out} ({len(raw['columns'])} columns, id {raw['id']!r}, target {raw['target']!r}); data at {destination}"
    )
    return 0
