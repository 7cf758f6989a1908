"""A multiclass or regression model on the holdout: its gates, behaviour, slices, coverage, and
the paired champion/challenger test on its per-row loss against a real registry."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package }}.model_io import load_model, save_model
from {{ cookiecutter.package }}.pipeline.promote import compare_on_holdout, decide
from {{ cookiecutter.package }}.pipeline.train import build_pipeline
from {{ cookiecutter.package }}.registry import Registry
from {{ cookiecutter.package }}.task_pipeline import RUNTIME, evaluate_task, predict, task_data
from {{ cookiecutter.package }}.tasks.table import TASKS

from ..conftest import require_output


@pytest.fixture(scope="module")
def task(config):
    if config.task == "binary":
        pytest.skip("task is binary: test_model.py and test_promotion.py judge a binary model")
    return config.task


@pytest.fixture(scope="module")
def model(task):
    return load_model(require_output("models/model.skops"), method=RUNTIME[task].method)


@pytest.fixture(scope="module")
def scored(model, holdout, contract, task):
    X, y, classes = task_data(holdout, contract, task)
    return X, y, classes, predict(model, X, task, classes)


@pytest.fixture(scope="module")
def measured(model, holdout, contract, config, scored):
    """What evaluate measures, recomputed here from the model and the holdout."""
    return evaluate_task(model, holdout, scored[1], contract, config)[0]


def test_metrics_file_is_what_the_model_scores(measured):
    """metrics.json holds the numbers this model gives on this holdout (nothing stale)."""
    written = json.loads(require_output("metrics/metrics.json").read_text(encoding="utf-8"))
    for name, entry in measured.metrics.items():
        assert written["metrics"][name]["value"] == pytest.approx(entry.value, rel=1e-9), name


def test_metric_bounds(measured, config):
    """Every bound of params.yaml gates.min / gates.max holds at the point estimate."""
    gates = config.task_gates
    bounds = [(n, b, ">=") for n, b in gates.min.items() if b is not None]
    bounds += [(n, b, "<=") for n, b in gates.max.items() if b is not None]
    if not bounds:
        pytest.skip("params.yaml sets no gates.min / gates.max bound")
    for name, bound, op in bounds:
        value = measured.metrics[name].value
        assert value >= bound if op == ">=" else value <= bound, f"{name} {value:.4f} {op} {bound}"


def test_beats_the_constant_baselines(measured, task):
    """The model's headline metric beats every constant predictor's (mean/median, prior/majority)."""
    headline = measured.headline
    better = TASKS[task].higher_is_better(headline)
    model_value = measured.metrics[headline].value
    for name, entry in measured.baseline.constants.items():
        beats = model_value > entry.value if better else model_value < entry.value
        assert beats, f"{headline} {model_value:.4f} vs the {name} predictor's {entry.value:.4f}"


def test_invariances(measured, contract):
    """Every behavioural rule in the contract holds for its required share of rows."""
    if not contract.invariances:
        pytest.skip("contract.yaml declares no invariances")
    for name, rule in measured.invariances.items():
        assert rule.share >= rule.min_share, f"{name}: only {rule.share:.1%} of rows"


def test_slices(measured, contract, config):
    """Each slice large enough to judge meets the slice bound on the headline metric."""
    gates = config.task_gates
    if not contract.slices or (gates.min_slice is None and gates.max_slice is None):
        pytest.skip("contract.yaml declares no slices, or params.yaml sets no slice bound")
    judged = {n: s for n, s in measured.slices.items() if s.judged}
    assert judged, "no slice is large enough to judge: lower evaluate.min_slice_size"
    for name, entry in judged.items():
        value = entry.headline.value
        if gates.min_slice is not None:
            assert value >= gates.min_slice, f"slice {name}: {value:.4f}"
        if gates.max_slice is not None:
            assert value <= gates.max_slice, f"slice {name}: {value:.4f}"


def test_prediction_coverage(scored, task):
    """A finite value for every row; a multiclass row's probabilities are in [0, 1] and sum to 1."""
    _, _, classes, prediction = scored
    assert np.isfinite(prediction).all()
    if task == "multiclass":
        assert prediction.shape[1] == len(classes)
        assert ((prediction >= 0) & (prediction <= 1)).all()
        np.testing.assert_allclose(prediction.sum(axis=1), 1.0, atol=1e-9)


def test_predictions_are_deterministic(model, scored, task):
    """The same rows predict the same twice."""
    X, _, classes, prediction = scored
    np.testing.assert_array_equal(predict(model, X, task, classes), prediction)


@pytest.fixture(scope="module")
def training_rows(holdout, contract):
    validated = pd.read_parquet(require_output("data/validated.parquet"))
    return validated[~validated[contract.id].isin(holdout[contract.id])]


def fit(rows, contract, config, model_config=None):
    X, y, _ = task_data(rows, contract, config.task)
    return build_pipeline(contract, model_config or config.model, config.task).fit(X, y)


@pytest.fixture
def registry(tmp_path, request):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return Registry(f"task_{request.node.name}", tracking_uri=uri, root=tmp_path)


def register(registry, model, path, contract):
    save_model(model, path)
    return registry.register(path, {"contract_fingerprint": contract.fingerprint})


def champion_of(registry, model, tmp_path, contract):
    ref = register(registry, model, tmp_path / "champion.skops", contract)
    assert registry.move_alias("champion", ref.version, expected=None)
    return ref


def test_better_challenger_is_promoted(
    registry, model, training_rows, tmp_path, contract, holdout, config, task
):
    """A model trained on 200 rows loses the paired test on per-row loss to the trained one."""
    _, y, classes = task_data(holdout, contract, task)
    too_small = TASKS[task].too_small(y, config.promotion.min_class_count, classes)
    if too_small:
        pytest.skip(f"promote refuses to compare on this holdout ({too_small}); "
                    "test_small_holdout_refuses judges that refusal")  # fmt: skip
    weak = fit(training_rows.head(200), contract, config)
    # a far weaker champion makes the difference's SE larger than a retrain's: the power
    # refusal (its own test below) is lifted for this pair only
    settings = config.promotion.model_copy(update={"max_detectable_delta": float("inf")})
    X = holdout[contract.feature_columns]
    comparison = compare_on_holdout(model, weak, X, y, settings, task, classes)
    if not comparison.significant:
        pytest.skip(
            f"on this holdout ({len(y)} rows) a model trained on 200 rows is about as good as "
            f"the trained one ({comparison.metric} {comparison.champion:.4g} vs "
            f"{comparison.challenger:.4g}, p = {comparison.p_value:.3g}): this table gives no "
            "clearly better challenger"
        )
    old = champion_of(registry, weak, tmp_path, contract)
    new = register(registry, model, tmp_path / "challenger.skops", contract)
    decision = decide(registry, new, model, contract, holdout, settings, task=task)
    assert decision["decision"] == "promoted", decision["reason"]
    assert decision["comparison"]["metric"] == TASKS[task].compared
    assert decision["comparison"]["diff"] > settings.min_delta
    assert registry.get_alias("previous").version == old.version


def test_equal_challenger_is_not_promoted(
    registry, training_rows, tmp_path, contract, holdout, config, task
):
    """A retrain that differs only by seed is not 'better': noise does not promote."""
    reseeded = config.model.model_copy(update={"seed": config.model.seed + 1})
    first = fit(training_rows, contract, config)
    second = fit(training_rows, contract, config, reseeded)
    champion_of(registry, first, tmp_path, contract)
    new = register(registry, second, tmp_path / "challenger.skops", contract)
    decision = decide(registry, new, second, contract, holdout, config.promotion, task=task)
    assert decision["decision"] in ("not_promoted", "refused"), decision["reason"]


def test_small_holdout_refuses(
    registry, model, training_rows, tmp_path, contract, holdout, config, task
):
    """A handful of rows cannot support a verdict: the decision says so instead of guessing."""
    weak = fit(training_rows.head(200), contract, config)
    champion_of(registry, weak, tmp_path, contract)
    new = register(registry, model, tmp_path / "challenger.skops", contract)
    decision = decide(registry, new, model, contract, holdout.head(20), config.promotion, task=task)
    assert decision["decision"] == "refused"
    assert "too small" in decision["reason"]


def test_card_reports_the_measured_headline(measured):
    """The model card shows the headline metric evaluate measured, and every judged slice."""
    card = require_output("reports/model_card.md").read_text(encoding="utf-8")
    assert f"{measured.metrics[measured.headline].value:.4f}" in card
    for name in measured.slices:
        assert name in card


@pytest.fixture(scope="module")
def task_registry(tmp_path_factory, contract, task):
    """A fresh registry whose champion is the trained model, tagged as promote tags it."""
    from ..conftest import TRAINING_TAGS

    root = tmp_path_factory.mktemp("task_registry")
    registry = Registry("task_model", tracking_uri=f"sqlite:///{root / 'mlflow.db'}", root=root)
    meta = json.loads(require_output("models/train_meta.json").read_text(encoding="utf-8"))
    metrics = json.loads(require_output("metrics/metrics.json").read_text(encoding="utf-8"))
    headline = metrics["headline"]
    tags = {k: meta[k] for k in TRAINING_TAGS} | {
        "task": task,
        headline: metrics["metrics"][headline],
    }
    ref = registry.register(require_output("models/model.skops"), tags)
    registry.move_alias("champion", ref.version, expected=None)
    return registry


def test_served_answers_are_the_models_own_predictions(task_registry, contract, task):
    """The server, loaded from the registry, answers holdout rows with the pipeline's own
    prediction (through the training data's dtypes) in the shape its OpenAPI schema publishes."""
    from {{ cookiecutter.package }}.data import conform
    from {{ cookiecutter.package }}.rollout.loadgen import traffic_rows
    from {{ cookiecutter.package }}.serve.app import ServeSettings, create_app
    from {{ cookiecutter.package }}.serve.loading import load_pinned
    from {{ cookiecutter.package }}.serve.schema import response_model
    from {{ cookiecutter.package }}.tasks.outputs import read_back
    from tests.code.test_serve_app import Client

    from ..conftest import ROOT

    predictor, _ = load_pinned(task_registry, task_registry.get_alias("champion"), contract)
    rows, _ = traffic_rows(ROOT / "contract.yaml", contract, limit=40)
    answer = Client(create_app(predictor, ServeSettings("1"))).post("/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    response_model(contract, task, predictor.classes).model_validate(body)
    classes = predictor.classes
    served = read_back(TASKS[task].outputs, body["predictions"], classes)
    features = conform(pd.DataFrame(rows), contract, contract.feature_columns)
    np.testing.assert_allclose(served, predict(predictor.model, features, task, classes), atol=1e-9)
    assert [p["id"] for p in body["predictions"]] == [str(r[contract.id]) for r in rows]


def test_make_score_writes_the_tasks_columns(task_registry, raw_holdout, holdout, contract, task,
                                             scored, tmp_path):  # fmt: skip
    """`make score` on the holdout's raw rows writes, per row, what the model predicts: the
    value, or the class and one probability column per class; and the version it used."""
    from {{ cookiecutter.package }}.score import score_file
    from {{ cookiecutter.package }}.tasks.outputs import probability_column

    batch = tmp_path / "batch.csv"
    raw_holdout.to_csv(batch, index=False)
    out = tmp_path / "scores.parquet"
    summary = score_file(batch, out, contract, task_registry, chunk_rows=max(len(holdout) // 2, 1))
    written = pd.read_parquet(out)
    _, _, classes, prediction = scored
    assert written[contract.id].astype(str).tolist() == holdout[contract.id].astype(str).tolist()
    assert set(written["model_version"]) == {summary.model_version}
    if task == "regression":
        assert list(written.columns) == [contract.id, "value", "model_version"]
        np.testing.assert_allclose(written["value"], prediction, atol=1e-9)
        return
    columns = [probability_column(str(c)) for c in classes]
    assert list(written.columns) == [contract.id, "label", *columns, "model_version"]
    np.testing.assert_allclose(written[columns].to_numpy(), prediction, atol=1e-9)
    expected = [str(classes[i]) for i in prediction.argmax(axis=1)]
    assert written["label"].astype(str).tolist() == expected


@pytest.fixture(scope="module")
def scored_batch(task_registry, raw_holdout, contract, tmp_path_factory):
    """The holdout's raw rows scored by `make score` as an unlabelled batch."""
    from {{ cookiecutter.package }}.score import score_file

    folder = tmp_path_factory.mktemp("delayed")
    raw_holdout.to_csv(folder / "batch.csv", index=False)
    score_file(folder / "batch.csv", folder / "predictions.parquet", contract, task_registry)
    return folder / "predictions.parquet"


def delayed_report(scored_batch, labels, contract, config, task_registry, tmp_path):
    from {{ cookiecutter.package }}.monitoring.performance import performance_report, read_labels
    from {{ cookiecutter.package }}.monitoring.task_performance import read_task_predictions
    from {{ cookiecutter.package }}.task_pipeline import classes_of

    classes = classes_of(contract, config.task)
    predictions, _ = read_task_predictions([scored_batch], contract, config.task, classes)
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    table, _ = read_labels(path, contract, config.task, classes)
    return performance_report(predictions, table, contract, config, task_registry)


def test_delayed_labels_of_the_evaluated_rows_show_no_drop(
    scored_batch, holdout, contract, config, task_registry, tmp_path
):
    """The holdout's own labels, arriving late, reproduce the evaluated headline metric."""
    labels = holdout[[contract.id, contract.target]]
    report = delayed_report(scored_batch, labels, contract, config, task_registry, tmp_path)
    (entry,) = report["versions"].values()
    if not entry["judged"]:
        pytest.skip(f"the holdout cannot be judged as a labelled batch: {entry['reason']}")
    metrics = json.loads(require_output("metrics/metrics.json").read_text(encoding="utf-8"))
    headline = metrics["headline"]
    assert entry["metric"] == headline
    realised = entry["metrics"][headline]["value"]
    assert realised == pytest.approx(metrics["metrics"][headline]["value"], rel=1e-9)
    assert entry["drop"]["status"] == "ok"
    assert report["status"] == "ok"


def test_degraded_delayed_labels_are_a_significant_drop(
    scored_batch, holdout, contract, config, task_registry, tmp_path, task
):
    """Labels that no longer follow the model (half reassigned at random, or values scattered
    by twice their spread) are reported as a drop of the headline metric."""
    labels = holdout[[contract.id, contract.target]].copy()
    rng = np.random.default_rng(7)
    target = labels[contract.target]
    if task == "multiclass":
        values = target.unique()
        flip = rng.random(len(labels)) < 0.5
        labels.loc[flip, contract.target] = rng.choice(values, int(flip.sum()))
    else:
        labels[contract.target] = target + rng.normal(0, 2 * target.std(), len(labels))
    report = delayed_report(scored_batch, labels, contract, config, task_registry, tmp_path)
    (entry,) = report["versions"].values()
    if not entry["judged"]:
        pytest.skip(f"the holdout cannot be judged as a labelled batch: {entry['reason']}")
    assert entry["drop"]["status"] == "drop", entry["drop"]
    assert report["status"] == "drop"
