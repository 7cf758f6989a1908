"""The router: exact weights over model-server processes, per-variant counters, shadow copies.

A plain ASGI app (no framework) on uvicorn, forwarding over keep-alive connections parsed
by httptools (`upstream.py`): the hop is the cost of the canary, so it is kept small. It has
the model server's limits (head and body size, deadlines to read a request: `asgi/protocol.py`)
and passes the caller's Content-Type and X-Request-ID on unchanged, so a request is refused or
traced exactly as the server alone would. Two listening sockets share the app: the
traffic port answers /predict, /healthz, /readyz and /metrics; the admin port (loopback
only) answers /admin/*. A routing table is immutable and swapped whole, and each request
keeps the table it was routed with, so a switch never fails a request in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import (
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from ..artifacts import write_json
from ..asgi.limits import BodyLimit, Message, Receive, Scope, Send
from ..asgi.metrics import LATENCY_BUCKETS
from ..asgi.protocol import LimitedHttpToolsProtocol, limited_protocol
from ..typed import Frozen, parse
from .shadow import ShadowMetrics, ShadowMirror
from .upstream import Pool, UpstreamError
from .window import VariantCounters

JSON_HEADERS = [(b"content-type", b"application/json")]
PASSED_ON = (b"content-type", b"x-request-id")  # the caller's, to the server and its answer
VARIANT_HEADER = "x-route-variant"  # the server answers with the role it is routed as
STABLE = "stable"
Outcome = Literal["ok", "error", "rejected"]


class WeightedChoice:
    """Smooth weighted round-robin: every `sum(weights)` picks give each exactly its weight."""

    def __init__(self, weights: dict[str, int]) -> None:
        self.weights = {name: int(w) for name, w in weights.items() if int(w) > 0}
        if not self.weights:
            raise ValueError("at least one weight must be positive")
        self.total = sum(self.weights.values())
        self.current = dict.fromkeys(self.weights, 0)

    def pick(self) -> str:
        """The next variant."""
        best = ""
        for name, weight in self.weights.items():
            self.current[name] += weight
            if not best or self.current[name] > self.current[best]:
                best = name
        self.current[best] -= self.total
        return best


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (the router forwards nowhere else)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UpstreamConfig(Frozen):
    """One model server: its base URL (loopback only) and the version it serves."""

    url: str
    version: str = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _loopback_http(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(f"{url!r}: expected http://HOST:PORT")
        if parts.path.rstrip("/") or parts.query:
            raise ValueError(f"{url!r}: give the server's base URL; the router adds /predict")
        if not is_loopback(parts.hostname):
            raise ValueError(f"{url!r}: upstreams must be on loopback (127.0.0.1, ::1)")
        return url.rstrip("/")


class ShadowConfig(Frozen):
    """Mirror a sample of stable's requests to `target` and compare the answers."""

    target: str
    sample: float = Field(gt=0, le=1)
    queue: int = Field(ge=1)
    timeout_ms: float = Field(gt=0)
    relative_tolerance: float = Field(0.05, ge=0)  # when two regression values disagree
    tolerance_floor: float = Field(0.0, ge=0)


class RouterConfig(Frozen):
    """The whole routing table; checked in full before it replaces the running one."""

    upstreams: dict[str, UpstreamConfig] = Field(min_length=1)
    weights: dict[str, StrictInt]
    shadow: ShadowConfig | None = None
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("weights")
    @classmethod
    def _non_negative(cls, weights: dict[str, int]) -> dict[str, int]:
        bad = [name for name, w in weights.items() if w < 0]
        if bad:
            raise ValueError(f"weights must be non-negative integers: {bad}")
        if not any(weights.values()):
            raise ValueError("at least one weight must be positive")
        return weights

    @model_validator(mode="after")
    def _names_known(self) -> RouterConfig:
        unknown = sorted(set(self.weights) - set(self.upstreams))
        if unknown:
            raise ValueError(f"weight for unknown variant(s) {unknown}")
        if self.shadow is not None and self.shadow.target not in self.upstreams:
            raise ValueError(f"shadow.target {self.shadow.target!r} must name an upstream")
        return self


def validate_config(raw: Any) -> RouterConfig:
    """Check a routing config; a ConfigError (a ValueError) names every wrong field."""
    return parse(RouterConfig, raw, "invalid router config")


@dataclass(frozen=True)
class Upstream:
    """A variant as one request sees it: where to send, which version, where to count."""

    name: str
    url: str
    version: str
    pool: Pool  # keep-alive connections; the request tells the server its role right now
    counters: VariantCounters
    outcomes: dict[str, Any]  # outcome -> bound prometheus counter child
    latency: Any  # bound prometheus histogram child

    def observe(self, seconds: float, outcome: Outcome) -> None:
        """Count one answer against this variant at this version."""
        self.counters.observe(seconds, outcome)
        self.outcomes[outcome].inc()
        self.latency.observe(seconds)


@dataclass(frozen=True)
class Routes:
    """An immutable routing table: replaced whole, never edited."""

    config: RouterConfig
    upstreams: dict[str, Upstream]
    choice: WeightedChoice
    shadow: ShadowMirror | None

    def pick(self) -> Upstream:
        """The upstream for the next request (the weighted choice is the only state)."""
        return self.upstreams[self.choice.pick()]


class Router:
    """The ASGI app; `configure` swaps the routing table at run time."""

    def __init__(
        self, config: Any, config_path: Path | None = None, admin_port: int | None = None
    ) -> None:
        self.config_path = config_path
        self.admin_port = admin_port
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "model_requests",
            "Requests through the router by variant, version and outcome",
            ("variant", "model_version", "outcome"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "model_request_latency_seconds",
            "Upstream round trip by variant",
            ("variant", "model_version"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.shadow_metrics = ShadowMetrics(self.registry)
        self.counters: dict[str, VariantCounters] = {}
        self.pools: dict[tuple[str, str], Pool] = {}
        self.session: aiohttp.ClientSession | None = None  # for shadow copies only
        checked = validate_config(config)
        self.timeout_s = checked.timeout_s
        self.routes = self._build(checked, None)

    def _build(self, config: RouterConfig, old: Routes | None) -> Routes:
        """A new table from a checked config; reuses counters and a mirror that did not change."""
        upstreams = {}
        for name, up in config.upstreams.items():
            counters = self.counters.setdefault(f"{name}@{up.version}", VariantCounters(up.version))
            outcomes = {o: self._requests.labels(name, up.version, o) for o in get_args(Outcome)}
            latency = self._latency.labels(name, up.version)
            upstreams[name] = Upstream(
                name, up.url, up.version, self._pool(up.url, name), counters, outcomes, latency
            )
        mirror = None
        if config.shadow is not None:
            target = config.upstreams[config.shadow.target]
            same = (
                old is not None
                and old.shadow is not None
                and old.config.shadow == config.shadow
                and old.shadow.url == target.url + "/predict"
            )
            mirror = old.shadow if same and old is not None else self._mirror(config.shadow, target)
        weights = {name: config.weights.get(name, 0) for name in config.upstreams}
        return Routes(config, upstreams, WeightedChoice(weights), mirror)

    def _pool(self, url: str, role: str) -> Pool:
        """The connection pool to `url` for requests routed as `role` (kept across swaps)."""
        key = (url, role)
        if key not in self.pools:
            parts = urlsplit(url)
            headers = {VARIANT_HEADER: role}
            self.pools[key] = Pool(parts.hostname or "", parts.port or 80, "/predict", headers)
        return self.pools[key]

    def _mirror(self, shadow: ShadowConfig, target: UpstreamConfig) -> ShadowMirror:
        mirror = ShadowMirror(
            target.url,
            target.version,
            shadow.sample,
            shadow.queue,
            shadow.timeout_ms,
            self.shadow_metrics,
            relative_tolerance=shadow.relative_tolerance,
            tolerance_floor=shadow.tolerance_floor,
        )
        if self.session is not None:
            mirror.start(self.session)
        return mirror

    def configure(self, raw: Any) -> RouterConfig:
        """Check `raw` in full, then swap the table in one assignment, and persist it."""
        config = validate_config(raw)
        old = self.routes
        self.routes = self._build(config, old)
        if old.shadow is not None and old.shadow is not self.routes.shadow:
            asyncio.get_running_loop().create_task(old.shadow.stop())
        if self.config_path is not None:
            write_json(self.config_path, config.model_dump())
        return config

    def stats(self) -> dict[str, Any]:
        """Cumulative per-variant counters (and shadow comparisons) for the controller."""
        routes = self.routes
        return {
            "time": time.time(),
            "weights": routes.config.weights,
            "versions": {n: u.version for n, u in routes.upstreams.items()},
            "variants": {key: c.snapshot() for key, c in self.counters.items()},
            "shadow": routes.shadow.snapshot() if routes.shadow else None,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        server = scope.get("server")
        if self.admin_port is not None and server is not None and server[1] == self.admin_port:
            await self._admin(path, method, receive, send)
        elif path == "/predict" and method == "POST":
            await self._predict(await _body(receive), _passed_on(scope), send)
        elif path in ("/healthz", "/readyz") and method == "GET":
            await _reply(send, 200, {"status": "ok", "weights": self.routes.config.weights})
        elif path == "/metrics" and method == "GET":
            headers = [(b"content-type", b"text/plain; version=0.0.4")]
            await _raw(send, 200, generate_latest(self.registry), headers)
        else:
            await _reply(send, 404, {"detail": f"no route {method} {path}"})

    async def _admin(self, path: str, method: str, receive: Receive, send: Send) -> None:
        if path == "/admin/stats" and method == "GET":
            await _reply(send, 200, self.stats())
        elif path == "/admin/config" and method == "GET":
            await _reply(send, 200, self.routes.config.model_dump())
        elif path == "/admin/config" and method == "PUT":
            await self._configure(await _body(receive), send)
        elif path == "/healthz" and method == "GET":
            await _reply(send, 200, {"status": "ok"})
        else:
            await _reply(send, 404, {"detail": f"no admin route {method} {path}"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
                timeout = aiohttp.ClientTimeout(total=self.timeout_s)
                self.session = aiohttp.ClientSession(connector=connector, timeout=timeout)
                if self.routes.shadow is not None:
                    self.routes.shadow.start(self.session)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.routes.shadow is not None:
                    await self.routes.shadow.stop()
                if self.session is not None:
                    await self.session.close()
                for pool in self.pools.values():
                    pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _configure(self, body: bytes, send: Send) -> None:
        try:
            config = self.configure(json.loads(body))
        except ValueError as error:  # also a body that is not JSON
            await _reply(send, 422, {"detail": str(error)})
            return
        await _reply(send, 200, config.model_dump())

    async def _forward(
        self, upstream: Upstream, body: bytes, headers: bytes
    ) -> tuple[int, bytes, bytes, float]:
        """POST to one variant; status 0 means the variant could not be reached."""
        start = time.perf_counter()
        try:
            status, answer, rid = await upstream.pool.post(body, self.timeout_s, headers)
        except (UpstreamError, TimeoutError):
            status, answer, rid = 0, b"", b""
        seconds = time.perf_counter() - start
        outcome: Outcome = (
            "ok" if 0 < status < 400 else "rejected" if 400 <= status < 500 else "error"
        )
        upstream.observe(seconds, outcome)
        return status, answer, rid, seconds

    async def _predict(self, body: bytes, headers: bytes, send: Send) -> None:
        routes = self.routes  # this request keeps this table, whatever is swapped meanwhile
        upstream = routes.pick()
        status, answer, rid, seconds = await self._forward(upstream, body, headers)
        stable = routes.upstreams.get(STABLE)
        if (status == 0 or status >= 500) and stable is not None and upstream is not stable:
            # a failing canary is counted against it, and the caller still gets an answer
            upstream = stable
            status, answer, rid, seconds = await self._forward(stable, body, headers)
        if status == 0:
            await _reply(send, 503, {"detail": f"variant {upstream.name!r} is unreachable"})
            return
        answer_headers = [*JSON_HEADERS, (b"x-request-id", rid)] if rid else JSON_HEADERS
        await _raw(send, status, answer, answer_headers)
        if routes.shadow is not None and status == 200 and upstream is stable:
            routes.shadow.offer(body, answer, seconds)


def _passed_on(scope: Scope) -> bytes:
    """The caller's headers that go to the server as they came, as raw header lines."""
    return b"".join(
        name + b": " + value + b"\r\n" for name, value in scope["headers"] if name in PASSED_ON
    )


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message: Message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _raw(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]  # not chunked
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _reply(send: Send, status: int, obj: Any) -> None:
    await _raw(send, status, json.dumps(obj).encode(), JSON_HEADERS)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    """Run the router: traffic on `--port`, the admin API on `--admin-port` (loopback only)."""
    parser = argparse.ArgumentParser(prog="router", description="Weighted router for variants.")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--admin-host", default="127.0.0.1", help="must be a loopback address")
    parser.add_argument("--admin-port", type=int, required=True)
    parser.add_argument("--max-body-bytes", type=int, default=1_048_576)
    parser.add_argument("--instance", default="", help="tag that identifies this process")
    args = parser.parse_args(argv)
    if not is_loopback(args.admin_host):
        print(f"router: --admin-host {args.admin_host} is not a loopback address", file=sys.stderr)
        return 2
    if args.admin_port == args.port:
        print("router: --admin-port must differ from --port", file=sys.stderr)
        return 2
    try:
        router = Router(
            json.loads(args.config.read_text(encoding="utf-8")), args.config, args.admin_port
        )
        sockets = [_listen(args.host, args.port), _listen(args.admin_host, args.admin_port)]
    except (OSError, ValueError) as error:
        print(f"router: {args.config}: {error}", file=sys.stderr)
        return 2
    import uvicorn

    app = BodyLimit(router, args.max_body_bytes)
    config = uvicorn.Config(
        app,
        http=limited_protocol(LimitedHttpToolsProtocol),
        timeout_keep_alive=5,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=sockets)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
