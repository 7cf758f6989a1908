"""The one-page model report: metrics with intervals, slices, fairness, behaviour and curves."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..records import Estimate, Metrics
from .pages import render_model_report

FAIRNESS_MEASURES = ("disparate_impact", "equalized_odds_gap")


def interval_text(entry: Estimate | None) -> str:
    """`[low, high]` of an estimate, or nothing for one without an interval."""
    if entry is None or entry.low is None or entry.high is None:
        return ""
    return f"[{entry.low:.4f}, {entry.high:.4f}]"


def number_text(value: float | None, digits: int = 4) -> str:
    """A number with fixed decimals (0.8760 stays 0.8760), or a dash where it is not defined."""
    return "-" if value is None else f"{value:.{digits}f}"


def _curve(table: pd.DataFrame, x: str, y: str) -> dict[str, list[float]]:
    return {"x": table[x].round(5).tolist(), "y": table[y].round(5).tolist()}


def build(metrics: Metrics, curves: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The report's content from metrics.json and the plot tables, in the renderer's shape."""
    level = f"{metrics.level:.0%}"
    auc = metrics.metrics["roc_auc"]
    return {
        "title": "Model report",
        "subtitle": f"{metrics.n} holdout rows, {metrics.positives} positives; intervals at {level}",
        "summary": {"ROC AUC": f"{auc.value:.4f} {interval_text(auc)}", "rows": metrics.n},
        "sections": [*_table_sections(metrics, level), *_curve_sections(curves)],
    }


def _rows(metrics: Metrics) -> dict[str, list[list[Any]]]:
    """The rows of each table: headline metrics, slices, fairness, behaviour."""
    headline = [
        [name, entry.value, interval_text(entry), entry.method]
        for name, entry in metrics.metrics.items()
    ]
    baseline = metrics.baseline
    headline.append(
        [
            f"baseline ({baseline.name})",
            baseline.roc_auc.value,
            interval_text(baseline.roc_auc),
            "roc_auc",
        ]
    )
    gain = baseline.auc_gain
    headline.append(
        ["roc_auc gain over the baseline", gain.value, interval_text(gain), gain.method]
    )
    slices = [
        [
            name,
            s.n,
            s.positives,
            s.roc_auc.value if s.judged and s.roc_auc else s.reason,
            interval_text(s.roc_auc),
        ]
        for name, s in metrics.slices.items()
    ]
    fairness_summary = [
        [attribute, measure, getattr(entry, measure).value, interval_text(getattr(entry, measure))]
        for attribute, entry in metrics.fairness.items()
        for measure in FAIRNESS_MEASURES
    ]
    fairness = [
        [attribute, group, g.n, g.positive_rate, g.tpr, g.fpr]
        for attribute, entry in metrics.fairness.items()
        for group, g in entry.groups.items()
    ]
    behaviour = [
        [
            name,
            f"{r.column}: {r.change[0]} -> {r.change[1]}",
            r.direction,
            r.share,
            r.share >= r.min_share,
        ]
        for name, r in metrics.invariances.items()
    ]
    return {
        "headline": headline,
        "slices": slices,
        "fairness_summary": fairness_summary,
        "fairness": fairness,
        "behaviour": behaviour,
    }


def _table_sections(metrics: Metrics, level: str) -> list[dict[str, Any]]:
    """The report's tables, each with its columns."""
    rows = _rows(metrics)
    headline, slices = rows["headline"], rows["slices"]
    fairness_summary, fairness, behaviour = (
        rows["fairness_summary"],
        rows["fairness"],
        rows["behaviour"],
    )
    return [
        {
            "title": "Metrics",
            "table": {
                "columns": ["metric", "value", f"{level} interval", "method"],
                "rows": headline,
            },
        },
        {
            "title": "Slices",
            "table": {
                "columns": ["slice", "rows", "positives", "ROC AUC", "interval"],
                "rows": slices,
            },
        },
        {
            "title": "Fairness",
            "table": {
                "columns": ["attribute", "measure", "value", f"{level} interval"],
                "rows": fairness_summary,
            },
        },
        {
            "title": "Fairness by group",
            "table": {
                "columns": ["attribute", "group", "rows", "positive rate", "TPR", "FPR"],
                "rows": fairness,
            },
        },
        {
            "title": "Behaviour",
            "table": {
                "columns": ["rule", "change", "direction", "share", "holds"],
                "rows": behaviour,
            },
        },
        {
            "title": "Permutation importance",
            "text": "Drop in holdout ROC AUC when one input column is shuffled.",
            "table": {
                "columns": ["feature", "ROC AUC drop", "std"],
                "rows": [[i.feature, i.auc_drop, i.std] for i in metrics.importance],
            },
        },
    ]


def _curve_sections(curves: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """The ROC, precision-recall and calibration charts."""
    return [
        {
            "title": "ROC curve",
            "lines": {
                "series": {"model": _curve(curves["roc"], "fpr", "tpr")},
                "x_label": "false-positive rate",
                "y_label": "true-positive rate",
            },
        },
        {
            "title": "Precision-recall curve",
            "lines": {
                "series": {"model": _curve(curves["pr"], "recall", "precision")},
                "x_label": "recall",
                "y_label": "precision",
            },
        },
        {
            "title": "Calibration",
            "lines": {
                "series": {
                    "model": _curve(curves["calibration"], "mean_predicted", "fraction_positive"),
                    "perfect": {"x": [0.0, 1.0], "y": [0.0, 1.0]},
                },
                "x_label": "mean predicted",
                "y_label": "fraction positive",
            },
        },
    ]


def render(metrics: Metrics, curves: dict[str, pd.DataFrame]) -> str:
    """The report as one offline HTML page."""
    return render_model_report(build(metrics, curves))
