"""Shared fixtures: the project's contract, params and pipeline outputs, read from the project root."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package }}.config import Config, load_config
from {{ cookiecutter.package }}.contract import Contract, load_contract
from {{ cookiecutter.package }}.model_io import recorded_versions
from {{ cookiecutter.package }}.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stages resolve params.yaml and outputs relative to the project root, as under DVC."""
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract(ROOT / "contract.yaml")


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(ROOT / "params.yaml")


def require_output(relative: str) -> Path:
    """A pipeline output, or a test failure that says how to produce it."""
    path = ROOT / relative
    if not path.exists():
        pytest.fail(f"{relative} is missing: run `dvc repro` first")
    return path


@pytest.fixture(scope="session")
def holdout() -> pd.DataFrame:
    return pd.read_parquet(require_output("data/holdout.parquet"))


# What promote records with a version that the serving and scoring checks read.
TRAINING_TAGS = (*recorded_versions(), "contract_fingerprint")


@pytest.fixture(scope="module")
def champion_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A fresh registry whose champion is the trained model, tagged as promote tags it."""
    root = tmp_path_factory.mktemp("registry")
    registry = Registry("test_model", tracking_uri=f"sqlite:///{root / 'mlflow.db'}", root=root)
    meta = json.loads(require_output("models/train_meta.json").read_text(encoding="utf-8"))
    metrics = json.loads(require_output("metrics/metrics.json").read_text(encoding="utf-8"))
    tags = {k: meta[k] for k in TRAINING_TAGS} | {"roc_auc": metrics["metrics"]["roc_auc"]}
    ref = registry.register(require_output("models/model.skops"), tags)
    registry.move_alias("champion", ref.version, expected=None)
    return registry
