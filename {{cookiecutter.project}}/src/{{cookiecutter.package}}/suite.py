"""The contract as a Great Expectations suite: build it, run it on a table, word what failed.

The validate stage runs it on the raw data; batch scoring runs its row-level part on each
chunk, and the contract drafter reads dates the same way.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .contract import Column, Contract
from .contract_checks import passes
from .data import conform, file_sha256, load_table
from .errors import DataError
from .expectations import ExpectationSpec, build_suite, suite_specs

EXAMPLES = 5


@dataclass
class Check:
    """One expectation's outcome, in words a person can act on."""

    column: str | None
    expectation: str
    success: bool
    expected: dict[str, Any]
    observed: Any = None
    unexpected_count: int = 0
    unexpected_percent: float = 0.0
    examples: list[Any] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)
    error: str | None = None

    def describe(self) -> str:
        """One line: column, expectation, what was expected, what was seen."""
        where = f"column {self.column!r}" if self.column else "table"
        wanted = ", ".join(f"{k}={v!r}" for k, v in self.expected.items())
        if self.error:
            seen = self.error
        elif self.unexpected_count:
            seen = (
                f"{self.unexpected_count} rows ({self.unexpected_percent:.2f}%) outside; "
                f"e.g. {self.examples}"
            )
            seen += f" at ids {self.rows}" if self.rows else ""
        else:
            seen = f"observed {self.observed!r}"
        line = f"{where}: {self.expectation}({wanted}) failed: {seen}"
        todo = self.fix()
        return f"{line}. To fix: {todo}" if todo else line

    def fix(self) -> str:
        """What to do: fix the data, or the contract key that would accept it."""
        key = f"contract.yaml: columns.{self.column}" if self.column else "contract.yaml"
        return {
            "expect_column_to_exist": f"give the data that column again, or rename {key} "
            "to the new name (a renamed feature is a new model: retrain)",
            "expect_column_values_to_be_in_type_list": f"fix the data, or change {key}.type",
            "expect_column_values_to_not_be_null": f"fill the blanks, or allow them with "
            f"{key}.nullable: true",
            "expect_column_values_to_be_unique": "remove the repeated rows: one row per id",
            "expect_column_values_to_be_between": f"fix the data, or widen {key}.min/max "
            "if such values are real",
            "expect_column_mean_to_be_between": f"check the batch (shifted or partial?), or "
            f"widen {key}.mean if the population changed",
            "expect_column_values_to_be_in_set": f"fix the data, or add the new values to "
            f"{key}.values (a new category is unseen by the current model: retrain)",
            "expect_column_values_to_match_strftime_format": f"fix the data, or change {key}",
        }.get(self.expectation, "")


def parse_datetimes(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC, NaT where a value is no date: the one way dates are read."""
    return pd.to_datetime(values, errors="coerce", format="mixed", utc=True).dt.tz_localize(None)


def prepare(df: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, list[Check]]:
    """Parse datetime columns for the suite; report values that are not dates at all."""
    frame = df.copy()
    # GE 1.x compares dtypes by identity and does not know pandas 3's `str` dtype: hand it
    # text columns as `object`, the type it does recognise.
    for name in frame.columns:
        if pd.api.types.is_string_dtype(frame[name].dtype) and frame[name].dtype != object:
            frame[name] = frame[name].astype(object)
    checks = []
    for name, col in contract.columns.items():
        if col.type != "datetime" or name not in frame.columns:
            continue
        raw = frame[name]
        parsed = parse_datetimes(raw)
        bad = raw.notna() & parsed.isna()
        checks.append(
            Check(
                column=name,
                expectation="expect_column_values_to_be_datetimes",
                success=not bad.any(),
                expected={"format": "ISO 8601"},
                unexpected_count=int(bad.sum()),
                unexpected_percent=100.0 * float(bad.mean()),
                examples=raw[bad].head(EXAMPLES).tolist(),
                rows=_ids(frame, contract, bad),
            )
        )
        frame[name] = parsed
    return frame, checks


def _ids(frame: pd.DataFrame, contract: Contract, mask: pd.Series) -> list[Any]:
    if contract.id not in frame.columns:
        # CSV line numbers (the header is line 1)
        lines: list[Any] = (mask[mask].index[:EXAMPLES] + 2).tolist()
        return lines
    ids: list[Any] = frame.loc[mask, contract.id].head(EXAMPLES).tolist()
    return ids


class ContractSuite:
    """A GE context, suite and validation definition built once, run on any number of frames."""

    def __init__(self, contract: Contract, expectations: list[Any] | None = None) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.contract = contract
        context = gx.get_context(mode="ephemeral")  # nothing on disk
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        batch = (
            context.data_sources.add_pandas("contract")
            .add_dataframe_asset("table")
            .add_batch_definition_whole_dataframe("whole")
        )
        suite = context.suites.add(
            gx.ExpectationSuite(
                name=contract.name,
                expectations=build_suite(contract) if expectations is None else expectations,
            )
        )
        self.definition = context.validation_definitions.add(
            gx.ValidationDefinition(name="contract", data=batch, suite=suite)
        )

    def run(self, frame: pd.DataFrame) -> list[Check]:
        """Every expectation's outcome on `frame`."""
        result_format: dict[str, Any] = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": EXAMPLES,
        }
        if self.contract.id in frame.columns:
            result_format["unexpected_index_column_names"] = [self.contract.id]
        result = self.definition.run(
            batch_parameters={"dataframe": _nanosecond_dates(frame)}, result_format=result_format
        )
        return [_check(item, self.contract) for item in result.to_json_dict()["results"]]


def _nanosecond_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates at nanosecond resolution, the one GE compares vectorised (it checks other
    resolutions a value at a time, ~100x slower); the same instants, so the same verdict."""
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_datetime64_dtype(dtype) and dtype != "datetime64[ns]":
            try:
                frame = frame.assign(**{name: frame[name].astype("datetime64[ns]")})
            except (OverflowError, pd.errors.OutOfBoundsDatetime):
                continue  # a date past 2262 has no nanosecond form: GE checks it as it is
    return frame


def run_suite(
    frame: pd.DataFrame, contract: Contract, expectations: list[Any] | None = None
) -> list[Check]:
    """Run the contract's suite (or `expectations`) once on `frame`."""
    return ContractSuite(contract, expectations).run(frame)


def run_checks(frame: pd.DataFrame, contract: Contract) -> list[Check]:
    """Every expectation's outcome on `frame` (as `prepare` gives it).

    When the vectorised checks pass every expectation, GE would pass them too, so its report
    is written without running it (tests/code/test_validate_verdict.py holds the two
    reports equal); otherwise GE decides and explains.
    """
    specs = suite_specs(contract)
    if passes(frame, specs):
        return [_passed(spec, frame) for spec in specs]
    return run_suite(frame, contract)


def _passed(spec: ExpectationSpec, frame: pd.DataFrame) -> Check:
    """The Check GE reports for `spec` when it passes, with the observed value GE gives."""
    observed: Any = None
    if spec.kind == "ExpectTableRowCountToBeBetween":
        observed = len(frame)
    elif spec.kind == "ExpectColumnMeanToBeBetween":
        observed = float(frame[spec.column].mean())
    elif spec.kind == "ExpectColumnValuesToBeInTypeList" and frame[spec.column].dtype != object:
        observed = frame[spec.column].dtype.type.__name__  # GE names the dtype's scalar type
    expected = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in spec.kwargs.items()}
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", spec.kind).lower()  # GE's own snake_case name
    return Check(column=spec.column, expectation=name, success=True, expected=expected,
                 observed=observed)  # fmt: skip


def _check(item: dict[str, Any], contract: Contract) -> Check:
    config, found = item["expectation_config"], item.get("result") or {}
    kwargs = {k: v for k, v in config["kwargs"].items() if k not in ("column", "batch_id")}
    exception = item.get("exception_info") or {}
    error = None
    if exception.get("raised_exception") or (not found and not item["success"]):
        error = "could not be evaluated on this column"
    rows = [
        entry.get(contract.id)
        for entry in found.get("partial_unexpected_index_list") or []
        if isinstance(entry, dict)
    ]
    return Check(
        column=config["kwargs"].get("column"),
        expectation=config["type"],
        success=bool(item["success"]),
        expected=kwargs,
        observed=found.get("observed_value"),
        unexpected_count=int(found.get("unexpected_count") or 0),
        unexpected_percent=float(found.get("unexpected_percent") or 0.0),
        examples=list(found.get("partial_unexpected_list") or [])[:EXAMPLES],
        rows=rows[:EXAMPLES],
        error=error,
    )


_ROOT_CAUSES = ("expect_column_to_exist", "expect_column_values_to_be_in_type_list")

# Checks that mean nothing once a column is mistyped (all of them once it is missing).
_KNOCK_ON = (
    "expect_column_values_to_be_between",
    "expect_column_mean_to_be_between",
    "expect_column_values_to_be_in_set",
)


def _is_knock_on(check: Check, broken: dict[str | None, str]) -> bool:
    cause = broken.get(check.column)
    if cause is None or cause == check.expectation:
        return False
    return cause == "expect_column_to_exist" or check.expectation in _KNOCK_ON


def summarize(checks: list[Check]) -> list[str]:
    """Failure lines, leaving out knock-on failures of a missing or mistyped column."""
    broken: dict[str | None, str] = {}
    for check in checks:
        if not check.success and check.expectation in _ROOT_CAUSES:
            broken.setdefault(check.column, check.expectation)
    return [c.describe() for c in checks if not c.success and not _is_knock_on(c, broken)]


def explain_types(checks: list[Check], df: pd.DataFrame, contract: Contract) -> None:
    """Give a failed type check the offending values, so the fix is obvious."""
    for check in checks:
        if check.success or check.column is None:
            continue
        column = contract.columns[check.column]
        if check.expectation == "expect_column_to_exist":
            check.error = _missing(df, contract)
        elif check.expectation == "expect_column_values_to_be_in_type_list" and check.column in df:
            values = df[check.column]
            if column.type in ("integer", "float"):
                numbers = pd.to_numeric(values, errors="coerce")
                bad = values.notna() & numbers.isna()
                if column.type == "integer":
                    bad |= numbers.notna() & (numbers != numbers.round())
            else:
                bad = pd.Series(False, index=values.index)
            check.expected = {"type": column.type}
            check.error = f"column holds {values.dtype} values"
            if bad.any():
                check.examples = values[bad].head(EXAMPLES).tolist()
                check.rows = _ids(df, contract, bad)
                check.error += f", e.g. {check.examples} at ids {check.rows}"
            else:
                check.error += _type_hint(values, column)


def _missing(df: pd.DataFrame, contract: Contract) -> str:
    """Why a contract column is not in the file: name the file's columns the contract lacks
    (a rename shows up as one of them) rather than listing every column."""
    new = [str(c) for c in df.columns if c not in contract.columns]
    if not new:
        return f"column is missing; the file's {df.shape[1]} columns are all in the contract"
    shown = new[:EXAMPLES] + ([f"... {len(new) - EXAMPLES} more"] if len(new) > EXAMPLES else [])
    return f"column is missing; the file has columns the contract does not list: {shown}"


def _type_hint(values: pd.Series, column: Column) -> str:
    """Why a column whose every value reads as the right kind still has the wrong type."""
    if column.type not in ("integer", "float"):
        return ""
    if pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
        sample = values.dropna().head(EXAMPLES).tolist()
        return f": numbers stored as text, e.g. {sample}; write them as numbers"
    missing = int(values.isna().sum())
    if column.type == "integer" and missing:
        # pandas has no missing integer in a plain column, so one null turns all into floats
        return f" because {missing} value(s) are missing (a missing value makes integers floats)"
    return ""


def validate_file(path: Path, contract: Contract) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Validate one data file; return the report and, when it passed, the conformed table."""
    report: dict[str, Any] = {"file": str(path), "contract": contract.name, "success": False}
    try:
        df = load_table(path)
    except DataError as error:
        report["failures"] = [str(error)]
        report["checks"] = []
        return report, None
    frame, checks = prepare(df, contract)
    checks += run_checks(frame, contract)
    explain_types(checks, df, contract)
    failures = summarize(checks)
    report.update(
        success=not failures,
        rows=len(df),
        sha256=file_sha256(path),
        failures=failures,
        checks=[asdict(c) for c in checks],
    )
    return report, (conform(frame, contract) if not failures else None)
