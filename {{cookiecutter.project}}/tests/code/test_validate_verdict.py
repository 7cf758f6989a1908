"""The validate stage's report is Great Expectations' own, whether or not GE ran.

A table that the vectorised checks (`contract_checks.passes`) pass is reported without running
GE (seconds saved per million rows); every other table is decided and explained by GE. These
tests hold the shortcut to GE's word: on clean tables of every column kind the two reports are
equal field by field, and on every corruption the validate tests use (and a few that only the
whole-table expectations catch) the verdict is GE's.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package }}.contract import Contract, parse_contract
from {{ cookiecutter.package }}.contract_checks import passes
from {{ cookiecutter.package }}.data import load_table
from {{ cookiecutter.package }}.errors import DataError
from {{ cookiecutter.package }}.expectations import suite_specs
from {{ cookiecutter.package }}.suite import prepare, run_checks, run_suite
from tests.code.test_bad_input import CASES
from tests.tiny_contract import CONTRACT, tiny_contract, tiny_table


def wide_contract() -> Contract:
    """The tiny contract plus every kind of check the drafter writes: means, a boolean, a
    category coded as integers, a nullable float."""
    spec: dict[str, Any] = copy.deepcopy(CONTRACT)
    columns = spec["columns"]
    columns["spend"]["mean"] = [10.0, 500.0]
    columns["visits"]["mean"] = [1, 20]
    columns["left"]["mean"] = [0.01, 0.9]
    columns["is_trial"] = {"type": "boolean"}
    columns["store"] = {"type": "category", "values": [3, 7, 11]}
    columns["discount"] = {"type": "float", "min": 0.0, "max": 0.5, "nullable": True}
    return parse_contract(spec, source="wide contract")


def wide_table(rows: int = 2000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = tiny_table(rows, seed)
    discount = rng.uniform(0.0, 0.5, rows).round(3)
    discount[rng.random(rows) < 0.1] = np.nan
    return table.assign(
        is_trial=rng.random(rows) < 0.4,
        store=rng.choice([3, 7, 11], rows),
        discount=discount,
    )


def reports(table: pd.DataFrame, contract: Contract) -> tuple[list[Any], list[Any]]:
    """(what validate reports, what GE reports) for `table`, each as plain dicts."""
    frame, _ = prepare(table, contract)
    ours = [asdict(c) for c in run_checks(frame, contract)]
    great_expectations = [asdict(c) for c in run_suite(frame, contract)]
    return ours, great_expectations


CLEAN = {
    "tiny": (tiny_contract, lambda: tiny_table(1500)),
    "wide": (wide_contract, wide_table),
    "wide_from_csv_text": (wide_contract, lambda: wide_table(800, seed=5).astype({"store": str})),
}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_a_clean_table_is_reported_as_great_expectations_reports_it(name):
    """The shortcut was taken (the vectorised checks pass) and the report equals GE's."""
    make_contract, make_table = CLEAN[name]
    contract, table = make_contract(), make_table()
    frame, _ = prepare(table, contract)
    assert passes(frame, suite_specs(contract)), "a clean table should not need GE"
    ours, great_expectations = reports(table, contract)
    assert ours == great_expectations


def _shifted_mean(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(spend=(table["spend"] + 600.0).clip(upper=1000.0))


def _visits_all_missing(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(visits=np.nan)


def _boolean_as_text(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(is_trial=table["is_trial"].map({True: "yes", False: "no"}))


def _unknown_store(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(store=table["store"].where(table.index % 97 != 0, 5))


def _discount_over_max(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(discount=table["discount"].where(table.index != 10, 0.9))


WHOLE_TABLE_DEFECTS = {
    "mean_shifted": _shifted_mean,
    "all_missing_visits": _visits_all_missing,
    "boolean_as_text": _boolean_as_text,
    "unknown_integer_code": _unknown_store,
    "nullable_float_over_max": _discount_over_max,
}


@pytest.mark.parametrize("name", sorted(WHOLE_TABLE_DEFECTS))
def test_a_defect_sends_the_table_to_great_expectations(name):
    """Defects of the wide contract: the shortcut declines, and the report is GE's failure."""
    contract = wide_contract()
    table = WHOLE_TABLE_DEFECTS[name](wide_table())
    frame, _ = prepare(table, contract)
    assert not passes(frame, suite_specs(contract))
    ours, great_expectations = reports(table, contract)
    assert ours == great_expectations
    assert not all(check["success"] for check in ours)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_corruption_of_the_validate_tests_gets_great_expectations_verdict(
    case: str, tmp_path: Path
):
    """The validate tests' corrupt files: wherever one is a table, the report is GE's."""
    writer, _ = CASES[case]
    try:
        table = load_table(writer(tmp_path))
    except DataError:
        return  # not a table at all: refused before any check (test_bad_input shows how)
    ours, great_expectations = reports(table, tiny_contract())
    assert ours == great_expectations
