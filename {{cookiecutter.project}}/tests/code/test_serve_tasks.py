"""A multiclass or regression model served: the class with every class's probability, or the
value; the OpenAPI schema and the prediction log say the same, and requests are refused or
accepted exactly as for a binary model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from {{ cookiecutter.package }}.contract import parse_contract
from {{ cookiecutter.package }}.data import conform
from {{ cookiecutter.package }}.features import build_preprocessor
from {{ cookiecutter.package }}.model_io import environment, save_model
from {{ cookiecutter.package }}.registry import Registry
from {{ cookiecutter.package }}.serve.app import ServeSettings, create_app
from {{ cookiecutter.package }}.serve.loading import ServeStartError, load_pinned
from {{ cookiecutter.package }}.serve.schema import build_models, response_model
from {{ cookiecutter.package }}.serve.task_predictor import TaskPredictor
from tests.code.test_serve_app import Client
from tests.tiny_contract import CONTRACT, TINY_ROW, tiny_predictor, tiny_table

TIERS = ["bronze", "silver", "gold"]


def task_contract(task: str):
    """The tiny contract with a three-class `tier` or a numeric `revenue` as its target."""
    columns = {k: v for k, v in CONTRACT["columns"].items() if k != "left"}
    target = {"multiclass": "tier", "regression": "revenue"}[task]
    columns[target] = (
        {"type": "category", "values": TIERS}
        if task == "multiclass"
        else {"type": "float", "min": 0.0, "max": 10_000.0}
    )
    return parse_contract({**CONTRACT, "target": target, "columns": columns}, source="tiny")


def fitted(task: str):
    """A pipeline on the tiny table whose target depends on spend and plan."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    contract = task_contract(task)
    table = tiny_table(600, seed=3)
    X = conform(table, contract, contract.feature_columns)
    signal = X["spend"].to_numpy() + 40 * (X["plan"].astype(str).to_numpy() == "pro")
    if task == "multiclass":
        y = np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3]))  # class codes 0, 1, 2
        estimator = LogisticRegression(max_iter=5000)
    else:
        y = 3.0 * signal + np.random.default_rng(0).normal(0, 5, len(signal))
        estimator = Ridge()
    model = Pipeline([("prep", build_preprocessor(contract)), ("model", estimator)]).fit(X, y)
    return contract, model


@pytest.fixture(scope="module", params=["multiclass", "regression"])
def served(request):
    task = request.param
    contract, model = fitted(task)
    return task, contract, model, TaskPredictor(model, contract, task)


def rows_of(contract, *rows):
    return [build_models(contract).row.model_validate(row) for row in rows]


def test_answers_are_the_pipelines_own_predictions(served):
    """/predict answers what the pipeline predicts for the row, in the task's shape."""
    task, contract, model, predictor = served
    body = {"rows": [TINY_ROW, {**TINY_ROW, "account": "A9", "plan": "pro", "spend": 900.0}]}
    answer = Client(create_app(predictor, ServeSettings("3"))).post("/predict", json=body).json()
    frame = predictor.frame(rows_of(contract, *body["rows"]))
    got = answer["predictions"]
    assert [p["id"] for p in got] == ["A000001", "A9"]
    if task == "regression":
        assert [set(p) for p in got] == [{"id", "value"}] * 2
        np.testing.assert_allclose([p["value"] for p in got], model.predict(frame), rtol=1e-12)
    else:
        proba = model.predict_proba(frame)
        assert [p["label"] for p in got] == [TIERS[i] for i in proba.argmax(axis=1)]
        for p, row in zip(got, proba, strict=True):
            assert set(p) == {"id", "label", "probabilities"}
            assert list(p["probabilities"]) == TIERS
            np.testing.assert_allclose(list(p["probabilities"].values()), row, rtol=1e-12)
    response_model(contract, task, predictor.classes).model_validate(answer)


def test_openapi_publishes_the_tasks_answer(served):
    """The schema's Prediction is the value, or the class and one probability per class."""
    task, _, _, predictor = served
    spec = Client(create_app(predictor, ServeSettings("3"))).get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    prediction = schemas["Prediction"]
    assert "score" not in prediction["properties"]
    if task == "regression":
        assert prediction["required"] == ["value"]
        assert "revenue" in prediction["properties"]["value"]["description"]
    else:
        assert prediction["properties"]["label"]["enum"] == TIERS
        probabilities = schemas["Probabilities"]
        assert probabilities["required"] == TIERS
        assert probabilities["additionalProperties"] is False


def test_refuses_and_accepts_what_the_binary_server_does(served):
    """The request side is the contract's, whatever the task: same 200s, same 422s."""
    _, _, _, predictor = served
    binary = Client(create_app(tiny_predictor(), ServeSettings("1")))
    task = Client(create_app(predictor, ServeSettings("3")))
    bodies = [
        TINY_ROW,
        {**TINY_ROW, "visits": None},
        {**TINY_ROW, "plan": "gold", "extra": 1},
        {k: v for k, v in TINY_ROW.items() if k != "spend"},
        {"rows": [TINY_ROW] * 3},
        {"rows": []},
    ]
    for body in bodies:
        expected = binary.post("/predict", json=body)
        got = task.post("/predict", json=body)
        assert got.status_code == expected.status_code, body
        if got.status_code == 422:
            assert got.json() == expected.json(), body


def test_prediction_log_writes_the_answer(served, tmp_path):
    """Each logged line holds the row's answer as /predict gave it, and its features."""
    _, _, _, predictor = served
    log = tmp_path / "predictions.jsonl"
    client = Client(create_app(predictor, ServeSettings("3", prediction_log=str(log))))
    answer = client.post("/predict", json=TINY_ROW).json()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    logged = lines[-1]
    (expected,) = answer["predictions"]
    assert {k: logged[k] for k in expected} == expected
    assert logged["features"]["spend"] == TINY_ROW["spend"]
    assert logged["model_version"] == "3"


def scraped_buckets(text: str) -> dict[float, float]:
    """`model_prediction_score`'s cumulative counts by upper bound, as /metrics exposes them."""
    buckets = {}
    for line in text.splitlines():
        if line.startswith("model_prediction_score_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.split()[-1])
    return buckets


def test_metrics_count_each_answer_on_the_tasks_scale(served):
    """`model_prediction_score` counts every answer: the answered class's probability in
    twentieths, or a regression's value in buckets at the holdout answers' quantiles, which
    training records in the version's reference profile (without them: the target's range)."""
    from {{ cookiecutter.package }}.drift import RunningProfile, build_reference
    from tests.tiny_contract import DRIFT

    task, contract, model, predictor = served
    table = conform(tiny_table(400, seed=5), contract, contract.feature_columns)
    reference = build_reference(table, contract, bins=10)
    edges = [800.0, 1500.0, 2400.0]
    reference["predictions"] = {"edges": edges}
    client = Client(create_app(predictor, ServeSettings("3"), (RunningProfile(reference), DRIFT)))
    body = {"rows": [{**TINY_ROW, "account": f"A{i}", "spend": 90.0 * i} for i in range(1, 11)]}
    answers = client.post("/predict", json=body).json()["predictions"]
    buckets = scraped_buckets(client.get("/metrics").text)
    if task == "regression":
        assert list(buckets) == [*edges, float("inf")]
        observed = np.array([a["value"] for a in answers])
    else:
        assert list(buckets) == [*(i / 20 for i in range(1, 20)), float("inf")]
        observed = np.array([max(a["probabilities"].values()) for a in answers])
    for bound, count in buckets.items():
        assert count == (observed <= bound).sum(), (bound, count, observed)
    bare = TaskPredictor(model, contract, task).observed_buckets(None)
    if task == "regression":  # no recorded answers: the contract's range, 0 to 10,000
        assert bare == tuple(np.linspace(0.0, 10_000.0, 21)[1:-1])
    else:  # a probability's scale needs no reference
        assert bare == tuple(i / 20 for i in range(1, 20))


def test_a_tagged_version_loads_as_its_task(served, tmp_path):
    """A registry version tagged with its task is served as that task (a regression model,
    which has no predict_proba, loads too); an unknown task tag is refused, naming it."""
    task, contract, model, _ = served
    registry = Registry("tasks", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", root=tmp_path)
    save_model(model, tmp_path / "model.skops")
    tags = {**environment(), "contract_fingerprint": contract.fingerprint, "task": task}
    ref = registry.register(tmp_path / "model.skops", tags)
    predictor, warnings = load_pinned(registry, ref, contract)
    assert isinstance(predictor, TaskPredictor)
    assert predictor.task == task
    assert predictor.fast is not None, warnings  # one row takes the checked shortcut
    odd = registry.register(tmp_path / "model.skops", {**tags, "task": "ranking"})
    with pytest.raises(ServeStartError, match="task='ranking'"):
        load_pinned(registry, odd, contract)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_spark_scoring_refuses_a_version_of_another_task(task):
    """`make score ENGINE=spark` writes a binary score and label only: it refuses a multiclass
    or regression version, naming its task and the engine that scores it, before any work."""
    from {{ cookiecutter.package }}.errors import RefusedError
    from {{ cookiecutter.package }}.registry import ModelRef
    from {{ cookiecutter.package }}.score_spark import refuse_other_tasks

    with pytest.raises(RefusedError, match=f"is a {task} model: ENGINE=spark"):
        refuse_other_tasks(ModelRef("4", "0" * 64, {"task": task}))
    refuse_other_tasks(ModelRef("4", "0" * 64, {}))  # binary (no tag) goes on
