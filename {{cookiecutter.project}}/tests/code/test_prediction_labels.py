"""Predictions speak the table's language: the label is the target's own value."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package }}.contract import parse_contract
from {{ cookiecutter.package }}.serve.schema import response_model, target_labels


def contract_with_target(spec: dict, positive: object):
    return parse_contract(
        {
            "name": "t",
            "id": "key",
            "target": "outcome",
            "positive": positive,
            "columns": {"key": {"type": "string", "unique": True}, "x": {"type": "float"},
                        "outcome": spec},
        }
    )  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "positive", "expected"),
    [
        ({"type": "category", "values": ["no", "yes"]}, "yes", ("no", "yes")),
        ({"type": "category", "values": ["CH", "MM"]}, "MM", ("CH", "MM")),
        ({"type": "boolean"}, True, (False, True)),
        ({"type": "integer", "values": [0, 1]}, 1, (0, 1)),
        ({"type": "integer", "values": [0, 1]}, 0, (1, 0)),
    ],
)
def test_labels_are_the_targets_own_values(spec, positive, expected):
    """(other, positive) in the types the table uses: never 0/1 in place of yes/no."""
    assert target_labels(contract_with_target(spec, positive)) == expected


def test_the_openapi_schema_names_the_positive_class():
    """The response schema says which value is positive and lists both."""
    contract = contract_with_target({"type": "category", "values": ["no", "yes"]}, "yes")
    schema = response_model(contract).model_json_schema()
    prediction = schema["$defs"]["Prediction"]["properties"]
    assert sorted(prediction["label"]["enum"]) == ["no", "yes"]
    assert (
        "'yes' (the positive class) when score >= params.yaml evaluate.threshold"
        in prediction["label"]["description"]
    )
    assert "`outcome` is 'yes'" in prediction["score"]["description"]


def test_a_predictor_answers_in_the_targets_values():
    """The same model behind a contract whose target is yes/no answers `yes`/`no`, never 1/0."""
    from {{ cookiecutter.package }}.serve.predictor import Predictor, example_row
    from {{ cookiecutter.package }}.serve.schema import build_models
    from tests.tiny_contract import CONTRACT, tiny_predictor

    yes_no = {**CONTRACT, "positive": "yes"}
    yes_no["columns"] = {
        **CONTRACT["columns"],
        "left": {"type": "category", "values": ["no", "yes"]},
    }
    contract = parse_contract(yes_no)
    predictor = Predictor(tiny_predictor().model, contract, threshold=0.0)  # every row positive
    row = build_models(contract).row.model_validate(example_row(contract))
    (answer,) = predictor.answer([row])
    assert answer["label"] == "yes"
    assert Predictor(predictor.model, contract, threshold=1.0).answer([row])[0]["label"] == "no"
