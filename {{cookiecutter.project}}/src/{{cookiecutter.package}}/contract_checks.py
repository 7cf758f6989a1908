"""The contract's expectations as plain data, and a vectorised verdict on a table.

`suite_specs` says which Great Expectations the contract implies; the validate stage builds
its GE suite from them. `passes` runs the row-level ones as numpy comparisons, one pass per
column, with GE's own semantics (a dtype in the type list, `isin` for allowed values,
inclusive bounds, nulls skipped by value checks). It answers True only when GE would pass
every one; a dtype or an expectation it cannot decide answers False, and the caller asks GE,
which decides and explains. So a table is never accepted that GE would refuse, and a refusal
always reads the way the validate stage's does, while a clean table never pays for GE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from .contract import Column, Contract

_TYPE_NAMES = {
    "integer": ["int64", "int32", "int16", "int8", "Int64", "uint8", "uint16", "uint32", "uint64"],
    "float": ["float64", "float32", "Float64", "int64", "int32", "Int64"],
    "string": ["object", "str"],
    "category": ["object", "str"],
    "boolean": ["bool", "boolean"],
    "datetime": [
        "datetime64",
        "datetime64[ns]",
        "datetime64[us]",
        "datetime64[ms]",
        "datetime64[s]",
    ],
}
# Expectations about the whole table, not about each row: a chunk of a file cannot be judged
# on them (its row count or its mean says nothing about the file's).
TABLE_LEVEL = ("ExpectTableRowCountToBeBetween", "ExpectColumnMeanToBeBetween")


@dataclass(frozen=True)
class ExpectationSpec:
    """One GE expectation as data: its class name in `gx.expectations` and its arguments."""

    kind: str
    column: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        """The Great Expectations object (imports GE: seconds, so only when it is needed)."""
        import great_expectations as gx

        make = getattr(gx.expectations, self.kind)
        return (
            make(**self.kwargs) if self.column is None else make(column=self.column, **self.kwargs)
        )


def type_names(column: Column) -> list[str]:
    """dtype names that satisfy the column's contract type."""
    names = list(_TYPE_NAMES[column.type])
    if column.type == "integer" and column.nullable:
        names.append("float64")  # a missing value makes pandas read integers as floats
    if column.type == "boolean" and column.nullable:
        names.append("object")  # a missing value makes pandas read True/False as objects
    if column.type == "category" and all(isinstance(v, int) for v in column.values or ()):
        names += _TYPE_NAMES["integer"]
    return names


def suite_specs(contract: Contract) -> list[ExpectationSpec]:
    """The expectations that the contract implies, in contract order."""
    specs = [ExpectationSpec("ExpectTableRowCountToBeBetween", kwargs={"min_value": 1})]
    for name, col in contract.columns.items():
        specs.append(ExpectationSpec("ExpectColumnToExist", name))
        specs.append(
            ExpectationSpec(
                "ExpectColumnValuesToBeInTypeList", name, {"type_list": type_names(col)}
            )
        )
        if not col.nullable or name in (contract.id, contract.target):
            specs.append(ExpectationSpec("ExpectColumnValuesToNotBeNull", name))
        if col.unique or name == contract.id:
            specs.append(ExpectationSpec("ExpectColumnValuesToBeUnique", name))
        if col.type == "boolean":
            specs.append(
                ExpectationSpec("ExpectColumnValuesToBeInSet", name, {"value_set": [True, False]})
            )
        if col.values is not None:
            allowed = [str(v) for v in col.values] if col.type == "category" else list(col.values)
            specs.append(
                ExpectationSpec("ExpectColumnValuesToBeInSet", name, {"value_set": allowed})
            )
        if col.min is not None or col.max is not None:
            bounds = {"min_value": _bound(col, col.min), "max_value": _bound(col, col.max)}
            specs.append(ExpectationSpec("ExpectColumnValuesToBeBetween", name, bounds))
        if col.mean is not None:
            mean = {"min_value": col.mean[0], "max_value": col.mean[1]}
            specs.append(ExpectationSpec("ExpectColumnMeanToBeBetween", name, mean))
    return specs


def row_level_specs(contract: Contract) -> list[ExpectationSpec]:
    """The expectations each row of an unlabelled table must meet (what scoring checks)."""
    return [
        spec
        for spec in suite_specs(contract)
        if spec.kind not in TABLE_LEVEL and spec.column != contract.target
    ]


def _bound(column: Column, value: float | str | None) -> Any:
    if value is None or column.type != "datetime":
        return value
    return datetime.fromisoformat(str(value))


def passes(frame: pd.DataFrame, specs: Sequence[ExpectationSpec]) -> bool:
    """True only if Great Expectations would pass every spec on `frame` (as `prepare` gives it)."""
    for spec in specs:
        if spec.column is None or spec.column not in frame.columns:
            return False  # table-level, or a missing column: GE decides and explains
        check = _CHECKS.get(spec.kind)
        if check is None or not check(frame[spec.column], **spec.kwargs):
            return False
    return True


def _in_type_list(values: pd.Series, type_list: list[str]) -> bool:
    dtype = values.dtype
    if pd.api.types.is_object_dtype(dtype):
        # GE checks each value of an object column with isinstance; a column of text passes
        # "str". Anything else (numbers, booleans, a mix, nothing at all) is left to GE.
        return "str" in type_list and pd.api.types.infer_dtype(values, skipna=True) == "string"
    # other dtypes: GE compares the dtype with np.dtype(name) for each name in the list
    return isinstance(dtype, np.dtype) and dtype.name in type_list


def _not_null(values: pd.Series) -> bool:
    return bool(values.notna().all())


def _unique(values: pd.Series) -> bool:
    return not values.dropna().duplicated().any()


def _in_set(values: pd.Series, value_set: list[Any]) -> bool:
    return bool(values.dropna().isin(value_set).all())


def _between(values: pd.Series, min_value: Any = None, max_value: Any = None) -> bool:
    if pd.api.types.is_datetime64_dtype(values.dtype):
        low = None if min_value is None else pd.Timestamp(min_value)
        high = None if max_value is None else pd.Timestamp(max_value)
    elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
        values.dtype
    ):
        low, high = min_value, max_value
    else:
        return False  # text, objects, extension types: GE decides
    present = values.dropna()
    inside = np.ones(len(present), dtype=bool)
    if low is not None:
        inside &= (present >= low).to_numpy()
    if high is not None:
        inside &= (present <= high).to_numpy()
    return bool(inside.all())


def _exists(values: pd.Series) -> bool:
    return True  # `passes` has already found the column


_CHECKS: dict[str, Any] = {
    "ExpectColumnToExist": _exists,
    "ExpectColumnValuesToBeInTypeList": _in_type_list,
    "ExpectColumnValuesToNotBeNull": _not_null,
    "ExpectColumnValuesToBeUnique": _unique,
    "ExpectColumnValuesToBeInSet": _in_set,
    "ExpectColumnValuesToBeBetween": _between,
}
