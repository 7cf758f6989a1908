"""The contract's expectations as data: which Great Expectations each column implies.

`suite.py` builds them into a GE suite (validate, and scoring a chunk that fails), and
`contract_checks.py` decides them vectorised where GE would pass every one. Kept apart from
both so each reads them without importing the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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


def type_names(column: Column) -> list[str]:
    """dtype names that satisfy the column's contract type."""
    names = list(_TYPE_NAMES[column.type])
    if column.type == "integer" and column.nullable:
        names.append("float64")  # a missing value makes pandas read integers as floats
    if column.type == "boolean" and column.nullable:
        names.append("object")  # a missing value makes pandas read True/False as objects
    if column.type == "category" and _integer_codes(column):
        names += _TYPE_NAMES["integer"]
    return names


def _integer_codes(column: Column) -> bool:
    """A category whose values are whole numbers (store 7, customer type 33)."""
    values = column.values or ()
    return bool(values) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


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
        if self.column is None:
            return make(**self.kwargs)
        return make(column=self.column, **self.kwargs)


def suite_specs(contract: Contract) -> list[ExpectationSpec]:
    """The expectations that the contract implies, in contract order, as data."""
    specs = [ExpectationSpec("ExpectTableRowCountToBeBetween", kwargs={"min_value": 1})]
    for name, col in contract.columns.items():
        specs.append(ExpectationSpec("ExpectColumnToExist", name))
        type_list = {"type_list": type_names(col)}
        specs.append(ExpectationSpec("ExpectColumnValuesToBeInTypeList", name, type_list))
        if not col.nullable or name in (contract.id, contract.target):
            specs.append(ExpectationSpec("ExpectColumnValuesToNotBeNull", name))
        if col.unique or name == contract.id:
            specs.append(ExpectationSpec("ExpectColumnValuesToBeUnique", name))
        if col.type == "boolean":
            booleans = {"value_set": [True, False]}
            specs.append(ExpectationSpec("ExpectColumnValuesToBeInSet", name, booleans))
        if col.values is not None:
            allowed = [str(v) for v in col.values] if col.type == "category" else list(col.values)
            if col.type == "category" and _integer_codes(col):
                allowed += list(col.values)  # codes read as numbers (CSV, Parquet) or as text
            value_set = {"value_set": allowed}
            specs.append(ExpectationSpec("ExpectColumnValuesToBeInSet", name, value_set))
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


def build_suite(contract: Contract) -> list[Any]:
    """The Great Expectations 1.x expectations that the contract implies, in contract order."""
    return [spec.build() for spec in suite_specs(contract)]


def _bound(column: Column, value: float | str | None) -> Any:
    if value is None or column.type != "datetime":
        return value
    return datetime.fromisoformat(str(value))
