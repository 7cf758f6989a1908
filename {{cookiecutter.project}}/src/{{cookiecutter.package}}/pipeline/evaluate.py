"""The evaluate stage: metrics with confidence intervals, slices, fairness, behaviour, plots."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from .. import task_report
from ..artifacts import read_json, write_text
from ..config import Config, EvaluateConfig, load_config
from ..contract import Contract, load_contract
from ..data import features_and_target
from ..errors import DataError
from ..evaluation import baseline, fairness, headline_metrics, invariances, lift, slice_metrics
from ..model_io import load_model
from ..paths import CARD, HOLDOUT, META, METRICS, MODEL, MODEL_REPORT, PLOTS
from ..records import Metrics, write_record
from ..reports import model_report
from ..reports.model_card import permutation_importances, render_card
from ..task_pipeline import RUNTIME, evaluate_task, plot_tables, task_data

MAX_PLOT_POINTS = 400  # enough for a smooth curve; keeps the CSVs small in git diffs


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) <= MAX_PLOT_POINTS:
        return frame
    keep = np.unique(np.linspace(0, len(frame) - 1, MAX_PLOT_POINTS).astype(int))
    return frame.iloc[keep]


def curve_tables(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, pd.DataFrame]:
    """ROC, precision-recall, calibration and confusion data."""
    fpr, tpr, _ = roc_curve(y, scores)
    precision, recall, _ = precision_recall_curve(y, scores)
    observed, predicted = calibration_curve(y, scores, n_bins=10, strategy="quantile")
    return {
        "roc": _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr})),
        "pr": _thin(pd.DataFrame({"recall": recall, "precision": precision})),
        "calibration": pd.DataFrame({"mean_predicted": predicted, "fraction_positive": observed}),
        "confusion": pd.DataFrame({"actual": y, "predicted": (scores >= threshold).astype(int)}),
    }


def write_plots(tables: dict[str, pd.DataFrame], out: Path = PLOTS) -> None:
    """The curve tables as CSV for `dvc plots`."""
    for name, table in tables.items():
        write_text(out / f"{name}.csv", table.to_csv(index=False, float_format="%.6g"))


def evaluate(
    model: Any, holdout: pd.DataFrame, contract: Contract, settings: EvaluateConfig
) -> tuple[Metrics, np.ndarray, np.ndarray]:
    """Score the holdout once; return what the gate will judge, the labels and the scores."""
    X, y = features_and_target(holdout, contract)
    scores = model.predict_proba(X)[:, 1]
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{MODEL}: the model returned non-finite scores on the holdout")
    headline = headline_metrics(y, scores, settings)
    headline["lift_at_5pct"] = lift(headline["precision_at_5pct"], float(y.mean()))
    metrics = Metrics.model_validate(
        {
            "n": len(y),
            "positives": int(y.sum()),
            "prevalence": float(y.mean()),
            "level": settings.level,
            "metrics": headline,
            "baseline": baseline(holdout, y, scores, contract, settings),
            "slices": slice_metrics(holdout, y, scores, contract, settings),
            "fairness": fairness(holdout, y, scores, contract, settings),
            "invariances": invariances(model, X, contract),
            "importance": permutation_importances(model, X, y, seed=settings.bootstrap_seed),
        }
    )
    return metrics, y, scores


def main(argv: list[str] | None = None) -> int:
    """Evaluate the trained model on the holdout; write metrics, plots and the model report."""
    parser = argparse.ArgumentParser(prog="evaluate", description=main.__doc__)
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    args = parser.parse_args(argv)
    config = load_config()
    settings = config.evaluate
    model = load_model(MODEL, method=RUNTIME[config.task].method)
    contract = load_contract(args.contract)
    if config.task != "binary":  # binary writes its own record (evaluation.py), the others TASKS'
        return evaluate_other_task(model, contract, config)
    try:
        result, y, scores = evaluate(model, pd.read_parquet(HOLDOUT), contract, settings)
    except ValueError as error:  # a holdout the metrics cannot be computed on
        raise DataError(f"{HOLDOUT}: {error}") from None
    tables = curve_tables(y, scores, settings.threshold)
    write_plots(tables)
    write_record(METRICS, result)
    write_text(MODEL_REPORT, model_report.render(result, tables))
    write_text(CARD, render_card(model, result, read_json(META), contract))
    auc = result.metrics["roc_auc"]
    print(f"evaluate: ROC AUC {auc.value:.4f} {model_report.interval_text(auc)} on {result.n} rows")
    return 0


def evaluate_other_task(model: Any, contract: Contract, config: Config) -> int:
    """A multiclass or regression model: its task's metrics, baselines, slices and plots."""
    holdout = pd.read_parquet(HOLDOUT)
    try:
        # the constant baselines are fitted on the holdout itself: an optimistic bar to clear
        y_fit = task_data(holdout, contract, config.task)[1]
        result, y, prediction = evaluate_task(model, holdout, y_fit, contract, config)
    except ValueError as error:  # a holdout the metrics cannot be computed on
        raise DataError(f"{HOLDOUT}: {error}") from None
    write_plots(plot_tables(config.task, y, prediction, result.classes))
    write_record(METRICS, result)
    write_text(MODEL_REPORT, task_report.render_report(result, contract))
    write_text(CARD, task_report.render_card(result, read_json(META), contract))
    headline = task_report.interval_text(result.metrics[result.headline])
    print(f"evaluate: {config.task} {result.headline} {headline} on {result.n} rows")
    return 0
