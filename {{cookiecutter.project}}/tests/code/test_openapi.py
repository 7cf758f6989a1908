"""The published OpenAPI schema is the contract: schemathesis checks a live server against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from {{ cookiecutter.package }}.serve.app import ServeSettings, create_app, server_config
from tests.live_server import LiveServer, free_port
from tests.tiny_contract import tiny_predictor


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    app = create_app(tiny_predictor(), ServeSettings("7", max_batch=20, max_body_bytes=65_536))
    with LiveServer(server_config(app, "127.0.0.1", free_port(), log_config=None)) as server:
        yield server


@pytest.fixture(scope="module")
def api(live) -> OpenApiSchema:
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


def test_predict_publishes_the_contract_body(api):
    """/predict's body is one row or {"rows": [...]}, with the contract's columns and limits."""
    body = api.raw_schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    refs = sorted(option["$ref"].rsplit("/", 1)[1] for option in body["schema"]["anyOf"])
    assert refs == ["TinyBatch", "TinyRow"]
    row = api.raw_schema["components"]["schemas"]["TinyRow"]
    assert set(row["required"]) == {"account", "spend", "plan", "is_business", "joined"}
    assert row["additionalProperties"] is False
    assert row["properties"]["plan"]["enum"] == ["basic", "plus", "pro"]
    rows = api.raw_schema["components"]["schemas"]["TinyBatch"]["properties"]["rows"]
    assert rows["maxItems"] == 20


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_server_keeps_its_published_schema(api, mode):
    """Generated requests, valid and invalid: no 5xx, each status, type and body as documented,
    and invalid ones refused. (Schema-valid bodies may still be refused: JSON Schema cannot say
    "a date between" the contract's bounds, so `positive_data_acceptance` is left out.)
    """
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/healthz", "/readyz", "/metrics"}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # no parameters and no body: nothing to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case) -> None:
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()
