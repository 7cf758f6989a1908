"""The server over its ASGI interface: predictions, field-level errors, body limits, metrics."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from {{ cookiecutter.package }}.asgi.limits import BodyLimit, LoopBudget
from {{ cookiecutter.package }}.data import conform
from {{ cookiecutter.package }}.serve.app import ServeSettings, create_app
from {{ cookiecutter.package }}.serve.predictor import Predictor
from {{ cookiecutter.package }}.testing.faults import FaultError, FaultInjector, parse_fault
from tests.tiny_contract import TINY_ROW as ROW
from tests.tiny_contract import tiny_predictor, tiny_table


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return tiny_predictor()


class Client:
    """Call an app in process, with its lifespan run (warm-up) first.

    `server` is the FastAPI app whose lifespan runs when `app` is a layer wrapped around it.
    """

    def __init__(self, app, server=None) -> None:
        self.app = app
        self.server = server or app

    def _call(self, method: str, url: str, **kwargs) -> httpx.Response:
        async def go() -> httpx.Response:
            async with self.server.router.lifespan_context(self.server):
                transport = httpx.ASGITransport(app=self.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    return await http.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str) -> httpx.Response:
        return self._call("GET", url)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self._call("POST", url, **kwargs)


@pytest.fixture
def client(predictor) -> Client:
    return Client(
        create_app(predictor, ServeSettings("7", "canary", max_batch=5, max_body_bytes=4096))
    )


def test_ready_after_warm_up_and_scores_match_the_model(client, predictor):
    assert client.get("/readyz").json() == {"ready": True, "model_version": "7"}
    answer = client.post("/predict", json={"rows": [ROW, {**ROW, "account": "A9"}]}).json()
    assert answer["model_version"] == "7"
    assert answer["variant"] == "canary"
    frame_score = predictor.scores(predictor_rows(predictor))[0]
    assert answer["predictions"][0]["score"] == pytest.approx(frame_score, abs=1e-12)
    assert answer["predictions"][1]["id"] == "A9"
    assert answer["predictions"][0]["label"] in (0, 1)


def predictor_rows(predictor):
    from {{ cookiecutter.package }}.serve.schema import build_models

    return [build_models(predictor.contract).row.model_validate(ROW)]


def test_bad_requests_get_422_naming_the_field_and_the_server_keeps_serving(client):
    response = client.post("/predict", json={**ROW, "plan": "gold", "extra": 1})
    assert response.status_code == 422
    fields = {e["field"]: e["reason"] for e in response.json()["detail"]}
    assert set(fields) == {"plan", "extra"}
    assert client.post("/predict", json={"rows": [ROW] * 6}).status_code == 422
    assert client.post("/predict", json=ROW).status_code == 200


def test_large_bodies_get_413(client):
    response = client.post("/predict", content=b"{" + b" " * 5000 + b"}")
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["detail"][0]["reason"]

    async def chunks():
        for _ in range(10):
            yield b" " * 1000

    assert client.post("/predict", content=chunks()).status_code == 413


def test_metrics_use_the_shared_names_and_labels(client):
    client.post("/predict", json=ROW)
    client.post("/predict", json={"nope": 1})
    text = client.get("/metrics").text
    assert 'model_requests_total{model_version="7",outcome="ok",variant="canary"} 1.0' in text
    assert 'model_requests_total{model_version="7",outcome="rejected",variant="canary"} 1.0' in text
    assert "model_request_latency_seconds_bucket" in text
    assert "model_prediction_score_bucket" in text


def test_chunked_bodies_without_a_length_are_cut_off_by_the_middleware():
    sent: list[dict] = []
    chunks = [{"type": "http.request", "body": b"x" * 600, "more_body": True} for _ in range(5)]

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def receive():
        return chunks.pop(0)

    async def send(message):
        sent.append(message)

    limited = BodyLimit(app, max_bytes=2000)
    asyncio.run(limited({"type": "http", "headers": []}, receive, send))
    assert sent[0]["status"] == 413
    assert len(chunks) == 1  # it stopped reading once the limit was passed


def test_fault_specs_parse_and_errors_are_an_exact_share():
    fault = parse_fault("errors=0.25,after=4")
    actions = [fault.on_request() for _ in range(24)]
    assert actions[:4] == [None] * 4
    assert actions.count("error") == 5
    with pytest.raises(FaultError, match="unknown fault"):
        parse_fault("explode")


def faulty(predictor, spec: str) -> Client:
    """The production app inside the test harness's fault injector, as `testing.faults` runs it."""
    app = create_app(predictor, ServeSettings("7"))
    return Client(FaultInjector(app, parse_fault(spec), app.state.metrics.count), app)


def test_injected_errors_are_a_share_counted_by_the_servers_own_metrics(predictor):
    client = faulty(predictor, "errors=0.5")
    codes = [client.post("/predict", json=ROW).status_code for _ in range(10)]
    assert codes.count(500) == 5
    assert codes.count(200) == 5
    text = client.get("/metrics").text
    assert 'model_requests_total{model_version="7",outcome="error",variant="stable"} 5.0' in text
    assert client.get("/healthz").status_code == 200  # only /predict is broken


def test_an_injected_delay_is_in_the_served_latency(predictor):
    client = faulty(predictor, "slow=300")
    assert client.post("/predict", json=ROW).status_code == 200
    text = client.get("/metrics").text
    # the one request is above the 0.25 s bucket: the analysis sees a slow model
    assert (
        'model_request_latency_seconds_bucket{le="0.25",model_version="7",variant="stable"} 0.0'
        in text
    )


def test_a_never_ready_fault_keeps_readyz_at_503(predictor):
    client = faulty(predictor, "never_ready")
    assert client.get("/readyz").status_code == 503
    assert client.post("/predict", json=ROW).status_code == 200


def test_the_production_server_has_no_fault_path(predictor, monkeypatch):
    """Faults come only from the test harness's entry point: no argument, setting or
    environment variable of `serve` turns them on, and serve/ never imports the harness."""
    import inspect
    import subprocess
    import sys

    from {{ cookiecutter.package }}.serve import app as server
    from tests.conftest import ROOT

    assert not any("fault" in name for name in inspect.signature(create_app).parameters)
    assert not any("fault" in name for name in inspect.signature(ServeSettings).parameters)
    for flag in (["--fault", "errors=1"], ["--allow-faults"]):
        with pytest.raises(SystemExit) as refused:
            server.build_parser().parse_args(flag)
        assert refused.value.code == 2  # argparse: unrecognized arguments
    # the variable that used to enable faults does nothing: every answer is a 200
    monkeypatch.setenv("SERVE_ALLOW_FAULTS", "1")
    client = Client(create_app(predictor, ServeSettings("7")))
    assert {client.post("/predict", json=ROW).status_code for _ in range(10)} == {200}
    # importing the production server loads no fault injection
    package = server.__name__.split(".")[0]
    script = (
        f"import sys, {package}.serve.app; "
        f"print(sorted(m for m in sys.modules if m.startswith('{package}.testing')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.strip() == "[]", done.stdout
    # and the image's build context leaves the harness out, the server keeps its package
    assert not in_image_context(f"src/{package}/testing/faults.py")
    assert in_image_context(f"src/{package}/serve/app.py")


def in_image_context(path: str) -> bool:
    """Whether `docker build` sends `path`: .dockerignore's patterns, the last match deciding."""
    from fnmatch import fnmatch

    from tests.conftest import ROOT

    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    sent = True
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith("#"):
            continue
        keep, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        if any(fnmatch(prefix, pattern) for prefix in prefixes):
            sent = keep
    return sent


def test_served_traffic_is_profiled_against_the_training_reference(predictor):
    """/drift judges what the server received with the same bins and PSI as a batch, and
    reports the PSI without the reference's bins."""
    from {{ cookiecutter.package }}.drift import RunningProfile, build_reference
    from tests.tiny_contract import DRIFT

    contract = predictor.contract
    reference = build_reference(conform(tiny_table(800, seed=1), contract), contract, bins=10)
    profile = RunningProfile(reference)
    client = Client(create_app(predictor, ServeSettings("7"), drift=(profile, DRIFT)))
    for _ in range(3):
        assert client.post("/predict", json={"rows": [ROW, ROW]}).status_code == 200
    report = client.get("/drift").json()
    assert report["model_version"] == "7"
    assert profile.rows == 6
    assert report["status"] in ("ok", "drift", "too_few_rows")
    assert "spend" in {feature["feature"] for feature in report["features"]}
    # the reference's bins are the training data's quantiles: the traffic port does not serve them
    assert not any("bins" in feature for feature in report["features"])
    assert "bins" in profile.compare(DRIFT)["features"][0]  # they are still judged with
    # the same numbers as Prometheus metrics: one PSI series per feature, rows and volume
    scraped = client.get("/metrics").text
    psi = {f["feature"]: f["psi"] for f in report["features"] if f["psi"] is not None}
    for feature, value in psi.items():
        labels = f'feature="{feature}",model_version="7",variant="stable"'
        line = "model_feature_psi{" + labels + "}"  # no doubled braces: this file is a template
        assert any(row.startswith(line) and float(row.split()[-1]) == pytest.approx(value)
                   for row in scraped.splitlines()), line  # fmt: skip
    assert 'model_drift_rows{model_version="7",variant="stable"} 6.0' in scraped
    assert 'model_predicted_rows_total{model_version="7",variant="stable"} 6.0' in scraped


def test_no_reference_no_drift_report(client):
    """A version registered without a reference says so instead of inventing one."""
    response = client.get("/drift")
    assert response.status_code == 404
    assert "reference" in response.json()["detail"]


class BlockingPredictor:
    """Wraps a predictor; each scoring call waits until `release` is set (a slow model)."""

    def __init__(self, inner: Predictor) -> None:
        self.inner = inner
        self.contract = inner.contract
        self.fast = inner.fast
        self.release = threading.Event()
        self.calls = 0

    def __getattr__(self, name):  # task, classes, observed: the inner predictor's
        return getattr(self.inner, name)

    def answer(self, rows):
        self.calls += 1
        if self.calls > 1:  # the warm-up call passes
            assert self.release.wait(timeout=10), "never released"
        return self.inner.answer(rows)


def test_health_answers_while_a_prediction_is_running_and_excess_gets_503(predictor):
    """Scoring runs off the event loop; beyond max_inflight the server says 503 + Retry-After."""
    slow = BlockingPredictor(predictor)
    app = create_app(slow, ServeSettings("7", max_inflight=1))

    async def go():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                # a batch: bodies this large always go to the worker thread
                batch = {"rows": [{**ROW, "account": f"A{i}"} for i in range(60)]}
                first = asyncio.create_task(http.post("/predict", json=batch))
                await asyncio.sleep(0.2)  # the first request is now scoring in its thread
                health = await asyncio.wait_for(http.get("/healthz"), timeout=2)
                busy = await asyncio.wait_for(http.post("/predict", json=ROW), timeout=2)
                slow.release.set()
                done = await asyncio.wait_for(first, timeout=10)
                metrics = (await http.get("/metrics")).text
        return health, busy, done, metrics

    health, busy, done, metrics = asyncio.run(go())
    assert health.status_code == 200
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert done.status_code == 200
    assert 'outcome="error",variant="stable"} 1.0' in metrics


def test_an_unexpected_error_is_a_counted_clean_500(predictor, caplog):
    """Whatever raises inside the app: a JSON 500 without internals, counted as an error."""

    class Broken(BlockingPredictor):
        def answer(self, rows):
            if rows[0].account == ROW["account"]:  # not the warm-up row
                raise RecursionError("deep inside the model")
            return self.inner.answer(rows)

    client = Client(create_app(Broken(predictor), ServeSettings("7")))
    response = client.post("/predict", json=ROW)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; the server log has the cause"}
    assert "deep inside" not in response.text
    text = client.get("/metrics").text
    assert 'model_requests_total{model_version="7",outcome="error",variant="stable"} 1.0' in text


def test_the_loop_budget_lets_inline_work_use_half_the_time_at_most():
    """Inline scoring stops once it used its share; the bucket refills with wall time."""
    budget = LoopBudget(share=0.5, burst=0.005)
    assert budget.available()
    budget.spend(0.020)  # one slow inline call
    assert not budget.available()
    time.sleep(0.050)  # refills 25 ms at half speed: 5 ms left after the 20 ms debt
    assert budget.available()


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (None, 200),
        ("application/json", 200),
        ("application/json; charset=UTF-8", 200),
        ('application/json; charset="utf-8"; boundary=x', 200),
        ("application/problem+json", 200),
        ("text/plain", 415),
        ("application/json; charset=utf-16", 415),
        ("multipart/form-data; boundary=x", 415),
    ],
)
def test_media_types(client, content_type, status):
    """JSON in UTF-8 (declared or not) is read; anything else is refused before parsing."""
    headers = {} if content_type is None else {"content-type": content_type}
    body = json.dumps(ROW).encode()
    assert client.post("/predict", content=body, headers=headers).status_code == status


def test_every_answer_carries_a_request_id_and_is_logged(predictor, tmp_path):
    """A caller's X-Request-ID comes back and keys the logged row; without one, one is made."""
    log = tmp_path / "predictions.jsonl"
    client = Client(create_app(predictor, ServeSettings("7", "canary", prediction_log=str(log))))
    given = client.post("/predict", json={"rows": [ROW]}, headers={"X-Request-ID": "abc-1"})
    assert given.headers["x-request-id"] == "abc-1"
    assert given.json()["request_id"] == "abc-1"
    made = client.post("/predict", json=ROW)
    assert made.json()["request_id"] == made.headers["x-request-id"] != "abc-1"
    refused = client.post("/predict", json={"rows": [{**ROW, "account": None}]})
    assert refused.status_code == 422
    assert refused.headers["x-request-id"]
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["request_id"] for r in records] == ["abc-1", made.json()["request_id"]]
    assert records[0]["id"] == ROW["account"]
    assert records[0]["variant"] == "canary"
    assert records[0]["model_version"] == "7"
    assert records[0]["features"]["plan"] == ROW["plan"]
