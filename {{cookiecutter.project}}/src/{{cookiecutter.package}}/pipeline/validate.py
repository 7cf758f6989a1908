"""The validate stage: the contract as a Great Expectations suite, run on the raw data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..artifacts import write_json, write_parquet, write_text
from ..config import DriftConfig, load_config
from ..contract import Contract, load_contract
from ..data_version import unrecorded_change
from ..drift import DriftError
from ..errors import DataError, RefusedError
from ..monitoring.drift_report import (
    drift_report,
    find_reference,
    skipped_report,
    summary_line,
    write_report,
)
from ..paths import DRIFT_REPORT, PARAMS, VALIDATED, VALIDATION_REPORT
from ..reports.pages import render_validation
from ..suite import validate_file


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
    changed = None if args.data else unrecorded_change(path)
    if changed:  # before anything is written: the previous outputs stay as they were
        raise RefusedError(changed)
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
