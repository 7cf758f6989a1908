"""The router: exact weights over model-server processes, per-variant counters, shadow copies.

A plain ASGI app (no framework) on uvicorn with one keep-alive aiohttp client: the hop is
the cost of the canary, so it is kept small.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ..artifacts import write_json
from ..serve.limits import BodyLimit, Message, Receive, Scope, Send
from ..serve.metrics import LATENCY_BUCKETS
from .shadow import ShadowMetrics, ShadowMirror
from .window import VariantCounters

JSON_HEADERS = [(b"content-type", b"application/json")]
FORWARD_HEADERS = {"content-type": "application/json"}
STABLE = "stable"


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


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check a routing config; ValueError says what is wrong."""
    upstreams = config.get("upstreams")
    weights = config.get("weights")
    if not isinstance(upstreams, dict) or not upstreams:
        raise ValueError("`upstreams` must map variant names to {url, version}")
    if not isinstance(weights, dict):
        raise TypeError("`weights` must map variant names to integers")
    for name, upstream in upstreams.items():
        if not isinstance(upstream, dict) or not {"url", "version"} <= set(upstream):
            raise ValueError(f"upstream {name!r} needs `url` and `version`")
    for name, weight in weights.items():
        if name not in upstreams:
            raise ValueError(f"weight for unknown variant {name!r}")
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise ValueError(f"weight of {name!r} must be a non-negative integer")
    WeightedChoice(weights)
    shadow = config.get("shadow")
    if shadow is not None and shadow.get("target") not in upstreams:
        raise ValueError("`shadow.target` must name an upstream")
    return config


class Router:
    """The ASGI app; `configure` swaps upstreams, weights and shadow at run time."""

    def __init__(self, config: dict[str, Any], config_path: Path | None = None) -> None:
        self.config_path = config_path
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
        self.session: aiohttp.ClientSession | None = None
        self.shadow: ShadowMirror | None = None
        self.timeout = aiohttp.ClientTimeout(total=float(config.get("timeout_s", 10)))
        self.config: dict[str, Any] = {}
        self.choice: WeightedChoice
        self._apply(validate_config(config))

    def _apply(self, config: dict[str, Any]) -> None:
        old_shadow = self.shadow
        self.config = config
        self.choice = WeightedChoice(config["weights"])
        self.urls = {n: u["url"].rstrip("/") + "/predict" for n, u in config["upstreams"].items()}
        self.versions = {n: str(u["version"]) for n, u in config["upstreams"].items()}
        for name, version in self.versions.items():
            key = f"{name}@{version}"
            self.counters.setdefault(key, VariantCounters(version))
        shadow = config.get("shadow")
        self.shadow = None
        if shadow:
            target = shadow["target"]
            same = old_shadow is not None and old_shadow.url == self.urls[target]
            self.shadow = old_shadow if same else self._new_shadow(target, shadow)
        if old_shadow is not None and old_shadow is not self.shadow:
            asyncio.get_running_loop().create_task(old_shadow.stop())

    def _new_shadow(self, target: str, shadow: dict[str, Any]) -> ShadowMirror:
        mirror = ShadowMirror(
            self.config["upstreams"][target]["url"],
            self.versions[target],
            float(shadow.get("sample", 1.0)),
            int(shadow.get("queue", 256)),
            float(shadow.get("timeout_ms", 200)),
            self.shadow_metrics,
        )
        if self.session is not None:
            mirror.start(self.session)
        return mirror

    def configure(self, config: dict[str, Any]) -> None:
        """Replace the routing config atomically and persist it for a restarted router."""
        self._apply(validate_config(config))
        if self.config_path is not None:
            write_json(self.config_path, config)

    def stats(self) -> dict[str, Any]:
        """Cumulative per-variant counters (and shadow comparisons) for the controller."""
        return {
            "time": time.time(),
            "weights": self.config["weights"],
            "versions": self.versions,
            "variants": {key: c.snapshot() for key, c in self.counters.items()},
            "shadow": self.shadow.snapshot() if self.shadow else None,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/predict" and method == "POST":
            await self._predict(await _body(receive), send)
        elif path in ("/healthz", "/readyz") and method == "GET":
            await _reply(send, 200, {"status": "ok", "weights": self.config["weights"]})
        elif path == "/metrics" and method == "GET":
            headers = [(b"content-type", b"text/plain; version=0.0.4")]
            await _raw(send, 200, generate_latest(self.registry), headers)
        elif path == "/admin/stats" and method == "GET":
            await _reply(send, 200, self.stats())
        elif path == "/admin/config" and method == "GET":
            await _reply(send, 200, self.config)
        elif path == "/admin/config" and method == "PUT":
            await self._configure(await _body(receive), send)
        else:
            await _reply(send, 404, {"detail": f"no route {method} {path}"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
                self.session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
                if self.shadow is not None:
                    self.shadow.start(self.session)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.shadow is not None:
                    await self.shadow.stop()
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _configure(self, body: bytes, send: Send) -> None:
        try:
            self.configure(json.loads(body))
        except (ValueError, TypeError, AttributeError) as error:
            await _reply(send, 422, {"detail": str(error)})
            return
        await _reply(send, 200, self.config)

    async def _forward(self, name: str, body: bytes) -> tuple[int, bytes, float]:
        """POST to one variant; status 0 means the variant could not be reached."""
        assert self.session is not None
        start = time.perf_counter()
        try:
            async with self.session.post(
                self.urls[name], data=body, headers=FORWARD_HEADERS
            ) as response:
                answer = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status, answer = 0, b""
        seconds = time.perf_counter() - start
        outcome = "ok" if 0 < status < 400 else "rejected" if 400 <= status < 500 else "error"
        version = self.versions[name]
        self.counters[f"{name}@{version}"].observe(seconds, outcome)
        self._requests.labels(name, version, outcome).inc()
        self._latency.labels(name, version).observe(seconds)
        return status, answer, seconds

    async def _predict(self, body: bytes, send: Send) -> None:
        name = self.choice.pick()
        status, answer, seconds = await self._forward(name, body)
        if (status == 0 or status >= 500) and name != STABLE and STABLE in self.urls:
            # a failing canary is counted against it, and the caller still gets an answer
            status, answer, seconds = await self._forward(STABLE, body)
            name = STABLE
        if status == 0:
            await _reply(send, 503, {"detail": f"variant {name!r} is unreachable"})
            return
        await _raw(send, status, answer, JSON_HEADERS)
        if self.shadow is not None and status == 200 and name == STABLE:
            self.shadow.offer(body, answer, seconds)


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message: Message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _raw(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _reply(send: Send, status: int, obj: Any) -> None:
    await _raw(send, status, json.dumps(obj).encode(), JSON_HEADERS)


def main(argv: list[str] | None = None) -> int:
    """Run the router on a port with the config from `--config` (a JSON file)."""
    parser = argparse.ArgumentParser(prog="router", description="Weighted router for variants.")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-body-bytes", type=int, default=1_048_576)
    parser.add_argument("--instance", default="", help="tag that identifies this process")
    args = parser.parse_args(argv)
    try:
        router = Router(json.loads(args.config.read_text(encoding="utf-8")), args.config)
    except (OSError, ValueError) as error:
        print(f"router: {args.config}: {error}", file=sys.stderr)
        return 2
    import uvicorn

    app = BodyLimit(router, args.max_body_bytes)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
