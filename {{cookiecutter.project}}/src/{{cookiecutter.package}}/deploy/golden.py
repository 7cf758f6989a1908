"""Golden rows: holdout rows and the scores the registered model gives them, for integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .servers import DeployError


def golden_rows(registry: Any, ref: Any, count: int = 25) -> dict[str, Any]:
    """Holdout rows and the scores the model itself gives them, for integration tests."""
    from ..contract import load_contract
    from ..data import load_table
    from ..rollout.loadgen import holdout_rows
    from ..serve.loading import load_pinned

    contract = load_contract("contract.yaml")
    predictor, _ = load_pinned(registry, ref, contract)
    holdout = Path("data/holdout.parquet")
    if not holdout.is_file():
        raise DeployError(f"{holdout} not found: run `dvc repro` (train writes it)")
    frame = load_table(holdout).head(count)
    scores = predictor.model.predict_proba(frame[contract.feature_columns])[:, 1]
    return {
        "model_version": ref.version,
        "rows": holdout_rows(holdout, contract, count),
        "scores": [float(s) for s in scores],
        "tolerance": 1e-9,
    }
