"""`drift-check`: score any batch against the champion's reference; optionally tell GitHub."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import load_config
from ..contract import load_contract
from ..data import load_table
from ..errors import RefusedError
from ..paths import DRIFT_CHECK_DIR
from .drift_report import drift_report, find_reference, summary_line, write_report
from .notify import NotifyError, build_payload, notify
from .prediction_drift import champion_prediction_drift, prediction_summary


def main(argv: list[str] | None = None) -> int:
    """Compare a data file with the champion's reference profile; write JSON and HTML reports."""
    parser = argparse.ArgumentParser(prog="drift-check", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, help="CSV or Parquet batch to score")
    parser.add_argument("--notify", action="store_true", help="send repository_dispatch on drift")
    parser.add_argument("--reference", type=Path, help="profile file (default: the champion's)")
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=DRIFT_CHECK_DIR, help="report directory")
    args = parser.parse_args(argv)
    contract = load_contract(args.contract)
    config = load_config(args.params)
    settings = config.drift
    reference, source = find_reference(args.reference)
    df = load_table(args.data)
    report = drift_report(reference, source, df, contract, settings, data=str(args.data))
    if args.reference is None:  # the champion's: its answers on the batch against the holdout's
        report["predictions"] = champion_prediction_drift(df, contract, config)
    json_path = args.out / f"{args.data.stem}.json"
    write_report(report, json_path, json_path.with_suffix(".html"))
    print(f"drift-check: {args.data}: {summary_line(report)} (report: {json_path})")
    if "predictions" in report:
        print(f"drift-check: {prediction_summary(report['predictions'])}")
    if args.notify:
        if report["status"] != "drift":
            print("drift-check: nothing to notify")
        else:
            try:
                outcome = notify(
                    build_payload(report, str(json_path)),
                    settings.notify_cooldown_hours,
                )
            except NotifyError as error:
                raise NotifyError(f"notification failed: {error}") from None
            print(f"drift-check: {outcome.message}")
    if report["status"] == "drift" and settings.on_drift == "fail":
        raise RefusedError(
            f"{args.data}: drift; failing because params.yaml drift.on_drift is fail"
        )
    return 0
