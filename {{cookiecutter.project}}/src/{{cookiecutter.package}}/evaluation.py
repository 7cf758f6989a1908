"""What evaluate measures, as plain functions: headline metrics with intervals, slices,
fairness, invariances and the single-feature baseline.

The evaluate stage writes them; realised performance (monitoring) and the drafted gates
recompute them the same way, so they live here rather than in a stage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .config import EvaluateConfig
from .contract import Column, Contract, Invariance

HEADLINE = ("roc_auc", "precision_at_5pct", "fpr_at_recall_80")


def auc_interval(y: np.ndarray, scores: np.ndarray, settings: EvaluateConfig) -> dict[str, Any]:
    """ROC AUC with its DeLong interval (closed form, O(n log n))."""
    return stats.delong_interval(y, scores, level=settings.level).to_dict()


def headline_metrics(y: np.ndarray, scores: np.ndarray, settings: EvaluateConfig) -> dict[str, Any]:
    """ROC AUC (DeLong) and every other metric (one shared stratified bootstrap), with intervals."""
    names = list(HEADLINE) + [m for m in settings.extra_metrics if m not in HEADLINE]
    bootstrapped = stats.bootstrap_intervals(
        y,
        scores,
        [name for name in names if name != "roc_auc"],
        resamples=settings.bootstrap_resamples,
        seed=settings.bootstrap_seed,
        level=settings.level,
    )
    return {
        name: auc_interval(y, scores, settings)
        if name == "roc_auc"
        else bootstrapped[name].to_dict()
        for name in names
    }


def slice_metrics(
    holdout: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    contract: Contract,
    settings: EvaluateConfig,
) -> dict[str, Any]:
    """ROC AUC per contract slice; a slice too small to judge says so instead of vanishing."""
    minimum = settings.min_slice_size
    out: dict[str, Any] = {}
    for name in contract.slices:
        mask = contract.slice_mask(holdout, name)
        n, positives = int(mask.sum()), int(y[mask].sum())
        entry: dict[str, Any] = {"n": n, "positives": positives}
        if n < minimum or positives < 5 or n - positives < 5:
            entry.update(
                judged=False,
                reason=f"too small to judge: {n} rows, {positives} positives (need {minimum} rows, 5 of each class)",
            )
        else:
            entry.update(judged=True, roc_auc=auc_interval(y[mask], scores[mask], settings))
        out[name] = entry
    return out


def _group_rates(weights: np.ndarray, mask: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Weighted share of positive predictions among `mask` rows, one per weight row (NaN if none)."""
    chosen = weights[:, mask]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates: np.ndarray = (chosen @ predicted[mask]) / chosen.sum(axis=1)
    return rates


def _group_table(
    weights: np.ndarray, y: np.ndarray, predicted: np.ndarray, groups: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive rate, TPR and FPR of each group (rows) for each weight row (columns)."""
    positive, negative = y == 1, y == 0
    rates = np.array([_group_rates(weights, g, predicted) for g in groups])
    tprs = np.array([_group_rates(weights, g & positive, predicted) for g in groups])
    fprs = np.array([_group_rates(weights, g & negative, predicted) for g in groups])
    return rates, tprs, fprs


def _fairness_measures(
    rates: np.ndarray, tprs: np.ndarray, fprs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Disparate impact and equalized-odds gap for each column of a group table."""
    with np.errstate(invalid="ignore", divide="ignore"):
        highest = np.nanmax(rates, axis=0)
        impact = np.where(highest > 0, np.nanmin(rates, axis=0) / highest, 1.0)
    spread = np.maximum(
        np.nanmax(tprs, axis=0) - np.nanmin(tprs, axis=0),
        np.nanmax(fprs, axis=0) - np.nanmin(fprs, axis=0),
    )
    return impact, spread


def fairness(
    holdout: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    contract: Contract,
    settings: EvaluateConfig,
) -> dict[str, Any]:
    """Disparate impact and equalized-odds gap per protected attribute, with bootstrap intervals."""
    threshold = settings.threshold
    resamples = settings.bootstrap_resamples
    level = settings.level
    predicted = (scores >= threshold).astype("float64")
    out: dict[str, Any] = {}
    for attribute in contract.protected:
        indices = holdout.groupby(attribute, dropna=False).indices
        masks = []
        for index in indices.values():
            mask = np.zeros(len(y), dtype=bool)
            mask[index] = True
            masks.append(mask)
        # unit weights give the data itself; resample weights give the bootstrap replicates
        table = _group_table(np.ones((1, len(y))), y, predicted, masks)
        impact, spread = _fairness_measures(*table)
        replicates = [
            _fairness_measures(*_group_table(chunk, y, predicted, masks))
            for chunk in _resample_chunks(y, resamples, settings.bootstrap_seed)
        ]
        rates, tprs, fprs = (column[:, 0] for column in table)
        groups = {
            str(value): {
                "n": int(mask.sum()),
                "positive_rate": float(rates[i]),
                "tpr": float(tprs[i]),  # NaN for a group with no positives: null in JSON
                "fpr": float(fprs[i]),
            }
            for i, (value, mask) in enumerate(zip(indices, masks, strict=True))
        }
        out[attribute] = {
            "threshold": threshold,
            "disparate_impact": _percentile_interval(
                float(impact[0]), np.concatenate([r[0] for r in replicates]), level
            ),
            "equalized_odds_gap": _percentile_interval(
                float(spread[0]), np.concatenate([r[1] for r in replicates]), level
            ),
            "groups": groups,
        }
    return out


def _resample_chunks(
    y: np.ndarray, resamples: int, seed: int, rows: int = 2_000_000
) -> Iterator[np.ndarray]:
    """Stratified resample weights in blocks of at most `rows` cells, so memory stays bounded."""
    per_chunk = max(1, rows // max(len(y), 1))
    for k, start in enumerate(range(0, resamples, per_chunk)):
        size = min(per_chunk, resamples - start)
        yield stats.stratified_resample_counts(y, size, seed=seed + k).astype("float64")


def _percentile_interval(value: float, replicates: np.ndarray, level: float) -> dict[str, Any]:
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(replicates, [tail, 100 - tail])
    return {"value": value, "low": float(low), "high": float(high), "method": "bootstrap"}


def invariance_share(model: Any, X: pd.DataFrame, rule: Invariance) -> float:
    """Share of rows whose score moves in the declared direction when one column changes."""
    before, after = X.copy(), X.copy()
    before[rule.column] = rule.from_value
    after[rule.column] = rule.to_value
    delta = model.predict_proba(after)[:, 1] - model.predict_proba(before)[:, 1]
    return float(np.mean(delta < 0) if rule.direction == "decrease" else np.mean(delta > 0))


def invariances(model: Any, X: pd.DataFrame, contract: Contract) -> dict[str, Any]:
    """Every behavioural rule of the contract, with the share of rows that obey it."""
    return {
        rule.name: {
            "column": rule.column,
            "change": [rule.from_value, rule.to_value],
            "direction": rule.direction,
            "share": invariance_share(model, X, rule),
            "min_share": rule.min_share,
        }
        for rule in contract.invariances
    }


def single_feature_scores(
    frame: pd.DataFrame, y: np.ndarray, contract: Contract
) -> tuple[str, np.ndarray]:
    """The one feature that ranks `y` best on its own, as a score; ("prior", zeros) if none does.

    Numbers and dates rank by value; booleans and one-hot categories by their positive rate in
    `frame` itself. Chosen and fitted on the rows it is judged on, so it is optimistic: a fair
    bar for a model to clear. Frequency-encoded (high-cardinality) categories are left out: a
    rate per rare value would memorise the labels.
    """
    best: tuple[float, str, np.ndarray] | None = None
    for name in contract.feature_columns:
        values = _as_score(frame[name], y, contract.columns[name])
        if values is None or np.ptp(values) == 0:
            continue
        auc = stats.roc_auc(y, values)
        if best is None or max(auc, 1 - auc) > best[0]:
            best = (max(auc, 1 - auc), name, values if auc >= 0.5 else -values)
    if best is None:
        return "prior", np.zeros(len(y))
    return best[1], best[2]


def _as_score(values: pd.Series, y: np.ndarray, column: Column) -> np.ndarray | None:
    """One column as a number per row (missing values at the median or as their own group)."""
    if column.type in ("integer", "float", "datetime"):
        numbers = (
            (pd.to_datetime(values) - pd.Timestamp(0)).dt.total_seconds()
            if column.type == "datetime"
            else values.astype("float64")
        )
        filled: np.ndarray = numbers.fillna(numbers.median()).fillna(0.0).to_numpy()
        return filled
    if column.type == "boolean" or (column.type == "category" and column.encoding == "onehot"):
        groups = values.astype("str").fillna("(missing)").to_numpy()
        rates: np.ndarray = (
            pd.Series(y, dtype="float64").groupby(groups).transform("mean").to_numpy()
        )
        return rates
    return None


def baseline(
    holdout: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    contract: Contract,
    settings: EvaluateConfig,
) -> dict[str, Any]:
    """The best single feature as a score, and the model's paired ROC AUC gain over it."""
    name, reference = single_feature_scores(holdout, y, contract)
    level = settings.level
    # Paired on the same rows (DeLong): far tighter than comparing two separate intervals.
    gain = stats.delong_paired_test(y, scores, reference, alpha=(1 - level) / 2, level=level)
    return {
        "name": "prior" if name == "prior" else f"single feature: {name}",
        "roc_auc": auc_interval(y, reference, settings)
        if name != "prior"
        else {"value": 0.5, "low": 0.5, "high": 0.5, "method": "constant"},
        "auc_gain": {
            "value": gain.diff,
            "low": gain.low,
            "high": gain.high,
            "method": "delong paired",
        },
    }


def lift(precision: dict[str, Any], prevalence: float) -> dict[str, Any]:
    """Precision at the top 5% over the prevalence: how many times richer in positives than random.

    The bootstrap is stratified, so every resample keeps the holdout's prevalence and dividing
    the precision interval by it is the lift interval exactly.
    """
    scaled = {k: precision[k] / prevalence for k in ("value", "low", "high")}
    return {**scaled, "method": f"{precision.get('method', '')} precision / prevalence".strip()}
