"""Facts about this project's table that the model tests build on, read from its own outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from {{ cookiecutter.package }}.config import Config
from {{ cookiecutter.package }}.contract import Contract
from {{ cookiecutter.package }}.data import load_table

from ..conftest import ROOT


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
