"""A model card per model version (skops.card), and the permutation importance it reports.

The card is Markdown written by `evaluate` (reports/model_card.md) from what the pipeline
measured: intended use from the contract, training data from train_meta.json, metrics with
intervals, slices, fairness, behaviour, importance, and limitations read off the numbers.
`promote` registers it with the version, so every registered model carries its card.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..contract import Contract
from ..records import Metrics
from .model_report import FAIRNESS_MEASURES, interval_text, number_text

IMPORTANCE_ROWS = 2000  # enough rows for a stable ranking; permutation cost grows with rows
IMPORTANCE_REPEATS = 5


def permutation_importances(
    model: Any, X: pd.DataFrame, y: np.ndarray, seed: int
) -> list[dict[str, Any]]:
    """Drop in ROC AUC when each input column is shuffled, largest first (holdout rows)."""
    from sklearn.inspection import permutation_importance
    from threadpoolctl import threadpool_limits

    if len(X) > IMPORTANCE_ROWS:
        rows = np.random.default_rng(seed).choice(len(X), IMPORTANCE_ROWS, replace=False)
        X, y = X.iloc[np.sort(rows)], y[np.sort(rows)]
    # one thread: OpenMP workers spin against each other on a busy CI runner (10x slower)
    with threadpool_limits(1):
        result = permutation_importance(
            model, X, y, scoring="roc_auc", n_repeats=IMPORTANCE_REPEATS, random_state=seed
        )
    ranked = sorted(
        zip(X.columns, result.importances_mean, result.importances_std, strict=True),
        key=lambda item: -item[1],
    )
    return [
        {"feature": str(name), "auc_drop": float(mean), "std": float(std)}
        for name, mean, std in ranked
    ]


def limitations(metrics: Metrics, meta: dict[str, Any]) -> list[str]:
    """What the numbers say the model should not be trusted for."""
    notes = [
        f"Trained on {meta['rows']['train']} rows of `{meta['contract']}` data; inputs outside "
        "the contract's ranges are refused by the server, not extrapolated.",
    ]
    unjudged = [name for name, s in metrics.slices.items() if not s.judged]
    if unjudged:
        notes.append(f"Too few holdout rows to judge the slices {', '.join(unjudged)}.")
    for attribute, entry in metrics.fairness.items():
        di = entry.disparate_impact
        if di.low is not None and di.high is not None and di.high - di.low > 0.2:
            notes.append(
                f"Disparate impact on `{attribute}` is uncertain: {number_text(di.value, 2)} "
                f"{interval_text(di)}; more data per group would narrow it."
            )
    failed = [name for name, r in metrics.invariances.items() if r.share < r.min_share]
    if failed:
        notes.append(f"Expected behaviour does not hold: {', '.join(failed)}.")
    auc = metrics.metrics["roc_auc"]
    notes.append(
        f"ROC AUC {number_text(auc.value, 3)} {interval_text(auc)} was measured on a holdout from the same "
        "period as training; performance on later data is watched by drift-check."
    )
    return notes


def _card_tables(metrics: Metrics, level: str) -> dict[str, tuple[str, dict[str, list[Any]]]]:
    """Each table of the card: its description and its columns."""
    return {
        "Evaluation": (
            f"Holdout metrics with {level} intervals.",
            {
                "metric": list(metrics.metrics),
                "value": [number_text(e.value) for e in metrics.metrics.values()],
                "interval": [interval_text(e) for e in metrics.metrics.values()],
                "method": [e.method for e in metrics.metrics.values()],
            },
        ),
        "Slices": (
            f"ROC AUC per slice of the contract, {level} DeLong intervals.",
            {
                "slice": list(metrics.slices),
                "rows": [s.n for s in metrics.slices.values()],
                "ROC AUC": [
                    number_text(s.roc_auc.value) if s.roc_auc else s.reason
                    for s in metrics.slices.values()
                ],
                "interval": [interval_text(s.roc_auc) for s in metrics.slices.values()],
            },
        ),
        "Fairness": (
            f"Per protected attribute, {level} bootstrap intervals.",
            {
                "attribute": [a for a in metrics.fairness for _ in FAIRNESS_MEASURES],
                "measure": list(FAIRNESS_MEASURES) * len(metrics.fairness),
                "value": [
                    number_text(getattr(entry, m).value)
                    for entry in metrics.fairness.values()
                    for m in FAIRNESS_MEASURES
                ],
                "interval": [
                    interval_text(getattr(entry, m))
                    for entry in metrics.fairness.values()
                    for m in FAIRNESS_MEASURES
                ],
            },
        ),
        "Behaviour": (
            "Share of holdout rows whose score moves as the contract's invariances require.",
            {
                "rule": list(metrics.invariances),
                "share": [number_text(r.share) for r in metrics.invariances.values()],
                "required": [r.min_share for r in metrics.invariances.values()],
            },
        ),
        "Permutation importance": (
            "Drop in holdout ROC AUC when one input column is shuffled (mean and spread of "
            f"{IMPORTANCE_REPEATS} shuffles).",
            {
                "feature": [i.feature for i in metrics.importance],
                "ROC AUC drop": [number_text(i.auc_drop) for i in metrics.importance],
                "std": [number_text(i.std) for i in metrics.importance],
            },
        ),
    }


def build_card(model: Any, metrics: Metrics, meta: dict[str, Any], contract: Contract) -> Any:
    """The skops Card: every section filled from measured values, none left as a template."""
    from skops.card import Card

    level = f"{metrics.level:.0%}"
    card = Card(model, model_format="skops", model_diagram=False, template=None)
    card.add(
        **{
            "Intended use": (
                f"Scores the probability that `{contract.target}` is `{contract.positive}` for "
                f"one `{contract.id}`, from the {len(contract.feature_columns)} input columns "
                "of `contract.yaml`. Decisions made with it are reviewed against the slices "
                "and fairness measures below."
            ),
            "Training data": (
                f"{meta['rows']['train']} training rows, {meta['rows']['holdout']} holdout rows "
                f"(hash split on the id); positive rate {meta['positive_rate']:.3f}. "
                f"Data sha256 `{meta['data_sha256']}`, contract fingerprint "
                f"`{meta['contract_fingerprint']}`, commit `{meta.get('git_commit')}`."
            ),
            "Model": f"`{meta['model_kind']}` with {meta['model_params']}; sha256 "
            f"`{meta['model_sha256']}`.",
        }
    )
    tables = _card_tables(metrics, level)
    for title, (description, table) in tables.items():
        card.add_table(description=description, **{title: table})
    card.add(Limitations="\n".join(f"- {note}" for note in limitations(metrics, meta)))
    card.add(
        Environment=", ".join(
            f"{key.removesuffix('_version')} {value}"
            for key, value in meta.items()
            if key.endswith("_version")
        )
    )
    return card


def render_card(model: Any, metrics: Metrics, meta: dict[str, Any], contract: Contract) -> str:
    """The model card as Markdown."""
    return str(build_card(model, metrics, meta, contract).render())
