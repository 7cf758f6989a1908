"""The contract parser: one source of truth, and errors that name the field."""

import pandas as pd
import pytest

from {{ cookiecutter.package }}.contract import ContractError, parse_contract

VALID = {
    "name": "t",
    "id": "id",
    "target": "y",
    "columns": {
        "id": {"type": "string", "unique": True},
        "x": {"type": "float", "min": 0, "max": 1},
        "c": {"type": "category", "values": ["a", "b"]},
        "y": {"type": "integer", "values": [0, 1]},
    },
    "slices": {"only_a": {"c": "a"}, "low_x": {"x": [0, 0.5]}},
}


def test_feature_columns_exclude_id_and_target():
    """The model never sees the id or the label."""
    assert parse_contract(VALID).feature_columns == ["x", "c"]


def test_slice_masks():
    """Equality and [low, high] slices select the right rows."""
    contract = parse_contract(VALID)
    df = pd.DataFrame({"x": [0.1, 0.9, 0.4], "c": ["a", "a", "b"]})
    assert contract.slice_mask(df, "only_a").tolist() == [True, True, False]
    assert contract.slice_mask(df, "low_x").tolist() == [True, False, True]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": "missing"}, "target column 'missing'"),
        ({"slices": {"s": {"nope": 1}}}, "unknown column 'nope'"),
        (
            {"columns": {**VALID["columns"], "x": {"type": "float", "min": 2, "max": 1}}},
            "columns.x",
        ),
        ({"columns": {**VALID["columns"], "c": {"type": "category"}}}, "needs `values"),
        ({"columns": {**VALID["columns"], "x": {"type": "decimal"}}}, "columns.x.type"),
    ],
)
def test_errors_name_the_field(change, message):
    """A broken contract is refused with the offending field in the message."""
    with pytest.raises(ContractError, match=message):
        parse_contract({**VALID, **change})


def test_fingerprint_tracks_schema_not_ranges():
    """Changing a range keeps the fingerprint; changing allowed values does not."""
    base = parse_contract(VALID).fingerprint
    wider = {**VALID["columns"], "x": {"type": "float", "min": 0, "max": 5}}
    more = {**VALID["columns"], "c": {"type": "category", "values": ["a", "b", "c"]}}
    assert parse_contract({**VALID, "columns": wider}).fingerprint == base
    assert parse_contract({**VALID, "columns": more}).fingerprint != base
