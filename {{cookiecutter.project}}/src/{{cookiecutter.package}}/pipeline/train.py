"""The train stage: one scikit-learn Pipeline (features + model), a deterministic split."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import model as user_model
from ..artifacts import write_json, write_parquet
from ..config import Config, ModelConfig, Task, load_config
from ..contract import Contract, load_contract
from ..drift import build_reference, quantile_edges
from ..errors import ConfigError, DataError
from ..model_io import environment, save_model
from ..paths import HOLDOUT, META, MODEL, REFERENCE, VALIDATED
from ..task_pipeline import RUNTIME, task_data


def build_pipeline(contract: Contract, settings: ModelConfig, task: Task = "binary") -> Any:
    """model.py's pipeline for `model.kind`; a bad setting is named by its params.yaml key."""
    try:
        return user_model.build_pipeline(
            contract, settings.kind, settings.hyperparameters(), settings.seed, task
        )
    except TypeError as error:
        # the estimator names the bad keyword; the key to edit is ours to name
        raise ConfigError(f"params.yaml: model.{settings.kind}: {error}") from None


def holdout_mask(ids: pd.Series, test_size: float, seed: int) -> np.ndarray:
    """Rows in the holdout, by a seeded hash of the id: stable as new rows arrive."""
    hashed = pd.util.hash_pandas_object(ids.astype(str), index=False, hash_key=f"{seed:016d}"[:16])
    mask: np.ndarray = (hashed.to_numpy() % 10_000) < int(test_size * 10_000)
    return mask


def table_sha256(df: pd.DataFrame) -> str:
    """A content hash of a table, independent of the file format it came from."""
    return hashlib.sha256(
        pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()
    ).hexdigest()


def git_commit() -> str | None:
    """The current commit (with `-dirty` for local changes), or None outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def train(contract: Contract, config: Config, table: pd.DataFrame) -> dict[str, Any]:
    """Split, fit and save; return the training metadata."""
    if table.empty:
        raise DataError(f"{VALIDATED}: no rows to train on")
    in_holdout = holdout_mask(table[contract.id], config.split.test_size, config.split.seed)
    train_rows, holdout_rows = table[~in_holdout], table[in_holdout]
    X, y, classes = task_data(train_rows, contract, config.task)
    runtime = RUNTIME[config.task]
    unfit = runtime.unfit(y, classes)
    if unfit:
        raise DataError(f"{VALIDATED}: {unfit}")
    pipeline = build_pipeline(contract, config.model, config.task).fit(X, y)
    sha = save_model(pipeline, MODEL)
    write_parquet(HOLDOUT, holdout_rows)
    reference = build_reference(train_rows, contract, config.drift.bins)
    if config.task == "regression" and len(holdout_rows):
        # a server buckets its answers at these: a regression's values have no [0, 1] scale
        X_holdout = task_data(holdout_rows, contract, config.task)[0]
        values = runtime.predict(pipeline, X_holdout, classes)
        reference["predictions"] = {"edges": quantile_edges(values, config.drift.bins).tolist()}
    write_json(REFERENCE, reference)
    return {
        "model_sha256": sha,
        "model_kind": config.model.kind,
        "model_params": config.model.hyperparameters(),
        "data_sha256": table_sha256(table),
        "rows": {"train": len(train_rows), "holdout": len(holdout_rows)},
        **runtime.summary(y, classes),
        "contract": contract.name,
        "contract_fingerprint": contract.fingerprint,
        "git_commit": git_commit(),
        **environment(),
    }


def main(argv: list[str] | None = None) -> int:
    """Train the pipeline on the validated data; write model, holdout and metadata."""
    parser = argparse.ArgumentParser(prog="train", description=main.__doc__)
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    parser.add_argument("--data", type=Path, default=VALIDATED)
    args = parser.parse_args(argv)
    meta = train(load_contract(args.contract), load_config(), pd.read_parquet(args.data))
    write_json(META, meta)
    rows = meta["rows"]
    print(
        f"train: {meta['model_kind']} on {rows['train']} rows; holdout {rows['holdout']} rows -> {MODEL}"
    )
    return 0
