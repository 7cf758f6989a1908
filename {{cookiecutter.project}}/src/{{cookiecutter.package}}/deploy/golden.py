"""Golden rows: request rows and the scores the registered model gives them, for integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONTRACT = Path("contract.yaml")


def golden_rows(registry: Any, ref: Any, count: int = 25) -> dict[str, Any]:
    """Holdout rows (else rows generated from the contract) and the scores the model itself
    gives them through the training data's dtypes, not the server's request path."""
    import pandas as pd

    from ..contract import load_contract
    from ..data import conform
    from ..rollout.loadgen import traffic_rows
    from ..serve.loading import load_pinned

    contract = load_contract(CONTRACT)
    predictor, _ = load_pinned(registry, ref, contract)
    rows, source = traffic_rows(CONTRACT, contract, limit=count)
    features = conform(pd.DataFrame(rows), contract, contract.feature_columns)
    scores = predictor.model.predict_proba(features)[:, 1]
    return {
        "model_version": ref.version,
        "source": source,
        "rows": rows,
        "scores": [float(s) for s in scores],
        "tolerance": 1e-9,
    }
