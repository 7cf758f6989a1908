"""Facts about this project's table that the model tests build on, read from its own outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from {{ cookiecutter.package }}.contract import Contract


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
