"""Serving benchmark: our server vs `mlflow models serve`, the router hop, breach to 100% stable,
and how fast /healthz answers while /predict is saturated.

Builds a small project in `workdir` (the churn contract, sample data, the default model),
then measures with real processes on loopback. Run directly: `python bench/bench_serving.py`
(everything), `--saturation` (the /healthz figure alone) or `--breach` (breach to 100% stable,
five times).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import figure, run_standalone

TEMPLATE = Path(__file__).resolve().parents[1]
PROJECT = TEMPLATE / "{{cookiecutter.project}}"
PACKAGE_SRC = PROJECT / "src" / "{{cookiecutter.package}}"
PACKAGE = "benchpkg"
MODEL_NAME = "bench"
REQUESTS = 1500
WARMUP = 100


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


def env(workdir: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    bin_dir = str(Path(sys.executable).parent)
    out.update(
        PYTHONPATH=str(workdir / "src"),
        OMP_NUM_THREADS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
    )
    return out


def build(workdir: Path) -> dict[str, Any]:
    """Render the package, generate data, train the default model, register it as champion."""
    src = workdir / "src" / PACKAGE
    shutil.copytree(PACKAGE_SRC, src, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT / "_variants" / "contract.churn.yaml", workdir / "contract.yaml")
    script = f"""
import platform, sys
from importlib.metadata import version
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from {PACKAGE}.artifacts import write_parquet
from {PACKAGE}.contract import load_contract
from {PACKAGE}.data import conform, features_and_target, load_table
from {PACKAGE}.features import build_preprocessor
from {PACKAGE}.model_io import save_model
from {PACKAGE}.registry import Registry
from {PACKAGE}.sample_data import generate
from pathlib import Path
contract = load_contract("contract.yaml")
raw = generate(Path("contract.yaml"), Path("data/raw.csv"), 8000, 20240601)
table = conform(load_table(raw), contract)
x, y = features_and_target(table.iloc[:5600], contract)
clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                     l2_regularization=1.0, random_state=7)
model = Pipeline([("prep", build_preprocessor(contract)), ("clf", clf)]).fit(x, y)
write_parquet("data/holdout.parquet", table.iloc[5600:])
save_model(model, "models/model.skops")
tags = {{"sklearn_version": version("scikit-learn"), "skops_version": version("skops"),
        "numpy_version": version("numpy"), "pandas_version": version("pandas"),
        "python_version": platform.python_version(), "contract_fingerprint": contract.fingerprint}}
registry = Registry("{MODEL_NAME}")
ref = registry.register("models/model.skops", tags)
registry.move_alias("champion", ref.version, None)
second = registry.register("models/model.skops", tags)
registry.move_alias("previous", ref.version, None)
registry.move_alias("champion", second.version, ref.version)
import mlflow.sklearn
mlflow.sklearn.save_model(model, "mlflow-model", serialization_format="cloudpickle",
                          pyfunc_predict_fn="predict_proba", pip_requirements=["scikit-learn"])
print("mlflow-model")
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=workdir,
        env=env(workdir),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench set-up failed:\n{result.stderr[-3000:]}")
    return {
        "mlflow_model": result.stdout.strip().splitlines()[-1],
        "rows": rows_from_holdout(workdir),
    }


def rows_from_holdout(workdir: Path) -> list[dict[str, Any]]:
    script = f"""
import json
from {PACKAGE}.contract import load_contract
from {PACKAGE}.rollout.loadgen import holdout_rows
print(json.dumps(holdout_rows("data/holdout.parquet", load_contract("contract.yaml"), 500)))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=workdir,
        env=env(workdir),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def start(workdir: Path, args: list[str], log: str) -> subprocess.Popen[bytes]:
    handle = (workdir / log).open("wb")
    process = subprocess.Popen(
        args,
        cwd=workdir,
        env=env(workdir),
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


def our_server(port: int) -> list[str]:
    """The command that serves registry version 1 of the bench model on `port`."""
    return [
        sys.executable,
        "-m",
        f"{PACKAGE}.serve.app",
        "--version",
        "1",
        "--model-name",
        MODEL_NAME,
        "--port",
        str(port),
    ]


def sequential(port: int, path: str, bodies: list[bytes]) -> dict[str, float]:
    """One request at a time over one keep-alive connection: req/s and p50/p99 in ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json"}
    latencies = []
    for i in range(WARMUP + REQUESTS):
        start = time.perf_counter()
        connection.request("POST", path, bodies[i % len(bodies)], headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"port {port}{path}: HTTP {response.status}")
        if i >= WARMUP:
            latencies.append((time.perf_counter() - start) * 1000)
    connection.close()
    latencies.sort()
    return {
        "rps": len(latencies) / (sum(latencies) / 1000),
        "p50": statistics.median(latencies),
        "p99": latencies[int(0.99 * len(latencies)) - 1],
    }


def hop_ms(direct_port: int, router_port: int, bodies: list[bytes]) -> tuple[float, float]:
    """p50 of (routed - direct) for the same row sent both ways back to back, and routed p50.

    Pairing each routed request with a direct one taken a moment apart cancels most of the
    noise a busy machine adds to both, which two separate runs would not.
    """
    headers = {"content-type": "application/json"}
    connections = {
        port: http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for port in (direct_port, router_port)
    }
    added, routed = [], []
    for i in range(WARMUP + REQUESTS):
        took = {}
        order = list(connections.items())
        for port, connection in order if i % 2 else order[::-1]:  # neither always goes first
            start = time.perf_counter()
            connection.request("POST", "/predict", bodies[i % len(bodies)], headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"port {port}/predict: HTTP {response.status}")
            took[port] = (time.perf_counter() - start) * 1000
        if i >= WARMUP:
            added.append(took[router_port] - took[direct_port])
            routed.append(took[router_port])
    for connection in connections.values():
        connection.close()
    return statistics.median(added), statistics.median(routed)


def serve_figures(workdir: Path, built: dict[str, Any]) -> list[dict[str, Any]]:
    """Our server, mlflow's, and our server behind the router, on the same rows."""
    ours_port, mlflow_port, router_port = free_port(), free_port(), free_port()
    ours_bodies = [json.dumps(r).encode() for r in built["rows"]]
    mlflow_bodies = [json.dumps({"dataframe_records": [r]}).encode() for r in built["rows"]]
    python = sys.executable
    ours = start(workdir, our_server(ours_port), "ours.log")
    mlflow_cmd = [
        str(Path(python).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        built["mlflow_model"],
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "-p",
        str(mlflow_port),
    ]
    theirs = start(workdir, mlflow_cmd, "mlflow.log")
    router = None
    try:
        wait_http(ours_port, "/readyz")
        router = start_router(workdir, ours_port, router_port, "router")
        wait_http(router_port, "/healthz")
        direct = sequential(ours_port, "/predict", ours_bodies)
        added_p50, routed_p50 = hop_ms(ours_port, router_port, ours_bodies)
        try:
            wait_http(mlflow_port, "/ping", timeout=180)
        except RuntimeError as error:
            log = (workdir / "mlflow.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"{error}; `mlflow models serve` needs the full `mlflow` package:\n{log}"
            ) from None
        baseline = sequential(mlflow_port, "/invocations", mlflow_bodies)
    finally:
        for process in (ours, theirs, router):
            if process is not None:
                stop(process)
    note = f"sequential single-row /predict, {REQUESTS} requests, keep-alive, OMP_NUM_THREADS=1"
    return [
        figure(
            "predict throughput",
            direct["rps"],
            "req/s",
            f"ours vs mlflow models serve (baseline); {note}",
            baseline["rps"],
            ratio=direct["rps"] / baseline["rps"],
        ),
        figure(
            "predict p50",
            direct["p50"],
            "ms",
            f"ours vs mlflow models serve (baseline); {note}",
            baseline["p50"],
            ratio=baseline["p50"] / direct["p50"],
        ),
        figure(
            "predict p99",
            direct["p99"],
            "ms",
            f"ours vs mlflow models serve (baseline); {note}",
            baseline["p99"],
            ratio=baseline["p99"] / direct["p99"],
        ),
        figure(
            "router added p50",
            added_p50,
            "ms",
            f"median of routed minus direct for the same row back to back; routed p50 "
            f"{routed_p50:.3f} ms (aim <= 0.3 ms)",
        ),
    ]


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
    workdir: Path, upstream_port: int, port: int, name: str
) -> subprocess.Popen[bytes]:
    """The router on `port` sending everything to the server on `upstream_port`."""
    config = {
        "upstreams": {"stable": {"url": f"http://127.0.0.1:{upstream_port}", "version": "1"}},
        "weights": {"stable": 100},
    }
    (workdir / f"{name}.json").write_text(json.dumps(config))
    command = [sys.executable, "-m", f"{PACKAGE}.rollout.router", "--config", f"{name}.json"]
    command += ["--port", str(port), "--admin-port", str(free_port())]
    return start(workdir, command, f"{name}.log")


def hop_figure(workdir: Path) -> dict[str, Any]:
    """The router's own cost: its added p50 in front of an upstream that does no work."""
    (workdir / "echo_upstream.py").write_text(ECHO_APP)
    echo_port, router_port = free_port(), free_port()
    python = sys.executable
    echo = start(
        workdir,
        [
            python,
            "-m",
            "uvicorn",
            "--app-dir",
            str(workdir),
            "echo_upstream:app",
            "--port",
            str(echo_port),
            "--log-level",
            "warning",
        ],
        "echo.log",
    )
    router = start_router(workdir, echo_port, router_port, "router-echo")
    try:
        wait_http(router_port, "/healthz")
        wait_http(echo_port, "/predict", method="POST")
        added, routed = hop_ms(echo_port, router_port, [b"{}"])
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


def breach_figure(workdir: Path) -> dict[str, Any]:
    """A canary that starts failing mid-step: seconds from its first 5xx to 100% on stable."""
    import yaml

    text = (PROJECT / "params.yaml").read_text(encoding="utf-8")
    # only the rollout section: the rest of params.yaml holds cookiecutter expressions
    rollout = yaml.safe_load(text[text.index("\nrollout:") :])["rollout"]
    rollout["shadow"]["enabled"] = False
    rollout["steps"] = [{"weight": 25, "pause_s": 60}, {"weight": 100, "pause_s": 0}]
    # the sections without a default; the rest of params.yaml holds cookiecutter expressions
    required = {"data": {"raw": "data/raw.csv"}, "model": {"kind": "hist_gradient_boosting"}}
    (workdir / "params.yaml").write_text(
        yaml.safe_dump({**required, "rollout": rollout, "serve": {"router_port": 0}})
    )
    deploy = start(
        workdir,
        [
            sys.executable,
            "-m",
            f"{PACKAGE}.deploy.local",
            "--model-name",
            MODEL_NAME,
            "canary",
            "--fault",
            "errors=0.3,after=150",
        ],
        "deploy.log",
    )
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
            [
                sys.executable,
                "-m",
                f"{PACKAGE}.deploy.local",
                "--model-name",
                MODEL_NAME,
                "undeploy",
            ],
            cwd=workdir,
            env=env(workdir),
            capture_output=True,
            check=False,
        )
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


SATURATION_SECONDS = 15.0
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


def saturation_figures(workdir: Path, built: dict[str, Any]) -> list[dict[str, Any]]:
    """p50/p99/max of /healthz, probed every 20 ms, while other clients saturate /predict."""
    port = free_port()
    server = start(workdir, our_server(port), "saturation.log")
    rows_file = workdir / "rows.json"
    rows_file.write_text(json.dumps(built["rows"]))
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
                str(SATURATION_SECONDS),
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
        f"{ROW_CONNECTIONS} POST single rows for {SATURATION_SECONDS:g} s; /predict answers {seen}"
    )
    return [
        figure("healthz p50 under saturation", statistics.median(latencies), "ms", note),
        figure("healthz p99 under saturation", p99, "ms", note),
        figure("healthz max under saturation", latencies[-1], "ms", note),
    ]


def run(workdir: Path) -> list[dict[str, Any]]:
    """Every serving figure, measured in `workdir`."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    built = build(workdir)
    return [
        *serve_figures(workdir, built),
        *saturation_figures(workdir, built),
        hop_figure(workdir),
        breach_figure(workdir),
    ]


def run_saturation(workdir: Path) -> list[dict[str, Any]]:
    """Only the /healthz-under-saturation figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    return saturation_figures(workdir, build(workdir))


BREACH_RUNS = 5


def run_breach(workdir: Path) -> list[dict[str, Any]]:
    """Only the breach figure, measured BREACH_RUNS times (it varies with the canary's traffic)."""
    workdir.mkdir(parents=True, exist_ok=True)
    build(workdir)
    figures = []
    for _ in range(BREACH_RUNS):
        shutil.rmtree(workdir / ".deploy", ignore_errors=True)
        figures.append(breach_figure(workdir))
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["--flood"]:
        port, rows_path, seconds = int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
        result = asyncio.run(_flood(port, json.loads(rows_path.read_text()), seconds))
        print(json.dumps(result))
        raise SystemExit(0)
    only = {"--saturation": run_saturation, "--breach": run_breach}
    chosen = [only[arg] for arg in sys.argv[1:] if arg in only]
    raise SystemExit(run_standalone(chosen[0] if chosen else run))
