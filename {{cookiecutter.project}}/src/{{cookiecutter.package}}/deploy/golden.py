"""Golden rows: request rows and what the registered model predicts for them, for integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONTRACT = Path("contract.yaml")


def golden_rows(registry: Any, ref: Any, count: int = 25) -> dict[str, Any]:
    """Holdout rows (else rows generated from the contract) and the predictions the model
    itself gives them through the training data's dtypes, not the server's request path."""
    import pandas as pd

    from ..contract import load_contract
    from ..data import conform
    from ..rollout.loadgen import traffic_rows
    from ..serve.loading import load_pinned
    from ..task_pipeline import predict

    contract = load_contract(CONTRACT)
    predictor, _ = load_pinned(registry, ref, contract)
    rows, source = traffic_rows(CONTRACT, contract, limit=count)
    features = conform(pd.DataFrame(rows), contract, contract.feature_columns)
    # binary: the positive score; else the value, or the (rows, classes) probabilities
    prediction = predict(predictor.model, features, predictor.task, predictor.classes)
    golden: dict[str, Any] = {"model_version": ref.version, "source": source, "rows": rows}
    if predictor.task == "binary":  # what integration tests have always compared
        golden["scores"] = prediction.tolist()
    return golden | {
        "task": predictor.task,
        "classes": list(predictor.classes),
        "predictions": prediction.tolist(),
        "tolerance": 1e-9,
    }
