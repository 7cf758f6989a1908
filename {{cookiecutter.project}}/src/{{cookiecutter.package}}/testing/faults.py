"""Fault injection for delivery tests and demos: an ASGI wrapper around the production server.

The model server (`serve/`) has no fault path. Faults exist only when this module is the
entry point, `python -m <package>.testing.faults --fault SPEC <serve arguments>`, which the
delivery tests and `make deploy-canary BAD=...` start explicitly; the server image leaves
this package out (.dockerignore), so no setting of the production entry point reaches it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..asgi.guard import RECEIVED_AT
from ..asgi.limits import ASGIApp, Receive, Scope, Send
from ..errors import ConfigError, run_main

KINDS = ("errors", "slow", "crash", "never_ready")


class FaultError(ConfigError):
    """A fault spec that cannot be parsed."""


@dataclass
class Fault:
    """What to break: `errors` (share of 5xx), `slow` (ms added), `crash` (exit), `never_ready`.

    `after` requests are served normally first, so a breach can start mid-rollout.
    """

    kind: str
    amount: float = 0.0
    after: int = 0
    seen: int = 0
    _debt: float = 0.0

    def on_request(self) -> str | None:
        """Count one request; return the action to take: "error", "slow", "crash" or None."""
        self.seen += 1
        if self.seen <= self.after:
            return None
        if self.kind == "errors":
            # deterministic share: an error each time the accumulated share reaches one
            self._debt += self.amount
            if self._debt >= 1.0:
                self._debt -= 1.0
                return "error"
            return None
        if self.kind in ("slow", "crash"):
            return self.kind
        return None


def parse_fault(spec: str) -> Fault:
    """Parse `kind[=amount][,after=N]`, e.g. `errors=0.3`, `slow=400`, `crash,after=50`."""
    head, *options = spec.split(",")
    kind, _, amount = head.partition("=")
    if kind not in KINDS:
        raise FaultError(f"unknown fault {kind!r}; expected one of {', '.join(KINDS)}")
    defaults = {"errors": 0.3, "slow": 400.0}
    try:
        fault = Fault(kind, float(amount) if amount else defaults.get(kind, 0.0))
        for option in options:
            key, _, value = option.partition("=")
            if key != "after":
                raise FaultError(f"unknown fault option {key!r}; expected after=N")
            fault.after = int(value)
    except ValueError as error:
        raise FaultError(f"bad fault spec {spec!r}: {error}") from None
    if kind == "errors" and not 0 < fault.amount <= 1:
        raise FaultError(f"errors share must be in (0, 1], got {fault.amount}")
    return fault


async def _answer(send: Send, status: int, payload: dict[str, object]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FaultInjector:
    """Wrap the server's app: break /predict (and /readyz) the way `fault` says.

    Injected 5xx go through `count`, the server's own `model_requests_total`, and the request
    is timed from here, so an injected delay is in the served latency histogram: the
    analysis sees a faulty canary exactly as it would see a faulty model.
    """

    def __init__(self, app: ASGIApp, fault: Fault, count: Callable[[str], None]) -> None:
        self.app = app
        self.fault = fault
        self.count = count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.fault.kind == "never_ready" and scope.get("path") == "/readyz":
            await _answer(send, 503, {"ready": False, "reason": "injected fault: never ready"})
            return
        if scope.get("path") != "/predict" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        scope.setdefault(RECEIVED_AT, time.perf_counter())
        action = self.fault.on_request()
        if action == "crash":
            os._exit(3)
        if action == "slow":
            await asyncio.sleep(self.fault.amount / 1000)
        if action == "error":
            while (await receive()).get("more_body"):
                pass  # read the body, so the connection stays usable
            self.count("error")
            await _answer(send, 500, {"detail": "injected fault"})
            return
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> int:
    """Run the model server (`serve` arguments) wrapped in a fault injector."""
    parser = argparse.ArgumentParser(
        prog="faults", description=main.__doc__, epilog="Other arguments go to `serve`."
    )
    parser.add_argument(
        "--fault", required=True, help="errors=0.3 | slow=400 | crash | never_ready [,after=N]"
    )
    args, serve_args = parser.parse_known_args(argv)
    fault = parse_fault(args.fault)
    from ..serve import app as server

    print(f"faults: injecting {args.fault} (tests and demos only)", file=sys.stderr)
    return server.main(
        serve_args, wrap=lambda app: FaultInjector(app, fault, app.state.metrics.count)
    )


if __name__ == "__main__":
    sys.exit(run_main("faults", main, sys.argv[1:]))
