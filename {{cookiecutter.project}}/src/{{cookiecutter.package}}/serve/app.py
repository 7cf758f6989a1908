"""The model server: FastAPI on uvicorn, one process, one pinned model version.

`ServeSettings` says what the process serves, `Scorer` does the work with no framework in
sight (a refused body is a `RequestError` carrying its HTTP status), and `create_app` is the
thin shell of routes around it, inside the shed, guard and body-limit layers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import uvicorn
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..asgi.guard import RECEIVED_AT, Guard
from ..asgi.limits import Admission, ASGIApp, BodyLimit, LoopBudget, Shed
from ..asgi.metrics import ServeMetrics
from ..asgi.protocol import MAX_HEAD_BYTES, READ_TIMEOUT_S, LimitedH11Protocol, limited_protocol
from ..config import Shadow
from ..drift import RunningProfile
from ..errors import run_main
from ..rollout.shadow import ShadowMetrics, ShadowMirror
from .prediction_log import REQUEST_ID_HEADER, PredictionLog, request_id
from .predictor import Predictor, example_row
from .schema import (
    ERROR_RESPONSES,
    RequestError,
    build_models,
    media_type_error,
    parse_rows,
    request_body_schema,
    response_model,
)

JSON = "application/json"
VARIANT_HEADER = "x-route-variant"  # the local router names the role it routed to
# the roles a router may name; anything else in the header is ignored, never logged
ROLES = frozenset({"stable", "canary", "previous", "staging", "shadow"})
INLINE_BYTES = 4_096  # a body this small is a row or a few: scored on the loop while it is idle

Drift = tuple[RunningProfile, Mapping[str, float]]  # served profile, judged with these limits


@dataclass(frozen=True)
class ServeSettings:
    """What one server process serves and how much it takes on.

    Scoring runs in at most `workers` threads, so the event loop stays free for health probes;
    beyond `max_inflight` requests being scored, new ones are answered 503 at once. One
    worker: with OMP_NUM_THREADS=1 and the GIL, a second one measured no faster (it contends
    with the event loop for the same lock; bench/bench_serving.py, healthz under saturation).
    """

    model_version: str
    variant: str = "stable"
    max_batch: int = 1000
    max_body_bytes: int = 1_048_576
    max_inflight: int = 64
    workers: int = 1
    shadow_url: str | None = None  # in a cluster the server itself mirrors to the shadow
    shadow: Shadow | None = None
    prediction_log: str | None = None  # a file, `-` for stdout, None for none
    log_rotation: tuple[int, int] = (10_000_000, 5)  # bytes per file, files kept


class Scorer:
    """The server without its framework: parse, profile, score, log and count one body.

    A body it refuses raises RequestError, which carries its HTTP status; anything else is a
    bug, which the Guard layer answers as a counted 500.
    """

    def __init__(
        self,
        predictor: Predictor,
        settings: ServeSettings,
        metrics: ServeMetrics,
        drift: Drift | None = None,
    ) -> None:
        self.predictor = predictor
        self.settings = settings
        self.metrics = metrics
        self.drift = drift
        self.models = build_models(predictor.contract, settings.max_batch)
        self.admission = Admission(settings.max_inflight)
        self.ready = False
        self.log = (
            PredictionLog(settings.prediction_log, metrics.registry, *settings.log_rotation)
            if settings.prediction_log
            else None
        )
        self.mirror = None
        if settings.shadow_url:
            spec = settings.shadow or Shadow()
            self.mirror = ShadowMirror(
                settings.shadow_url,
                "shadow",
                spec.sample,
                spec.queue,
                spec.timeout_ms,
                ShadowMetrics(metrics.registry),
                relative_tolerance=spec.relative_tolerance,
                tolerance_floor=spec.tolerance_floor,
            )
        self._inline = LoopBudget()
        self._limiter: anyio.CapacityLimiter | None = None
        if drift is not None:
            profile, limits = drift
            metrics.watch_drift(lambda: profile.compare(limits))

    def role(self, header: str | None) -> str:
        """The role a router routed this request as, or this server's own.

        A canary promoted to stable keeps its process: the router's header has its role now.
        """
        return header if header in ROLES else self.settings.variant

    def score(self, body: bytes, rid: str, role: str) -> list[dict[str, Any]]:
        """Parse, profile, score and log one body (on the loop or in a worker thread)."""
        rows, _ = parse_rows(body, self.models)
        if self.drift is not None:
            # the same bins as the training reference: served traffic is judged like a batch
            self.drift[0].update_many(row.model_dump() for row in rows)
        answers = self.predictor.answer(rows)
        if self.log is not None:  # queued here, written by the log's own thread
            features = [row.model_dump(mode="json") for row in rows]
            self.log.write(rid, self.settings.model_version, role, features, answers)
        return answers

    async def predict(self, body: bytes, rid: str, role: str, start: float) -> bytes:
        """The JSON answer to one body whose request arrived at `start` (perf_counter)."""
        with self.admission.admitted():
            # Scoring is CPU work (one row through a 200-tree model takes milliseconds). A
            # small body is scored on the loop while the loop has time to spare: no thread hop
            # for a lone client. Under load the budget runs out and scoring moves to the
            # worker, so health probes never queue behind more than a few milliseconds of it.
            if len(body) <= INLINE_BYTES and self._inline.available():
                began = time.perf_counter()
                try:
                    answers = self.score(body, rid, role)
                finally:
                    self._inline.spend(time.perf_counter() - began)
            else:
                answers = await anyio.to_thread.run_sync(
                    self.score, body, rid, role, limiter=self._limiter
                )
        self.metrics.rows.inc(len(answers))
        for value in self.predictor.observed(answers):
            self.metrics.score.observe(value)
        payload = {
            "request_id": rid,
            "model_version": self.settings.model_version,
            "variant": role,
            "predictions": answers,
        }
        content = json.dumps(payload).encode()
        seconds = time.perf_counter() - start
        self.metrics.latency.observe(seconds)
        if self.mirror is not None:
            self.mirror.offer(body, content, seconds)
        return content

    def drift_report(self) -> dict[str, Any] | None:
        """Served drift per feature, without the reference's bins: those are the training
        data's quantiles, which no caller of the traffic port needs (`make drift-check` has them).
        """
        if self.drift is None:
            return None
        profile, limits = self.drift
        report = profile.compare(limits)
        for feature in report["features"]:
            feature.pop("bins", None)
        return {"model_version": self.settings.model_version, **report}

    @asynccontextmanager
    async def running(self, _: Any = None) -> AsyncIterator[None]:
        """Warm up, then serve; a clean stop writes every queued log record."""
        self._limiter = anyio.CapacityLimiter(self.settings.workers)
        if self.log is not None:
            self.log.start()
        warm = self.models.row.model_validate(example_row(self.predictor.contract))
        self.predictor.answer([warm])  # the first call pays for lazy initialisation
        self.ready = True
        try:
            if self.mirror is None:
                yield
                return
            import aiohttp

            async with aiohttp.ClientSession() as session:
                self.mirror.start(session)
                yield
                await self.mirror.stop()
        finally:
            if self.log is not None:
                self.log.stop()


def create_app(
    predictor: Predictor, settings: ServeSettings, drift: Drift | None = None
) -> FastAPI:
    """The framework shell around a Scorer: /predict, /healthz, /readyz (after warm-up),
    /metrics, /drift and /openapi.json, inside the shed, guard and body-limit layers."""
    reference = drift[0].reference if drift is not None else None
    buckets = predictor.observed_buckets(reference)
    metrics = ServeMetrics(settings.variant, settings.model_version, buckets)
    scorer = Scorer(predictor, settings, metrics, drift)
    version = settings.model_version
    app = FastAPI(
        title=f"{predictor.contract.name} model server",
        version=version,
        lifespan=scorer.running,
        # Swagger UI loads from a CDN, which a server with no egress cannot reach: the schema
        # is at /openapi.json for any OpenAPI viewer or client generator instead
        docs_url=None,
        redoc_url=None,
    )
    body_schema, schema_defs = request_body_schema(scorer.models)

    @app.post(
        "/predict",
        response_model=response_model(predictor.contract, predictor.task, predictor.classes),
        responses=ERROR_RESPONSES,
        openapi_extra={
            "requestBody": {"required": True, "content": {JSON: {"schema": body_schema}}}
        },
    )
    async def predict(request: Request) -> Response:
        start = request.scope.get(RECEIVED_AT) or time.perf_counter()
        # every answer names its request: the caller's X-Request-ID, or a new one
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        traced = {REQUEST_ID_HEADER: rid}
        role = scorer.role(request.headers.get(VARIANT_HEADER))
        try:
            refused = media_type_error(request.headers.get("content-type"))
            if refused is not None:
                raise refused
            content = await scorer.predict(await request.body(), rid, role, start)
        except RequestError as error:
            return JSONResponse({"detail": error.errors}, status_code=error.status, headers=traced)
        return Response(content, media_type=JSON, headers=traced)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "variant": settings.variant, "model_version": version}

    @app.get("/readyz", responses={503: {"description": "warming up"}})
    async def readyz() -> Response:
        if not scorer.ready:
            return JSONResponse({"ready": False, "reason": "warming up"}, status_code=503)
        return JSONResponse({"ready": True, "model_version": version})

    @app.get("/drift", responses={404: {"description": "no reference profile"}})
    async def served_drift() -> Response:
        report = scorer.drift_report()
        if report is None:
            detail = "no reference profile was recorded with this model version"
            return JSONResponse({"detail": detail}, status_code=404)
        return JSONResponse(report)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, routes=app.routes)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(schema_defs)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.metrics = metrics  # what a wrapping layer counts its own answers with
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Guard, count=metrics.count)  # counts what any layer inside answers
    # outermost: a shed request costs no more than reading its head
    app.add_middleware(Shed, admission=scorer.admission, on_shed=metrics.error.inc)
    return app


def server_config(
    app: ASGIApp,
    host: str,
    port: int,
    on_refused: Callable[[], None] | None = None,
    read_timeout: float = READ_TIMEOUT_S,
    **options: Any,
) -> uvicorn.Config:
    """uvicorn with bounded heads, deadlines to read each request and a short keep-alive.

    `on_refused` counts the requests the protocol refuses before any ASGI layer sees them
    (a malformed head, a head that outgrew the limit while arriving).
    """
    settings: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": limited_protocol(LimitedH11Protocol, read_timeout, on_refused=on_refused),
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "timeout_keep_alive": 5,
        "log_level": "warning",
        "access_log": False,
    }
    return uvicorn.Config(app, **{**settings, **options})


def limit_threads() -> None:
    """One OpenMP thread per server: parallel single-row predictions only contend."""
    os.environ["OMP_NUM_THREADS"] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def log_target(setting: str, variant: str) -> str | None:
    """Where the prediction log goes: a file (`{variant}`, `{pid}` filled in), `-`, or None.

    One file per process: two processes rotating one file would lose lines.
    """
    if setting == "off":
        return None
    return setting.replace("{variant}", variant).replace("{pid}", str(os.getpid()))


def writable_log(target: str | None) -> None:
    """Refuse to start, saying what to set, when the prediction log's file cannot be written."""
    from .loading import ServeStartError

    if target is None or target == "-":
        return
    try:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        with Path(target).open("a", encoding="utf-8"):
            pass
    except OSError as error:
        raise ServeStartError(
            f"prediction log {target}: {error.strerror}; give params.yaml serve.prediction_log "
            "(or --prediction-log) a writable path, `-` for stdout or `off`"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `serve`."""
    parser = argparse.ArgumentParser(prog="serve", description="Serve one registry version.")
    parser.add_argument("--version", default="champion", help="version number or alias")
    parser.add_argument("--model-name", default=None, help="registered model (default: package)")
    parser.add_argument("--registry", type=Path, default=Path("registry"))
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--variant", default="stable")
    parser.add_argument("--instance", default="", help="tag that identifies this process")
    parser.add_argument(
        "--shadow-url",
        default=os.environ.get("SHADOW_URL") or None,
        help="copy a sample of requests to the server at this base URL (default: $SHADOW_URL)",
    )
    parser.add_argument(
        "--bundle", type=Path, default=None, help="serve from `make bundle` output, no registry"
    )
    parser.add_argument(
        "--prediction-log",
        default=None,
        help="JSON-lines file of every prediction, `-` for stdout, `off` for none "
        "(default: params.yaml serve.prediction_log)",
    )
    parser.add_argument("--max-inflight", type=int, default=64,
                        help="requests scored at once; beyond, new ones get 503 + Retry-After")  # fmt: skip
    parser.add_argument("--prediction-log-max-bytes", type=int, default=10_000_000,
                        help="a log file rotates at this size")  # fmt: skip
    parser.add_argument("--prediction-log-backups", type=int, default=5,
                        help="rotated files kept; older ones are deleted")  # fmt: skip
    return parser


def main(argv: list[str] | None = None, wrap: Callable[[FastAPI], ASGIApp] | None = None) -> int:
    """Run the server until SIGINT/SIGTERM; exit 2 with a reason when it must not start.

    `wrap` is for a Python caller that serves the app inside another ASGI layer (the test
    harness's fault injector); no argument or setting of this entry point reaches it.
    """
    args = build_parser().parse_args(argv)
    limit_threads()
    from ..config import Serve, load_config
    from ..contract import load_contract
    from ..drift import DriftError
    from ..registry import Registry
    from .loading import load_pinned, read_bundle, resolve, served_drift_profile

    # an ExpectedError below (configuration, contract, model) is one line and its exit code
    config = load_config(args.params) if args.params.is_file() else None
    rollout, settings = (config.rollout, config.serve) if config else (None, Serve())
    contract = load_contract(args.contract)
    registry: Registry | None = None
    if args.bundle is not None:
        ref, model_path = read_bundle(args.bundle, args.version or None)
        name = ref.tags.get("model_name", "model")
    else:
        registry = Registry(args.model_name, root=args.registry)
        ref = resolve(registry, args.version or "champion")
        model_path, name = None, registry.model_name
    log = log_target(args.prediction_log or settings.prediction_log, args.variant)
    writable_log(log)
    predictor, warnings = load_pinned(registry, ref, contract, model_path)
    try:
        drift = served_drift_profile(registry, ref, model_path, args.params)
    except DriftError as error:  # drift is a report, not a reason to refuse traffic
        warnings.append(f"no drift report on served traffic: {error}")
        drift = None
    for warning in warnings:
        print(f"serve: warning: {warning}", file=sys.stderr)
    served_settings = ServeSettings(
        ref.version,
        args.variant,
        settings.max_batch,
        settings.max_body_bytes,
        args.max_inflight,
        shadow_url=args.shadow_url,
        shadow=rollout.shadow if rollout is not None else None,
        prediction_log=log,
        log_rotation=(args.prediction_log_max_bytes, args.prediction_log_backups),
    )
    app = create_app(predictor, served_settings, drift)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    print(f"serve: {name} v{ref.version} ({args.variant}) on http://{host}:{port}")
    sys.stdout.flush()
    served: ASGIApp = app if wrap is None else wrap(app)
    on_refused = app.state.metrics.rejected.inc  # a malformed or oversized head
    uvicorn.Server(server_config(served, host, port, on_refused)).run()
    return 0


if __name__ == "__main__":
    sys.exit(run_main("serve", main, sys.argv[1:]))
