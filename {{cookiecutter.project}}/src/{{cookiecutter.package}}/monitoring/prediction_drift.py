"""Drift of the prediction distribution: the champion's answers on a batch against its answers
on the holdout, for every task.

What is compared is each number `tasks.outputs.watched` names: a binary model's score, a
regression's value, each class's probability for multiclass. Each is binned at the holdout
predictions' quantiles and judged by PSI against `drift.psi_threshold`, as features are.
Features can stay put while the model's answers move (an interaction it learnt shifts), and
answers can stay put while features drift: the report gives both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..config import Config
from ..contract import Contract
from ..data import conform
from ..drift import psi, quantile_edges
from ..errors import ExpectedError
from ..paths import HOLDOUT
from ..registry import REGISTRY_DIR
from ..task_pipeline import predict
from ..tasks.outputs import watched
from ..tasks.table import TASKS

Floats = NDArray[np.float64]


def counts(values: Floats, edges: Floats) -> list[int]:
    """How many values fall in each bin (right-closed: a value on an edge goes left)."""
    bins = np.searchsorted(edges, values, side="left")
    return [int(n) for n in np.bincount(bins, minlength=edges.size + 1)]


def compare_predictions(
    reference: Mapping[str, Floats],
    current: Mapping[str, Floats],
    bins: int,
    threshold: float,
    floor: float,
    min_rows: int,
) -> dict[str, Any]:
    """PSI of each watched number, current against reference, and the verdict."""
    rows = len(next(iter(current.values()))) if current else 0
    entries = []
    for name, values in reference.items():
        edges = quantile_edges(values, bins)
        ref_counts, cur_counts = counts(values, edges), counts(current[name], edges)
        value = psi(ref_counts, cur_counts, floor)
        entries.append({
            "watched": name, "psi": value, "edges": edges.tolist(),
            "reference_counts": ref_counts, "current_counts": cur_counts,
            "verdict": "drift" if value > threshold else "ok",
        })  # fmt: skip
    status = "drift" if any(e["verdict"] == "drift" for e in entries) else "ok"
    if rows < min_rows:
        status = "too_few_rows"
    return {"status": status, "rows": rows, "threshold": threshold, "watched": entries}


def champion_prediction_drift(
    df: pd.DataFrame,
    contract: Contract,
    config: Config,
    root: Path = REGISTRY_DIR,
    holdout: Path = HOLDOUT,
) -> dict[str, Any]:
    """The champion's predictions on `df` against its predictions on the holdout."""
    from ..registry import Registry
    from ..serve.loading import load_pinned

    # opening an MLflow store creates it: with no registry yet there is surely no champion
    local = not os.environ.get("MLFLOW_TRACKING_URI")
    if (local and not (root / "mlflow.db").is_file()) or not holdout.is_file():
        where = f"{root}/ and {holdout}" if local else str(holdout)
        return {"status": "no_reference", "message": f"no prediction drift: needs {where}"}
    try:
        registry = Registry(root=root)
        champion = registry.get_alias("champion")
        if champion is None:
            return {"status": "no_reference", "message": "the registry has no champion"}
        predictor, _ = load_pinned(registry, champion, contract)
        answers = {}
        for name, table in (("reference", pd.read_parquet(holdout)), ("current", df)):
            X = conform(table, contract, contract.feature_columns)
            prediction = predict(predictor.model, X, predictor.task, predictor.classes)
            answers[name] = watched(TASKS[predictor.task].outputs, prediction, predictor.classes)
    except (ExpectedError, KeyError, ValueError, TypeError) as error:  # e.g. a column missing
        return {"status": "skipped", "message": f"no prediction drift: {error}"}
    settings = config.drift
    report = compare_predictions(
        answers["reference"], answers["current"], settings.bins, settings.psi_threshold,
        settings.psi_floor, settings.min_rows,
    )  # fmt: skip
    return {"model_version": champion.version, "task": predictor.task, **report}


def prediction_summary(report: Mapping[str, Any]) -> str:
    """One line for the terminal."""
    if report["status"] in ("no_reference", "skipped"):
        return str(report["message"])
    worst = max(report["watched"], key=lambda e: e["psi"])
    head = f"v{report['model_version']} predictions: {report['status']}"
    return f"{head} (largest PSI {worst['psi']:.3f}, {worst['watched']}; {report['rows']} rows)"
