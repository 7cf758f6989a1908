"""The router under real HTTP: a switch never fails a request, its admin API is guarded, and
in front of a real server it refuses, traces and lets go exactly as the server alone does."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import {{ cookiecutter.package }} as package
from {{ cookiecutter.package }}.rollout.admin import free_port, request_json, wait_ready
from {{ cookiecutter.package }}.rollout.router import Router
from {{ cookiecutter.package }}.rollout.upstream import Pool, UpstreamError
from tests.live_server import exchange, held_for, request_bytes
from tests.served import Served, routing, row_body, serving

ROUTER = [sys.executable, "-m", f"{package.__name__}.rollout.router"]
ENV = {**os.environ, "PYTHONPATH": str(Path(package.__file__).resolve().parents[1])}


async def _upstream(version: str, delay_s: float) -> tuple[web.AppRunner, str]:
    """A stand-in model server on a free loopback port that answers after `delay_s`."""

    async def predict(request: web.Request) -> web.Response:
        await asyncio.sleep(delay_s)
        role = request.headers.get("x-route-variant", "")
        return web.json_response({"model_version": version, "variant": role, "predictions": []})

    app = web.Application()
    app.router.add_post("/predict", predict)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def _call(
    router: Router, path: str, method: str = "POST", body: bytes = b"{}"
) -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "path": path,
        "method": method,
        "server": ("127.0.0.1", 1),
        "headers": [(b"content-type", b"application/json")],
    }
    await router(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_a_request_routed_before_a_switch_finishes_on_the_variant_it_was_routed_to():
    """The canary is removed while a request to it is in flight: the request still succeeds."""

    async def scenario() -> tuple[int, Any, dict[str, Any]]:
        stable, stable_url = await _upstream("1", 0.0)
        canary, canary_url = await _upstream("2", 0.3)
        config = {
            "upstreams": {
                "stable": {"url": stable_url, "version": "1"},
                "canary": {"url": canary_url, "version": "2"},
            },
            "weights": {"stable": 0, "canary": 100},
        }
        router = Router(config)
        router.session = aiohttp.ClientSession()
        try:
            in_flight = asyncio.create_task(_call(router, "/predict"))
            await asyncio.sleep(0.1)  # routed to the canary, waiting for its answer
            router.configure(
                {
                    "upstreams": {"stable": {"url": stable_url, "version": "1"}},
                    "weights": {"stable": 100},
                }
            )
            status, answer = await in_flight
            return status, answer, router.stats()
        finally:
            await router.session.close()
            await stable.cleanup()
            await canary.cleanup()

    status, answer, stats = asyncio.run(scenario())
    assert (status, answer["model_version"], answer["variant"]) == (200, "2", "canary")
    assert stats["variants"]["canary@2"]["requests"] == 1  # counted against what served it
    assert stats["weights"] == {"stable": 100}


def test_the_server_is_told_its_role_so_a_promoted_canary_answers_as_stable():
    async def scenario() -> list[str]:
        runner, url = await _upstream("2", 0.0)
        router = Router(
            {"upstreams": {"canary": {"url": url, "version": "2"}}, "weights": {"canary": 1}}
        )
        router.session = aiohttp.ClientSession()
        try:
            roles = [(await _call(router, "/predict"))[1]["variant"]]
            router.configure(
                {"upstreams": {"stable": {"url": url, "version": "2"}}, "weights": {"stable": 1}}
            )
            roles.append((await _call(router, "/predict"))[1]["variant"])
            return roles
        finally:
            await router.session.close()
            await runner.cleanup()

    assert asyncio.run(scenario()) == ["canary", "stable"]


@pytest.fixture
def router_process(tmp_path: Path):
    """A real router process: traffic port, loopback admin port; stopped by pid."""
    port, admin = free_port(), free_port()
    config = {
        "upstreams": {"stable": {"url": "http://127.0.0.1:9", "version": "1"}},
        "weights": {"stable": 100},
    }
    (tmp_path / "router.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [
            *ROUTER,
            "--config",
            str(tmp_path / "router.json"),
            "--port",
            str(port),
            "--admin-port",
            str(admin),
        ],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", 20, lambda: process.poll() is None, path="/healthz")
        yield (
            f"http://127.0.0.1:{port}",
            f"http://127.0.0.1:{admin}",
            config,
            tmp_path / "router.json",
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_traffic_port_has_no_admin_api(router_process):
    traffic, _, _, _ = router_process
    for method, path in [
        ("GET", "/admin/config"),
        ("GET", "/admin/stats"),
        ("PUT", "/admin/config"),
    ]:
        status, _ = request_json(
            method, traffic + path, {"weights": {"stable": 100}} if method == "PUT" else None
        )
        assert status == 404, (method, path)


def test_a_rejected_config_changes_nothing(router_process):
    """Validated in full before the swap: a bad upstream leaves the running table and its file."""
    _, admin, config, path = router_process
    before = request_json("GET", admin + "/admin/config")[1]
    bad = {
        "upstreams": {
            **config["upstreams"],
            "canary": {"url": "http://203.0.113.5:8080", "version": "2"},
        },
        "weights": {"stable": 50, "canary": 50},
    }
    status, answer = request_json("PUT", admin + "/admin/config", bad)
    assert status == 422
    assert "loopback" in answer["detail"]
    status, answer = request_json(
        "PUT", admin + "/admin/config", {**config, "weights": {"stable": 100, "x": 1}}
    )
    assert status == 422
    assert "unknown" in answer["detail"]
    assert request_json("GET", admin + "/admin/config")[1] == before
    assert json.loads(path.read_text()) == config
    good = {**config, "weights": {"stable": 7}}
    assert request_json("PUT", admin + "/admin/config", good)[0] == 200
    assert request_json("GET", admin + "/admin/config")[1]["weights"] == {"stable": 7}


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1"])
def test_the_admin_port_must_be_loopback(tmp_path: Path, host: str):
    (tmp_path / "router.json").write_text("{}")
    done = subprocess.run(
        [
            *ROUTER,
            "--config",
            str(tmp_path / "router.json"),
            "--port",
            str(free_port()),
            "--admin-port",
            str(free_port()),
            "--admin-host",
            host,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=ENV,
    )
    assert done.returncode == 2
    assert "not a loopback address" in done.stderr


def test_the_pool_resends_on_a_connection_the_server_closed_while_idle():
    """A restarted upstream leaves a dead keep-alive connection: the next request still works."""

    async def serve(port: int) -> web.AppRunner:
        async def predict(request: web.Request) -> web.Response:
            return web.json_response({"echo": (await request.read()).decode()})

        app = web.Application()
        app.router.add_post("/predict", predict)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    async def scenario() -> list[Any]:
        port = free_port()
        pool = Pool("127.0.0.1", port, "/predict", {"content-type": "application/json"})
        runner = await serve(port)
        first = await pool.post(b'"a"', 5)
        await runner.cleanup()  # closes the idle connection from the server's side
        runner = await serve(port)
        second = await pool.post(b'"b"', 5)
        await runner.cleanup()
        try:
            await pool.post(b'"c"', 5)
        except UpstreamError as error:
            third: Any = error
        pool.close()
        return [first, second, third]

    first, second, third = asyncio.run(scenario())
    assert first[:2] == (200, b'{"echo": "\\"a\\""}')
    assert second[0] == 200
    assert isinstance(third, UpstreamError)


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Served]]:
    """A real model server process and a real router process in front of it."""
    root = tmp_path_factory.mktemp("routed")
    with serving(root) as server, routing(root, server) as router:
        yield server, router


def test_the_router_refuses_what_the_server_refuses(routed):
    """Content type is passed on unchanged: each body gets the same status through the
    router as from the server alone (text/plain and form bodies: 415, not 200 or 422)."""
    server, router = routed
    body = row_body()
    cases = {
        "json": request_bytes(body),
        "no content type": request_bytes(body, None),
        "text/plain": request_bytes(body, "text/plain"),
        "form": request_bytes(b"account=A1&spend=3", "application/x-www-form-urlencoded"),
        "multipart": request_bytes(body, "multipart/form-data; boundary=x"),
        "utf-16 charset": request_bytes(body, "application/json; charset=utf-16"),
    }
    direct = {name: exchange(server.port, raw)[0] for name, raw in cases.items()}
    through = {name: exchange(router.port, raw)[0] for name, raw in cases.items()}
    assert through == direct
    assert direct["text/plain"] == direct["form"] == 415
    assert direct["json"] == direct["no content type"] == 200


def test_the_callers_request_id_survives_the_router(routed):
    """The caller's X-Request-ID reaches the server (its answer and its log) and comes back."""
    server, router = routed
    raw = request_bytes(row_body(account="traced-1"), extra=[("X-Request-ID", "caller-id-42")])
    with socket.create_connection(("127.0.0.1", router.port), timeout=20) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"x-request-id: caller-id-42" in head.lower()
    assert json.loads(body)["request_id"] == "caller-id-42"
    deadline = time.monotonic() + 10
    while "traced-1" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    logged = [
        json.loads(line) for line in server.log.read_text().splitlines() if "traced-1" in line
    ]
    assert [record["request_id"] for record in logged] == ["caller-id-42"]


def _peak_rss_kb(pid: int) -> int:
    """The most memory the process ever held (freed memory does not hide a spike)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))


def test_the_router_refuses_a_64_mb_header_without_holding_it(routed):
    """A head is capped as the server caps it: 431, memory not grown by the header, still serving."""
    _, router = routed
    before = _peak_rss_kb(router.process.pid)
    status, _ = exchange(
        router.port, request_bytes(row_body(), extra=[("X-Big", "a" * (64 << 20))])
    )
    assert status in (431, None)  # the answer may be lost when the router closes mid-upload
    assert _peak_rss_kb(router.process.pid) - before < 16_384  # never held the 64 MB
    assert exchange(router.port, request_bytes(row_body()))[0] == 200


def test_the_router_lets_go_of_idle_and_trickling_connections(routed):
    """Nothing sent, a head a byte a second, a body a byte a second: the router closes each
    (the deadlines of asgi/protocol.py), well before this test would give up on it."""
    _, router = routed
    body = row_body()
    cases = {
        "idle": (b"", b""),
        "trickled head": (
            b"POST /predict HTTP/1.1\r\nHost: x\r\n",
            b"X-Slow: 12345678901234567890",
        ),
        "trickled body": (request_bytes(body)[: -len(body)], body),
    }
    limit = 40.0
    held: dict[str, float] = {}
    threads = [
        threading.Thread(
            target=lambda n=name, c=case: held.update({n: held_for(router.port, *c, limit=limit)})
        )
        for name, case in cases.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(seconds < limit - 5 for seconds in held.values()), held
