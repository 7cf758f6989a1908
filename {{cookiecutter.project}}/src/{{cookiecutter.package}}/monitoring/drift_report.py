"""Drift reports: find the champion's reference profile, compare a table, write JSON and HTML."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..artifacts import write_json, write_text
from ..config import DriftConfig
from ..contract import Contract
from ..drift import compare, load_reference
from ..registry import REFERENCE_FILE, REGISTRY_DIR


def champion_reference(root: str | Path = REGISTRY_DIR) -> tuple[dict[str, Any] | None, str]:
    """The champion's reference profile and where it came from, or None and why there is none."""
    root = Path(root)
    # opening an MLflow store creates it: with no registry yet there is surely no champion
    if not os.environ.get("MLFLOW_TRACKING_URI") and not (root / "mlflow.db").is_file():
        return None, f"no reference yet: no registry at {root}"
    from ..registry import Registry

    registry = Registry(root=root)
    champion = registry.get_alias("champion")
    if champion is None:
        return None, "no reference yet: the registry has no champion"
    path = registry.artifact_path(champion.version, REFERENCE_FILE)
    if not path.is_file():
        return (
            None,
            f"no reference yet: champion version {champion.version} has no {REFERENCE_FILE}",
        )
    return load_reference(path), f"champion version {champion.version} ({REFERENCE_FILE})"


def find_reference(
    explicit: Path | None, root: str | Path = REGISTRY_DIR
) -> tuple[dict[str, Any] | None, str]:
    """A profile given on the command line, else the champion's."""
    if explicit is not None:
        return load_reference(explicit), str(explicit)
    return champion_reference(root)


def drift_report(
    reference: dict[str, Any] | None,
    source: str,
    df: pd.DataFrame,
    contract: Contract,
    settings: DriftConfig,
    data: str = "",
) -> dict[str, Any]:
    """Compare `df` with the reference; with no reference, a report that says so."""
    if reference is None:
        return {"status": "no_reference", "message": source, "reference": None, "data": data}
    report = compare(reference, df, contract, settings.limits())
    return {"data": data, "reference": source, **report}


def skipped_report(reason: str, data: str = "") -> dict[str, Any]:
    """A drift report for a run that never got to compare (e.g. validation failed first)."""
    return {"status": "skipped", "message": reason, "reference": None, "data": data}


def write_report(report: dict[str, Any], json_path: Path, html_path: Path) -> None:
    """Write the drift report as JSON (machines) and one offline HTML page (people)."""
    from ..reports.pages import render_drift

    write_json(json_path, report)
    write_text(html_path, render_drift(report))


def summary_line(report: dict[str, Any]) -> str:
    """One line for the terminal: the verdict and the worst features."""
    status = report["status"]
    if status == "drift":
        worst = ", ".join(
            f"{f['feature']} (PSI {f['psi']:.3f})" if f["psi"] is not None else f["feature"]
            for f in report["features"]
            if f["verdict"] == "drift"
        )
        return (
            f"drift in {len(report['drifted'])} feature(s) against {report['reference']}: {worst}"
        )
    if status == "ok":
        return f"no drift against {report['reference']} (max PSI {report['max_psi']:.3f})"
    if status == "too_few_rows":
        rows, least = report["rows"]["current"], report["limits"]["min_rows"]
        return f"too few rows to judge drift ({rows} < {least})"
    return str(report.get("message", status))
