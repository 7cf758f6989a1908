"""A small contract and matching tables, for tests that must not depend on the project's data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from {{ cookiecutter.package }}.contract import Contract, parse_contract

CONTRACT: dict[str, Any] = {
    "name": "tiny",
    "id": "account",
    "target": "left",
    "columns": {
        "account": {"type": "string", "unique": True},
        "spend": {"type": "float", "min": 0.0, "max": 1000.0},
        "visits": {"type": "integer", "min": 0, "max": 60, "nullable": True},
        "plan": {"type": "category", "values": ["basic", "plus", "pro"]},
        "is_business": {"type": "integer", "values": [0, 1]},
        "joined": {
            "type": "datetime",
            "min": "2020-01-01",
            "max": "2025-12-31",
            "reference": "2026-01-01",
        },
        "left": {"type": "integer", "values": [0, 1]},
    },
}
DRIFT = {
    "psi_threshold": 0.2,
    "on_drift": "warn",
    "bins": 10,
    "psi_floor": 0.0001,
    "max_unseen_share": 0.01,
    "max_null_increase": 0.05,
    "min_rows": 200,
    "notify_cooldown_hours": 24,
}

# One valid request row for the tiny contract: the id and the features.
TINY_ROW: dict[str, Any] = {
    "account": "A000001",
    "spend": 12.5,
    "visits": 3,
    "plan": "plus",
    "is_business": 1,
    "joined": "2021-03-04 05:06:07",
}


def tiny_contract() -> Contract:
    """The contract above, validated."""
    return parse_contract(CONTRACT, source="tiny contract")


def tiny_table(rows: int = 2000, seed: int = 0, spend_shift: float = 0.0) -> pd.DataFrame:
    """Rows that meet the tiny contract; `spend_shift` moves the spend distribution."""
    rng = np.random.default_rng(seed)
    joined = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.uniform(0, 2100, rows), unit="D")
    visits = rng.poisson(6, rows).astype("float64")
    visits[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "account": [f"A{i:06d}" for i in range(rows)],
            "spend": np.clip(rng.lognormal(4.0, 0.5, rows) + spend_shift, 0.0, 1000.0).round(2),
            "visits": visits,
            "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2]),
            "is_business": (rng.random(rows) < 0.3).astype("int64"),
            "joined": joined.floor("s").strftime("%Y-%m-%d %H:%M:%S"),
            "left": (rng.random(rows) < 0.2).astype("int64"),
        }
    )


def write_project(root: Path, drift: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write contract.yaml and params.yaml for the tiny contract under `root`."""
    contract = root / "contract.yaml"
    params = root / "params.yaml"
    contract.write_text(yaml.safe_dump(CONTRACT), encoding="utf-8")
    params.write_text(
        yaml.safe_dump(
            {
                "data": {"raw": "data.csv"},
                "model": {"kind": "logistic_regression"},
                "drift": {**DRIFT, **(drift or {})},
                "rollout": {"steps": [{"weight": 100, "pause_s": 0}]},
            }
        )
    )
    return contract, params


def tiny_predictor() -> Any:
    """A served model for the tiny contract: the project's preprocessor and a logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from {{ cookiecutter.package }}.data import conform, features_and_target
    from {{ cookiecutter.package }}.features import build_preprocessor
    from {{ cookiecutter.package }}.serve.predictor import Predictor

    contract = tiny_contract()
    x, y = features_and_target(conform(tiny_table(500), contract), contract)
    model = Pipeline(
        [("prep", build_preprocessor(contract)), ("clf", LogisticRegression(max_iter=5000))]
    ).fit(x, y)
    return Predictor(model, contract)
