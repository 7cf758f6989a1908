"""The request model comes from the contract: types, ranges, allowed values, nullability."""

from __future__ import annotations

import json

import numpy as np
import pytest

from {{ cookiecutter.package }}.serve.predictor import Predictor, example_row
from {{ cookiecutter.package }}.serve.schema import RequestError, build_models, parse_rows
from tests.tiny_contract import TINY_ROW as ROW
from tests.tiny_contract import tiny_contract


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


@pytest.fixture(scope="module")
def models():
    return build_models(tiny_contract(), max_batch=3)


def reasons(models, obj: object) -> dict[str, str]:
    with pytest.raises(RequestError) as caught:
        parse_rows(body(obj), models)
    return {e["field"]: e["reason"] for e in caught.value.errors}


def test_a_valid_row_and_a_batch_parse(models):
    rows, batch = parse_rows(body(ROW), models)
    assert (len(rows), batch) == (1, False)
    rows, batch = parse_rows(body({"rows": [ROW, {**ROW, "account": "A1"}]}), models)
    assert (len(rows), batch) == (2, True)
    assert rows[1].account == "A1"


def test_extra_fields_are_refused_by_name(models):
    assert "not a contract column" in reasons(models, {**ROW, "surprise": 1})["surprise"]


def test_ranges_values_and_types_are_enforced(models):
    found = reasons(models, {**ROW, "spend": 1000.5, "plan": "gold", "is_business": 2})
    assert "less than or equal to 1000" in found["spend"]
    assert "'basic', 'plus' or 'pro'" in found["plan"]
    assert "must be one of 0, 1" in found["is_business"]
    assert "valid integer" in reasons(models, {**ROW, "visits": 2.5})["visits"]
    assert "valid integer" in reasons(models, {**ROW, "is_business": True})["is_business"]
    assert "valid number" in reasons(models, {**ROW, "spend": "12"})["spend"]


def test_datetimes_outside_the_contract_range_are_refused(models):
    assert (
        "between 2020-01-01" in reasons(models, {**ROW, "joined": "2019-12-31 23:00:00"})["joined"]
    )
    rows, _ = parse_rows(body({**ROW, "joined": "2021-03-04T05:06:07+02:00"}), models)
    assert rows[0].joined.hour == 3  # aware timestamps become naive UTC, like training data
    # converted to UTC, a timestamp at the edge of the calendar overflows: refused, not a 500
    edge = reasons(models, {**ROW, "joined": "0001-01-01T00:30:00+01:00"})["joined"]
    assert "outside the representable dates" in edge


def test_nullable_columns_accept_null_or_absence_and_others_do_not(models):
    rows, _ = parse_rows(body({k: v for k, v in ROW.items() if k != "visits"}), models)
    assert rows[0].visits is None
    assert "required" in reasons(models, {k: v for k, v in ROW.items() if k != "spend"})["spend"]
    assert "spend" in reasons(models, {**ROW, "spend": None})


def test_batches_are_bounded_and_bodies_must_be_json_objects(models):
    assert "at most 3" in reasons(models, {"rows": [ROW] * 4})["rows"]
    assert "at least 1" in reasons(models, {"rows": []})["rows"]
    with pytest.raises(RequestError, match="not valid JSON"):
        parse_rows(b"{not json", models)
    with pytest.raises(RequestError, match="expected a JSON object"):
        parse_rows(b"[1, 2]", models)


def test_frames_get_the_training_dtypes():
    contract = tiny_contract()
    models = build_models(contract)
    rows, _ = parse_rows(body({"rows": [ROW, {**ROW, "visits": None}]}), models)
    frame = Predictor(None, contract).frame(rows)
    assert list(frame.columns) == contract.feature_columns
    assert frame["visits"].dtype == np.float64
    assert np.isnan(frame["visits"].iloc[1])
    assert frame["is_business"].dtype == np.int64
    assert str(frame["joined"].dtype).startswith("datetime64")
    assert frame["plan"].tolist() == ["plus", "plus"]


def test_the_example_row_is_valid_for_the_contract(models):
    rows, _ = parse_rows(body(example_row(tiny_contract())), models)
    assert len(rows) == 1


def test_a_boolean_feature_is_served_as_json_true_and_false():
    """A contract `boolean` column takes JSON true/false and scores like the pipeline."""
    import httpx
    import numpy as np
    import pandas as pd

    from {{ cookiecutter.package }}.config import ModelConfig
    from {{ cookiecutter.package }}.contract import parse_contract
    from {{ cookiecutter.package }}.data import conform
    from {{ cookiecutter.package }}.pipeline.train import build_pipeline
    from {{ cookiecutter.package }}.serve.app import ServeSettings, create_app
    from {{ cookiecutter.package }}.serve.predictor import Predictor

    contract = parse_contract(
        {
            "name": "flags",
            "id": "id",
            "target": "y",
            "columns": {
                "id": {"type": "string", "unique": True},
                "active": {"type": "boolean"},
                "amount": {"type": "float", "min": 0, "max": 10},
                "y": {"type": "integer", "values": [0, 1]},
            },
        }
    )
    rng = np.random.default_rng(0)
    active = rng.random(400) < 0.5
    table = conform(
        pd.DataFrame({"id": [f"r{i}" for i in range(400)], "active": active,
                      "amount": rng.random(400) * 10, "y": (active & (rng.random(400) < 0.8)).astype(int)}),
        contract,
    )  # fmt: skip
    model = build_pipeline(contract, ModelConfig(kind="logistic_regression")).fit(
        table[contract.feature_columns], table["y"]
    )
    app = create_app(Predictor(model, contract), ServeSettings("1"))

    async def post(body):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                return await http.post("/predict", json=body)

    import asyncio

    yes = asyncio.run(post({"id": "a", "active": True, "amount": 5.0}))
    no = asyncio.run(post({"id": "b", "active": False, "amount": 5.0}))
    assert yes.status_code == no.status_code == 200
    assert yes.json()["predictions"][0]["score"] > no.json()["predictions"][0]["score"]
    frame = conform(
        pd.DataFrame({"id": ["a"], "active": [True], "amount": [5.0], "y": [0]}), contract
    )
    expected = model.predict_proba(frame[contract.feature_columns])[0, 1]
    assert yes.json()["predictions"][0]["score"] == pytest.approx(expected, abs=1e-12)
    assert asyncio.run(post({"id": "c", "active": "yes", "amount": 5.0})).status_code == 422
