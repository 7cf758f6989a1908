"""The validate stage: the contract as a Great Expectations suite, run on the raw data."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..artifacts import write_json, write_parquet, write_text
from ..config import DriftConfig, load_config
from ..contract import Column, Contract, load_contract
from ..contract_checks import suite_specs
from ..data import conform, file_sha256, load_table
from ..errors import DataError, RefusedError
from ..monitoring.drift import DriftError
from ..monitoring.drift_report import (
    drift_report,
    find_reference,
    skipped_report,
    summary_line,
    write_report,
)
from ..paths import DRIFT_REPORT, PARAMS, VALIDATED, VALIDATION_REPORT
from ..reports.pages import render_validation

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
        return f"{where}: {self.expectation}({wanted}) failed: {seen}"


def build_suite(contract: Contract) -> list[Any]:
    """The Great Expectations 1.x expectations that the contract implies, in contract order."""
    return [spec.build() for spec in suite_specs(contract)]


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
            batch_parameters={"dataframe": frame}, result_format=result_format
        )
        return [_check(item, self.contract) for item in result.to_json_dict()["results"]]


def run_suite(
    frame: pd.DataFrame, contract: Contract, expectations: list[Any] | None = None
) -> list[Check]:
    """Run the contract's suite (or `expectations`) once on `frame`."""
    return ContractSuite(contract, expectations).run(frame)


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
            check.error = f"column is missing; the file has {list(df.columns)}"
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
    checks += run_suite(frame, contract)
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


def main(argv: list[str] | None = None) -> int:
    """Validate the raw data against the contract; write the validated table and a report."""
    parser = argparse.ArgumentParser(prog="validate", description=main.__doc__)
    parser.add_argument("--data", type=Path, help="data file (default: params.yaml data.raw)")
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    parser.add_argument("--params", type=Path, default=PARAMS)
    parser.add_argument("--report", type=Path, default=VALIDATION_REPORT)
    parser.add_argument("--out", type=Path, default=VALIDATED)
    parser.add_argument("--reference", type=Path, help="drift profile (default: the champion's)")
    args = parser.parse_args(argv)
    contract = load_contract(args.contract)
    config = load_config(args.params)
    path = args.data or Path(config.data.raw)
    report, table = validate_file(path, contract)
    write_json(args.report, report)
    write_text(args.report.with_suffix(".html"), render_validation(report))
    drift_json = args.report.with_name(DRIFT_REPORT.name)
    if table is None:
        # a table that failed its contract must not be left behind for train to pick up
        args.out.unlink(missing_ok=True)
        skipped = skipped_report("validation failed: drift was not computed", str(path))
        write_report(skipped, drift_json, drift_json.with_suffix(".html"))
        failures = "".join(f"\n  - {line}" for line in report["failures"])
        raise DataError(
            f"{path} does not meet {args.contract}:{failures}\n  (full report: {args.report})"
        )
    checked = len(report["checks"])
    print(f"validate: {path}: {report['rows']} rows meet {args.contract} ({checked} checks)")
    if not _drift_gate(table, contract, config.drift, args, drift_json, str(path)):
        args.out.unlink(missing_ok=True)
        raise RefusedError(f"{path}: drift over params.yaml's limits (report: {drift_json})")
    write_parquet(args.out, table)
    return 0


def _drift_gate(
    table: pd.DataFrame,
    contract: Contract,
    settings: DriftConfig,
    args: argparse.Namespace,
    drift_json: Path,
    data: str,
) -> bool:
    """Compare with the champion's reference, write the drift report; False if drift must fail."""
    try:
        reference, source = find_reference(args.reference)
    except DriftError as error:
        print(f"validate: {error}", file=sys.stderr)
        return False
    drift = drift_report(reference, source, table, contract, settings, data=data)
    write_report(drift, drift_json, drift_json.with_suffix(".html"))
    line = f"validate: drift: {summary_line(drift)} (report: {drift_json.with_suffix('.html')})"
    if drift["status"] != "drift":
        print(line)
        return True
    if settings.on_drift == "fail":
        print(f"{line}; failing because params.yaml drift.on_drift is fail", file=sys.stderr)
        return False
    print(f"{line}; warning only (params.yaml drift.on_drift is warn)", file=sys.stderr)
    return True
