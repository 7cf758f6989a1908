"""Serving benchmark: our server vs `mlflow models serve`, sequential and at 8 concurrent
clients, where one row's time goes, the router hop, breach to 100% stable, and how fast
/healthz answers while /predict is saturated.

Bakes the template, runs its pipeline for a champion (v1; v2 is the same file registered
again, so a canary has something to replace), saves the same model in MLflow's format, then
measures with real processes on loopback. Run directly: `python bench/bench_serving.py`
(everything; `--smoke` at tiny sizes), `--saturation` (the /healthz figure alone) or
`--breach` (breach to 100% stable, five times).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import SERVER_VENV, Baked, bake, figure, mlflow_command, run_standalone


@dataclass(frozen=True)
class Sizes:
    """How many requests each measurement sends."""

    requests: int = 1500
    warmup: int = 100
    clients: int = 8
    per_client: int = 400
    profile_rows: int = 2000
    saturation_s: float = 15.0


SMOKE = Sizes(requests=60, warmup=10, clients=8, per_client=15, profile_rows=50, saturation_s=3.0)


@dataclass(frozen=True)
class Built:
    """The baked project, its rows as request bodies and the champion in MLflow's format."""

    project: Baked
    rows: list[dict[str, Any]]
    mlflow_model: Path
    sizes: Sizes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(port: int, path: str, timeout: float = 120, method: str = "GET") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request(method, path, b"{}" if method == "POST" else None)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}{path} within {timeout} s")


def env(project: Baked) -> dict[str, str]:
    """The project's environment with one OpenMP thread per server (as `make serve` runs)."""
    return project.env(OMP_NUM_THREADS="1")


SETUP = """
import json
from pathlib import Path
import mlflow.sklearn
from {package}.contract import load_contract
from {package}.model_io import load_model
from {package}.registry import Registry
from {package}.rollout.loadgen import holdout_rows
registry = Registry()
one = registry.get_alias("champion")
two = registry.register(registry.model_path(one.version), one.tags)
registry.move_alias("previous", one.version, None)
registry.move_alias("champion", two.version, one.version)
model = load_model(registry.model_path(one.version), expected_sha256=one.sha256)
mlflow.sklearn.save_model(model, "mlflow-model", serialization_format="cloudpickle",
                          pyfunc_predict_fn="predict_proba", pip_requirements=["scikit-learn"])
rows = holdout_rows("data/holdout.parquet", load_contract(Path("contract.yaml")), 500)
Path("rows.json").write_text(json.dumps(rows))
"""


def build(workdir: Path, sizes: Sizes) -> Built:
    """Bake, `dvc repro`, register v2, save the model for mlflow, keep 500 holdout rows."""
    project = bake(workdir)
    project.repro()
    project.python(SETUP.format(package=project.package))
    rows = json.loads((project.root / "rows.json").read_text())
    return Built(project, rows, project.root / "mlflow-model", sizes)


def start(project: Baked, args: list[str], log: str, **extra: str) -> subprocess.Popen[bytes]:
    """A process in the project's directory, its output in `log` there, in its own group."""
    handle = (project.root / log).open("wb")
    process = subprocess.Popen(
        args,
        cwd=project.root,
        env={**env(project), **extra},
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def our_server(project: Baked, port: int) -> list[str]:
    """The command that serves registry version 1 on `port` (as `make serve` does)."""
    return [sys.executable, "-m", f"{project.package}.serve.app", "--version", "1",
            "--port", str(port)]  # fmt: skip


def mlflow_server(built: Built, port: int) -> list[str]:
    """`mlflow models serve` (full mlflow, its own environment) on the same model."""
    return [str(mlflow_command()), "models", "serve", "-m", str(built.mlflow_model),
            "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)]  # fmt: skip


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> float:
    """One POST on a keep-alive connection; its latency in ms (an error stops the bench)."""
    start = time.perf_counter()
    connection.request("POST", path, body, {"content-type": "application/json"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"{connection.port}{path}: HTTP {response.status}")
    return (time.perf_counter() - start) * 1000


def summary(latencies: list[float], seconds: float) -> dict[str, float]:
    """req/s over the wall time and p50/p99 in ms."""
    latencies = sorted(latencies)
    return {
        "rps": len(latencies) / seconds,
        "p50": statistics.median(latencies),
        "p99": latencies[max(0, int(0.99 * len(latencies)) - 1)],
    }


def sequential(port: int, path: str, bodies: list[bytes], sizes: Sizes) -> dict[str, float]:
    """One request at a time over one keep-alive connection: req/s and p50/p99 in ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(sizes.warmup):
        post(connection, path, bodies[i % len(bodies)])
    latencies = [post(connection, path, bodies[i % len(bodies)]) for i in range(sizes.requests)]
    connection.close()
    return summary(latencies, sum(latencies) / 1000)


def concurrent(port: int, path: str, bodies: list[bytes], sizes: Sizes) -> dict[str, float]:
    """`sizes.clients` clients, each one keep-alive connection sending rows back to back."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            post(connection, path, bodies[index % len(bodies)])  # connect and warm up
            barrier.wait()
            took = [
                post(connection, path, bodies[(index * 97 + i) % len(bodies)])
                for i in range(sizes.per_client)
            ]
            with lock:
                latencies.extend(took)
        except BaseException as error:  # reported after the threads are joined
            errors.append(error)
            barrier.abort()
        finally:
            connection.close()

    barrier = threading.Barrier(sizes.clients + 1)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(sizes.clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a client failed: see below
        barrier.wait(timeout=120)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"a concurrent client failed: {errors[0]!r}")
    return summary(latencies, time.perf_counter() - started)


def hop_ms(
    direct_port: int, router_port: int, bodies: list[bytes], sizes: Sizes
) -> tuple[float, float]:
    """p50 of (routed - direct) for the same row sent both ways back to back, and routed p50.

    Pairing each routed request with a direct one taken a moment apart cancels most of the
    noise a busy machine adds to both, which two separate runs would not.
    """
    connections = {
        port: http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for port in (direct_port, router_port)
    }
    added, routed = [], []
    for i in range(sizes.warmup + sizes.requests):
        took = {}
        order = list(connections.items())
        for port, connection in order if i % 2 else order[::-1]:  # neither always goes first
            took[port] = post(connection, "/predict", bodies[i % len(bodies)])
        if i >= sizes.warmup:
            added.append(took[router_port] - took[direct_port])
            routed.append(took[router_port])
    for connection in connections.values():
        connection.close()
    return statistics.median(added), statistics.median(routed)


def serve_figures(built: Built) -> list[dict[str, Any]]:
    """Our server, mlflow's, and our server behind the router, on the same rows."""
    project, sizes = built.project, built.sizes
    ours_port, mlflow_port, router_port = free_port(), free_port(), free_port()
    ours_bodies = [json.dumps(r).encode() for r in built.rows]
    mlflow_bodies = [json.dumps({"dataframe_records": [r]}).encode() for r in built.rows]
    ours = start(project, our_server(project, ours_port), "ours.log")
    # the full mlflow's own tools first on PATH (--env-manager local runs from there)
    path = f"{SERVER_VENV / 'bin'}{os.pathsep}{env(project)['PATH']}"
    theirs = start(project, mlflow_server(built, mlflow_port), "mlflow.log", PATH=path)
    router = None
    try:
        wait_http(ours_port, "/readyz")
        router = start_router(project, ours_port, router_port, "router")
        wait_http(router_port, "/healthz")
        direct = sequential(ours_port, "/predict", ours_bodies, sizes)
        direct_8 = concurrent(ours_port, "/predict", ours_bodies, sizes)
        added_p50, routed_p50 = hop_ms(ours_port, router_port, ours_bodies, sizes)
        try:
            wait_http(mlflow_port, "/ping", timeout=180)
        except RuntimeError as error:
            log = (project.root / "mlflow.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{error}; `mlflow models serve` did not start:\n{log}") from None
        baseline = sequential(mlflow_port, "/invocations", mlflow_bodies, sizes)
        baseline_8 = concurrent(mlflow_port, "/invocations", mlflow_bodies, sizes)
    finally:
        for process in (ours, theirs, router):
            if process is not None:
                stop(process)
    note = (
        f"sequential single-row /predict, {sizes.requests} requests, one keep-alive "
        "connection, OMP_NUM_THREADS=1; baseline: mlflow models serve (same model, "
        "--env-manager local)"
    )
    many = (
        f"{sizes.clients} concurrent clients x {sizes.per_client} single-row requests, "
        "keep-alive; baseline: mlflow models serve"
    )
    return [
        figure("predict throughput", direct["rps"], "req/s", f"{note} (aim >= 10x)",
               baseline["rps"], ratio=direct["rps"] / baseline["rps"]),
        figure("predict p50", direct["p50"], "ms", note, baseline["p50"],
               ratio=baseline["p50"] / direct["p50"]),
        figure("predict p99", direct["p99"], "ms", note, baseline["p99"],
               ratio=baseline["p99"] / direct["p99"]),
        figure(f"predict throughput, {sizes.clients} clients", direct_8["rps"], "req/s", many,
               baseline_8["rps"], ratio=direct_8["rps"] / baseline_8["rps"]),
        figure(f"predict p99, {sizes.clients} clients", direct_8["p99"], "ms",
               f"{many} (aim <= 20 ms)", baseline_8["p99"],
               ratio=baseline_8["p99"] / direct_8["p99"]),
        figure("router added p50", added_p50, "ms",
               f"median of routed minus direct for the same row back to back; routed p50 "
               f"{routed_p50:.3f} ms (aim <= 0.3 ms)"),
    ]  # fmt: skip


# Where one row's time goes inside the server: each step of the /predict handler timed on its
# own, in process, with the server's objects; `python -c` inside the project.
PROFILE = """
import json, statistics, sys, time
from pathlib import Path
from {package}.contract import load_contract
from {package}.registry import Registry
from {package}.serve.app import limit_threads
from {package}.serve.loading import load_pinned, resolve, served_drift_profile
from {package}.serve.schema import build_models, decode_json
limit_threads()
contract = load_contract(Path("contract.yaml"))
registry = Registry()
ref = resolve(registry, "1")
predictor, _ = load_pinned(registry, ref, contract)
drift = served_drift_profile(registry, ref, None, Path("params.yaml"))
models = build_models(contract)
rows = json.loads(Path("rows.json").read_text())
bodies = [json.dumps(r).encode() for r in rows][: int(sys.argv[1])]
steps = {{}}
def timed(name, call, arg):
    start = time.perf_counter()
    out = call(arg)
    steps.setdefault(name, []).append((time.perf_counter() - start) * 1000)
    return out
for repeat in range(2):  # the first pass warms caches; only the second is kept
    steps.clear()
    for body in bodies:
        data = timed("decode JSON (UTF-8, depth, json.loads)", decode_json, body)
        row = timed("validate row (pydantic)", models.row.model_validate, data)
        if drift is not None:
            timed("drift profile update", drift[0].update_many, [row.model_dump()])
        timed("score: model on one row" + (" (fast path)" if predictor.fast else ""),
              predictor.scores, [row])
        frame = timed("build the model's input frame", predictor.frame, [row])
        timed("score: full pipeline predict_proba", predictor.model.predict_proba, frame)
        answers = timed("answer (score, label, id)", predictor.answer, [row])
        timed("prediction log record", lambda r: r.model_dump(mode="json"), row)
        timed("encode response JSON", json.dumps,
              {{"model_version": "1", "predictions": answers}})
print(json.dumps({{name: statistics.median(values) for name, values in steps.items()}}))
"""


def profile_figures(built: Built, http_p50: float) -> list[dict[str, Any]]:
    """Where the milliseconds of one single-row request go (medians, in process)."""
    project = built.project
    out = project.python(PROFILE.format(package=project.package), str(built.sizes.profile_rows))
    steps: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    # the answer already includes the score; the full-pipeline rows show the path not taken
    handler = sum(
        ms for name, ms in steps.items()
        if not name.startswith(("score:", "build the model's input"))
    )  # fmt: skip
    rest = http_p50 - handler
    figures = [
        figure(f"one row: {name}", ms, "ms", f"{ms / http_p50:.0%} of the HTTP p50")
        for name, ms in steps.items()
    ]
    figures.append(
        figure(
            "one row: HTTP, ASGI, middleware, client",
            rest,
            "ms",
            f"the sequential HTTP p50 ({http_p50:.3f} ms) less the handler's steps "
            f"({handler:.3f} ms: decode, validate, drift, answer, log record, response): "
            "uvicorn, FastAPI routing, limits, request ids, metrics, the loopback round trip",
        )
    )
    return figures


ECHO_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"model_version": "1", "variant": "stable", "predictions": []}'
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


def start_router(
    project: Baked, upstream_port: int, port: int, name: str
) -> subprocess.Popen[bytes]:
    """The router on `port` sending everything to the server on `upstream_port`."""
    config = {
        "upstreams": {"stable": {"url": f"http://127.0.0.1:{upstream_port}", "version": "1"}},
        "weights": {"stable": 100},
    }
    (project.root / f"{name}.json").write_text(json.dumps(config))
    command = [
        sys.executable,
        "-m",
        f"{project.package}.rollout.router",
        "--config",
        f"{name}.json",
    ]
    command += ["--port", str(port), "--admin-port", str(free_port())]
    return start(project, command, f"{name}.log")


def hop_figure(built: Built) -> dict[str, Any]:
    """The router's own cost: its added p50 in front of an upstream that does no work."""
    project = built.project
    (project.root / "echo_upstream.py").write_text(ECHO_APP)
    echo_port, router_port = free_port(), free_port()
    echo = start(
        project,
        [sys.executable, "-m", "uvicorn", "--app-dir", str(project.root), "echo_upstream:app",
         "--port", str(echo_port), "--log-level", "warning"],
        "echo.log",
    )  # fmt: skip
    router = start_router(project, echo_port, router_port, "router-echo")
    try:
        wait_http(router_port, "/healthz")
        wait_http(echo_port, "/predict", method="POST")
        added, routed = hop_ms(echo_port, router_port, [b"{}"], built.sizes)
    finally:
        stop(router)
        stop(echo)
    return figure(
        "router hop p50",
        added,
        "ms",
        f"routed minus direct, paired, upstream answering at once; routed p50 {routed:.3f} ms "
        "(aim <= 0.3 ms)",
    )


def breach_figure(built: Built) -> dict[str, Any]:
    """A canary that starts failing mid-step: seconds from its first 5xx to 100% on stable."""
    import yaml

    project = built.project
    workdir = project.root
    params_path = workdir / "params.yaml"
    original = params_path.read_text(encoding="utf-8")
    params = yaml.safe_load(original)
    params["rollout"]["shadow"]["enabled"] = False
    params["rollout"]["steps"] = [{"weight": 25, "pause_s": 60}, {"weight": 100, "pause_s": 0}]
    params["serve"]["router_port"] = 0
    params_path.write_text(yaml.safe_dump(params), encoding="utf-8")
    deploy = start(
        project,
        [sys.executable, "-m", project.package, "deploy", "canary", "--fault",
         "errors=0.3,after=150"],
        "deploy.log",
    )  # fmt: skip
    first_error = None
    try:
        state_path = workdir / ".deploy" / "state.json"
        deadline = time.monotonic() + 180
        while deploy.poll() is None and time.monotonic() < deadline:
            canary = (
                json.loads(state_path.read_text()).get("servers", {}).get("canary")
                if state_path.is_file()
                else None
            )
            if canary and first_error is None:
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", canary["port"], timeout=1)
                    connection.request("GET", "/metrics")
                    text = connection.getresponse().read().decode()
                    if any(
                        line.startswith("model_requests_total")
                        and 'outcome="error"' in line
                        and not line.endswith(" 0.0")
                        for line in text.splitlines()
                    ):
                        first_error = time.time()
                except OSError:
                    pass
            time.sleep(0.02)
        deploy.wait(timeout=60)
    finally:
        stop(deploy)
        subprocess.run(
            [sys.executable, "-m", project.package, "deploy", "undeploy"],
            cwd=workdir, env=env(project), capture_output=True, check=False,
        )  # fmt: skip
        params_path.write_text(original, encoding="utf-8")
    events = [
        json.loads(line) for line in (workdir / ".deploy" / "events.jsonl").read_text().splitlines()
    ]
    rollback = next(e for e in events if e["event"] == "rollback")
    if first_error is None:
        raise RuntimeError("the canary's first error was not observed")
    seconds = rollback["switched_at"] - first_error
    # the evidence grows with the canary's traffic: a busy machine sends it less
    step = next(e for e in events if e["event"] == "step")
    failed = [e for e in events if e["event"] == "analysis"][-1]
    rps = failed["evidence"]["canary"]["n"] / (failed["time"] - step["time"])
    return figure(
        "breach to 100% stable",
        seconds,
        "s",
        "errors=0.3 from the canary's 151st request at 25% weight; default analysis "
        f"(interval, min requests, alpha, correction); canary at {rps:.0f} req/s; "
        f"router switch itself {rollback['switch_seconds'] * 1000:.1f} ms (aim < 2 s)",
    )


BATCH_CONNECTIONS = 20  # each sends 500-row batches back to back
ROW_CONNECTIONS = 180  # each sends single rows back to back (waiting 1 s after a 503)


async def _flood_connection(
    port: int, bodies: list[bytes], stop_at: float, seen: dict[str, Any]
) -> None:
    """One keep-alive connection that POSTs `bodies` in turn until `stop_at`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.monotonic() < stop_at:
            sent = time.perf_counter()
            body = bodies[i % len(bodies)]
            head = (
                f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
            status_line = await reader.readline()
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                close = close or (name.lower() == "connection" and "close" in value.lower())
            await reader.readexactly(length)
            status = status_line.split(b" ")[1].decode() if status_line else "closed"
            seen[status] = seen.get(status, 0) + 1
            if status == "200":
                seen.setdefault("ok_ms", []).append((time.perf_counter() - sent) * 1000)
            if status == "503":
                await asyncio.sleep(1.0)  # as Retry-After says
            if close or not status_line:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            i += 1
    except (OSError, asyncio.IncompleteReadError):
        seen["closed"] = seen.get("closed", 0) + 1
    finally:
        writer.close()


async def _flood(port: int, rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    batch = [json.dumps({"rows": rows[:500]}).encode()]
    singles = [json.dumps(r).encode() for r in rows]
    stop_at = time.monotonic() + seconds
    seen: dict[str, int] = {}
    clients = [_flood_connection(port, batch, stop_at, seen) for _ in range(BATCH_CONNECTIONS)]
    clients += [_flood_connection(port, singles, stop_at, seen) for _ in range(ROW_CONNECTIONS)]
    await asyncio.gather(*clients)
    ok_ms = sorted(seen.pop("ok_ms", [0.0]))
    seen["ok_p50_ms"] = round(statistics.median(ok_ms))
    seen["ok_p99_ms"] = round(ok_ms[max(0, int(0.99 * len(ok_ms)) - 1)])
    return seen


def saturation_figures(built: Built) -> list[dict[str, Any]]:
    """p50/p99/max of /healthz, probed every 20 ms, while other clients saturate /predict."""
    project, seconds = built.project, built.sizes.saturation_s
    port = free_port()
    server = start(project, our_server(project, port), "saturation.log")
    rows_file = project.root / "rows.json"
    flood = None
    try:
        wait_http(port, "/readyz")
        flood = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--flood",
                str(port),
                str(rows_file),
                str(seconds),
            ],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        time.sleep(2.0)  # let the load build up before probing
        latencies = []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while flood.poll() is None:
            start_at = time.perf_counter()
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = (time.perf_counter() - start_at) * 1000
            latencies.append(elapsed if ok else 30_000.0)
            time.sleep(0.02)
        connection.close()
        out, _ = flood.communicate(timeout=60)
        seen = json.loads(out)
    finally:
        if flood is not None:
            stop(flood)
        stop(server)
    latencies.sort()
    p99 = latencies[max(0, int(0.99 * len(latencies)) - 1)]
    note = (
        f"{len(latencies)} probes while {BATCH_CONNECTIONS} connections POST 500-row batches and "
        f"{ROW_CONNECTIONS} POST single rows for {seconds:g} s; /predict answers {seen}"
    )
    return [
        figure("healthz p50 under saturation", statistics.median(latencies), "ms", note),
        figure("healthz p99 under saturation", p99, "ms", note),
        figure("healthz max under saturation", latencies[-1], "ms", note),
    ]


def run(workdir: Path, smoke: bool = False) -> list[dict[str, Any]]:
    """Every serving figure, measured in a project baked in `workdir`."""
    built = build(workdir, SMOKE if smoke else Sizes())
    served = serve_figures(built)
    http_p50 = next(f["value"] for f in served if f["name"] == "predict p50")
    return [
        *served,
        *profile_figures(built, http_p50),
        *saturation_figures(built),
        hop_figure(built),
        breach_figure(built),
    ]


def run_saturation(workdir: Path, smoke: bool = False) -> list[dict[str, Any]]:
    """Only the /healthz-under-saturation figures."""
    return saturation_figures(build(workdir, SMOKE if smoke else Sizes()))


BREACH_RUNS = 5


def run_breach(workdir: Path, smoke: bool = False) -> list[dict[str, Any]]:
    """Only the breach figure, measured BREACH_RUNS times (it varies with the canary's traffic)."""
    built = build(workdir, SMOKE if smoke else Sizes())
    figures = []
    for _ in range(BREACH_RUNS):
        shutil.rmtree(built.project.root / ".deploy", ignore_errors=True)
        figures.append(breach_figure(built))
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["--flood"]:
        port, rows_path, seconds = int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
        result = asyncio.run(_flood(port, json.loads(rows_path.read_text()), seconds))
        print(json.dumps(result))
        raise SystemExit(0)
    only = {"--saturation": run_saturation, "--breach": run_breach}
    chosen = [only[arg] for arg in sys.argv[1:] if arg in only]
    sys.argv = [arg for arg in sys.argv if arg not in only]
    raise SystemExit(run_standalone(chosen[0] if chosen else run))
