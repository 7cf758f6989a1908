"""A vectorised verdict on a table: the contract's row-level expectations without GE.

`expectations.suite_specs` says, as data, which Great Expectations the contract implies (the
validate stage builds its GE suite from them). `passes` runs the row-level ones as numpy
comparisons, one pass per column, with GE's own semantics (a dtype in the type list, `isin` for allowed values,
inclusive bounds, nulls skipped by value checks). It answers True only when GE would pass
every one; a dtype or an expectation it cannot decide answers False, and the caller asks GE,
which decides and explains. So a table is never accepted that GE would refuse, and a refusal
always reads the way the validate stage's does, while a clean table never pays for GE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .expectations import ExpectationSpec


def passes(frame: pd.DataFrame, specs: Sequence[ExpectationSpec]) -> bool:
    """True only if Great Expectations would pass every spec on `frame` (as `prepare` gives it)."""
    for spec in specs:
        if spec.kind == "ExpectTableRowCountToBeBetween":
            if not _row_count_between(frame, **spec.kwargs):
                return False
            continue
        if spec.column is None or spec.column not in frame.columns:
            return False  # another table-level one, or a missing column: GE decides
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


def _row_count_between(frame: pd.DataFrame, min_value: Any = None, max_value: Any = None) -> bool:
    return (min_value is None or len(frame) >= min_value) and (
        max_value is None or len(frame) <= max_value
    )


def _mean_between(values: pd.Series, min_value: Any = None, max_value: Any = None) -> bool:
    if not isinstance(values.dtype, np.dtype) or values.dtype.kind not in "iuf":
        return False  # extension types, text, booleans, dates: GE decides
    mean = values.mean()  # what GE computes: the mean of the values present
    if pd.isna(mean):
        return False
    return (min_value is None or mean >= min_value) and (max_value is None or mean <= max_value)


def _exists(values: pd.Series) -> bool:
    return True  # `passes` has already found the column


_CHECKS: dict[str, Any] = {
    "ExpectColumnToExist": _exists,
    "ExpectColumnValuesToBeInTypeList": _in_type_list,
    "ExpectColumnValuesToNotBeNull": _not_null,
    "ExpectColumnValuesToBeUnique": _unique,
    "ExpectColumnValuesToBeInSet": _in_set,
    "ExpectColumnValuesToBeBetween": _between,
    "ExpectColumnMeanToBeBetween": _mean_between,
}
