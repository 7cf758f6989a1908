"""Shared fixtures: the project's contract, params and pipeline outputs, read from the project root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from {{ cookiecutter.package }}.config import Config, load_config
from {{ cookiecutter.package }}.contract import Contract, load_contract
from {{ cookiecutter.package }}.params import load_params

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


@pytest.fixture(scope="session")
def params() -> dict[str, Any]:
    return load_params(ROOT / "params.yaml")


def require_output(relative: str) -> Path:
    """A pipeline output, or a test failure that says how to produce it."""
    path = ROOT / relative
    if not path.exists():
        pytest.fail(f"{relative} is missing: run `dvc repro` first")
    return path


@pytest.fixture(scope="session")
def holdout() -> pd.DataFrame:
    return pd.read_parquet(require_output("data/holdout.parquet"))
