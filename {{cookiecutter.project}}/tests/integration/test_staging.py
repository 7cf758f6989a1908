"""The staging server over real HTTP: contract round-trip, golden predictions, error paths, health.

Run `make deploy-staging` first; the URL comes from $STAGING_URL or `.deploy/state.json`.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

from {{ cookiecutter.package }}.contract import Contract
from {{ cookiecutter.package }}.serve.predictor import example_row
from {{ cookiecutter.package }}.serve.schema import response_model, target_labels
from {{ cookiecutter.package }}.tasks.outputs import read_back
from {{ cookiecutter.package }}.tasks.table import TASKS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / ".deploy"


@pytest.fixture(scope="module")
def staging() -> str:
    url = os.environ.get("STAGING_URL")
    if not url and (DEPLOY / "state.json").is_file():
        staged = json.loads((DEPLOY / "state.json").read_text(encoding="utf-8")).get("staging")
        url = staged["url"] if staged else None
    if not url:
        pytest.fail("no staging server: run `make deploy-staging` (or set STAGING_URL)")
    return url.rstrip("/")


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    path = DEPLOY / "golden.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: `make deploy-staging` records it")
    return json.loads(path.read_text(encoding="utf-8"))


def call(url: str, method: str, path: str, body: bytes | None = None, headers=None):
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data.decode("utf-8", "replace")


def predict(url: str, obj: Any):
    body = json.dumps(obj).encode()
    return call(url, "POST", "/predict", body, {"content-type": "application/json"})


def announce_oversized_body(url: str, size: int) -> int:
    """Status for a request whose Content-Length is too big, answered before any body is sent.

    Sending the body itself would race the server closing the connection after its 413.
    """
    parsed = urlparse(url)
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {parsed.hostname}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    )
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(head.encode())
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def fields(answer: dict[str, Any]) -> set[str]:
    return {error["field"] for error in answer["detail"]}


def test_health_and_readiness(staging, golden):
    status, health = call(staging, "GET", "/healthz")
    assert status == 200
    assert health["model_version"] == golden["model_version"]
    assert call(staging, "GET", "/readyz")[0] == 200


def test_golden_rows_score_exactly_as_the_model_did_at_deploy_time(staging, golden):
    """Binary: each score; a regression: each value; multiclass: every class's probability."""
    status, answer = predict(staging, {"rows": golden["rows"]})
    assert status == 200
    outputs = TASKS[golden["task"]].outputs
    served = read_back(outputs, answer["predictions"], golden["classes"])
    expected = np.asarray(golden["predictions"], dtype=np.float64)
    np.testing.assert_allclose(served, expected, rtol=0, atol=golden["tolerance"])


def test_contract_round_trip_single_row_echoes_the_id(staging, golden, contract: Contract):
    """One row in, one answer out, in the shape the server's OpenAPI schema publishes."""
    row = golden["rows"][0]
    status, answer = predict(staging, row)
    assert status == 200
    (prediction,) = answer["predictions"]
    assert prediction["id"] == str(row[contract.id])
    response_model(contract, golden["task"], golden["classes"]).model_validate(answer)
    if golden["task"] == "binary":
        assert 0.0 <= prediction["score"] <= 1.0
        assert prediction["label"] in target_labels(contract)  # the target's own values


def test_every_contract_column_is_required_or_nullable(staging, contract: Contract):
    row = example_row(contract)
    assert predict(staging, row)[0] == 200
    for name in contract.feature_columns:
        status, answer = predict(staging, {k: v for k, v in row.items() if k != name})
        if contract.columns[name].nullable:
            assert status == 200, name
        else:
            assert status == 422, name
            assert name in fields(answer)


def test_values_outside_the_contract_get_422_naming_the_field(staging, contract: Contract):
    row = example_row(contract)
    for name in contract.feature_columns:
        column = contract.columns[name]
        if column.values is not None:
            bad = "not-an-allowed-value" if column.type == "category" else 10**9
        elif column.is_numeric and column.max is not None:
            bad = float(column.max) + 1 if column.type == "float" else int(float(column.max)) + 1
        elif column.type == "datetime":
            bad = "1900-01-01 00:00:00"
        else:
            continue
        status, answer = predict(staging, {**row, name: bad})
        assert status == 422, name
        assert name in fields(answer)


def test_error_paths_and_the_server_keeps_serving(staging, contract: Contract):
    row = example_row(contract)
    status, answer = predict(staging, {**row, "surprise": 1})
    assert status == 422
    assert "surprise" in fields(answer)
    assert (
        call(staging, "POST", "/predict", b"{broken", {"content-type": "application/json"})[0]
        == 422
    )
    assert predict(staging, {"rows": []})[0] == 422
    assert announce_oversized_body(staging, 2_000_000) == 413
    assert predict(staging, row)[0] == 200


def test_metrics_are_exposed_with_the_shared_names(staging):
    status, text = call(staging, "GET", "/metrics")
    assert status == 200
    for name in ("model_requests_total", "model_request_latency_seconds", "model_prediction_score"):
        assert name in text


def test_served_traffic_has_a_drift_report(staging, golden):
    """Staging profiles what it receives against the version's training reference."""
    predict(staging, {"rows": golden["rows"]})
    status, report = call(staging, "GET", "/drift")
    assert status == 200, report
    assert report["rows"]["current"] >= len(golden["rows"])
    assert report["status"] in ("ok", "drift", "too_few_rows")
