"""The model server: FastAPI on uvicorn, one process, one pinned model version."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..drift import RunningProfile
from ..rollout.shadow import ShadowMetrics, ShadowMirror
from ..rollout.spec import Shadow
from .faults import Fault, FaultError, parse_fault
from .limits import BodyLimit
from .metrics import ServeMetrics
from .predictor import Predictor, example_row
from .schema import PredictResponse, RequestError, RequestModels, build_models, parse_rows

log = logging.getLogger(__name__)
JSON = "application/json"
VARIANT_HEADER = "x-route-variant"  # the local router names the role it routed to


def create_app(
    predictor: Predictor,
    model_version: str,
    variant: str = "stable",
    max_batch: int = 1000,
    max_body_bytes: int = 1_048_576,
    fault: Fault | None = None,
    shadow_url: str | None = None,
    shadow: Shadow | None = None,
    drift: tuple[RunningProfile, dict] | None = None,
) -> FastAPI:
    """Build the app: /predict, /healthz, /readyz (after warm-up), /metrics, /drift."""
    models: RequestModels = build_models(predictor.contract, max_batch)
    metrics = ServeMetrics(variant, model_version)
    state = {"ready": False}
    never_ready = fault is not None and fault.kind == "never_ready"
    mirror = None
    if shadow_url:
        # in a cluster there is no local router: the server itself copies requests
        spec = shadow or Shadow()
        mirror = ShadowMirror(
            shadow_url,
            "shadow",
            spec.sample,
            spec.queue,
            spec.timeout_ms,
            ShadowMetrics(metrics.registry),
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not never_ready:
            warm = models.row.model_validate(example_row(predictor.contract))
            predictor.answer([warm])  # the first call pays for lazy initialisation
            state["ready"] = True
        if mirror is None:
            yield
            return
        import aiohttp

        async with aiohttp.ClientSession() as session:
            mirror.start(session)
            yield
            await mirror.stop()

    app = FastAPI(
        title=f"{predictor.contract.name} model server",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    @app.post("/predict", response_model=PredictResponse, responses={413: {}, 422: {}})
    async def predict(request: Request) -> Response:
        start = time.perf_counter()
        body = await request.body()
        if fault is not None:
            action = fault.on_request()
            if action == "crash":
                os._exit(3)
            if action == "slow":
                await asyncio.sleep(fault.amount / 1000)
            if action == "error":
                metrics.error.inc()
                return JSONResponse({"detail": "injected fault"}, status_code=500)
        try:
            rows, _ = parse_rows(body, models)
        except RequestError as error:
            metrics.rejected.inc()
            return JSONResponse({"detail": error.errors}, status_code=422)
        if drift is not None:
            # the same bins as the training reference: served traffic is judged like a batch
            drift[0].update_many(row.model_dump() for row in rows)
        try:
            answers = predictor.answer(rows)
        except Exception:
            log.exception("prediction failed")
            metrics.error.inc()
            return JSONResponse({"detail": "prediction failed"}, status_code=500)
        for answer in answers:
            metrics.score.observe(answer["score"])
        # a canary promoted to stable keeps its process: the router's header has its role now
        role = request.headers.get(VARIANT_HEADER, variant)
        payload = {"model_version": model_version, "variant": role, "predictions": answers}
        content = json.dumps(payload).encode()
        seconds = time.perf_counter() - start
        metrics.ok.inc()
        metrics.latency.observe(seconds)
        if mirror is not None:
            mirror.offer(body, content, seconds)
        return Response(content, media_type=JSON)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "variant": variant, "model_version": model_version}

    @app.get("/readyz")
    async def readyz() -> Response:
        if not state["ready"]:
            return JSONResponse({"ready": False, "reason": "warming up"}, status_code=503)
        return JSONResponse({"ready": True, "model_version": model_version})

    @app.get("/drift")
    async def served_drift() -> Response:
        if drift is None:
            detail = "no reference profile was recorded with this model version"
            return JSONResponse({"detail": detail}, status_code=404)
        profile, settings = drift
        return JSONResponse({"model_version": model_version, **profile.compare(settings)})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, on_reject=metrics.rejected.inc)
    return app


def limit_threads() -> None:
    """One OpenMP thread per server: parallel single-row predictions only contend."""
    os.environ["OMP_NUM_THREADS"] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


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
    parser.add_argument("--fault", default=None, help="errors=0.3 | slow=400 | crash | never_ready")
    parser.add_argument("--allow-faults", action="store_true", help="required for --fault")
    parser.add_argument("--instance", default="", help="tag that identifies this process")
    parser.add_argument(
        "--shadow-url",
        default=os.environ.get("SHADOW_URL") or None,
        help="copy a sample of requests to the server at this base URL (default: $SHADOW_URL)",
    )
    parser.add_argument(
        "--bundle", type=Path, default=None, help="serve from `make bundle` output, no registry"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGINT/SIGTERM; exit 2 with a reason when it must not start."""
    args = build_parser().parse_args(argv)
    limit_threads()
    from ..contract import ContractError, load_contract
    from ..drift import DriftError
    from ..registry import Registry
    from ..rollout.spec import Serve, SpecError, load_specs
    from .loading import ServeStartError, load_pinned, read_bundle, resolve, served_drift_profile

    try:
        fault = parse_fault(args.fault, args.allow_faults)
        rollout, settings = load_specs(args.params) if args.params.is_file() else (None, Serve())
        contract = load_contract(args.contract)
        registry: Registry | None = None
        if args.bundle is not None:
            ref, model_path = read_bundle(args.bundle, args.version or None)
            name = ref.tags.get("model_name", "model")
        else:
            registry = Registry(args.model_name, root=args.registry)
            ref = resolve(registry, args.version or "champion")
            model_path, name = None, registry.model_name
        predictor, warnings = load_pinned(registry, ref, contract, model_path)
        try:
            drift = served_drift_profile(registry, ref, model_path, args.params)
        except DriftError as error:  # drift is a report, not a reason to refuse traffic
            warnings.append(f"no drift report on served traffic: {error}")
            drift = None
    except (FaultError, SpecError, ContractError, ServeStartError) as error:
        print(f"serve: {error}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"serve: warning: {warning}", file=sys.stderr)
    app = create_app(
        predictor,
        ref.version,
        args.variant,
        settings.max_batch,
        settings.max_body_bytes,
        fault,
        args.shadow_url,
        rollout.shadow if rollout is not None else None,
        drift,
    )
    import uvicorn

    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    print(f"serve: {name} v{ref.version} ({args.variant}) on http://{host}:{port}")
    sys.stdout.flush()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
