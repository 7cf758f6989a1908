"""Facts about this project's table that the model tests build on, read from its own outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package }}.config import Config, load_config
from {{ cookiecutter.package }}.contract import Contract
from {{ cookiecutter.package }}.data import load_table

from ..conftest import ROOT

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def swap_label(holdout: pd.DataFrame, contract: Contract) -> dict[object, object]:
    """Each of the target's two values mapped to the other, as the holdout holds them (0/1, yes/no...)."""
    values = sorted(holdout[contract.target].unique(), key=str)
    if len(values) != 2:
        pytest.skip(
            f"the holdout's {contract.target!r} holds {values}: a label cannot be turned into "
            "the other one unless both values occur"
        )
    first, second = values
    return {first: second, second: first}


@pytest.fixture(scope="session")
def raw_holdout(holdout: pd.DataFrame, contract: Contract, config: Config) -> pd.DataFrame:
    """The holdout's rows as the raw file holds them, in holdout order, without the target:
    what a user brings to `make score` (the holdout itself is conformed: booleans as text)."""
    raw = load_table(ROOT / config.data.raw)
    by_id = raw.set_index(raw[contract.id].astype(str), drop=False)
    rows = by_id.loc[holdout[contract.id].astype(str)].reset_index(drop=True)
    return rows.drop(columns=contract.target)


# What a multiclass or regression model cannot be judged on yet, by module, and why: these
# modules test binary scores (ROC AUC, the positive score served, scored and monitored).
# test_task_model.py judges the other tasks' models.
BINARY_ONLY = {
    "test_model.py": "judges ROC AUC and positive scores; test_task_model.py judges this task",
    "test_model_card.py": "reads the binary card's ROC AUC; test_task_model.py reads this one",
    "test_promotion.py": "pairs ROC AUC by DeLong; test_task_model.py pairs this task's loss",
    "test_score.py": "checks binary score and label columns; test_task_model.py checks this task's",
    "test_performance.py": "judges ROC AUC on delayed labels; test_task_model.py judges this task's",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip, saying why, the binary-only modules in a multiclass or regression project."""
    task = load_config(ROOT / "params.yaml").task
    if task == "binary":
        return
    for item in items:
        why = BINARY_ONLY.get(item.path.name) if item.path.parent == HERE else None
        if why:
            item.add_marker(pytest.mark.skip(reason=f"task is {task}: {why}"))
