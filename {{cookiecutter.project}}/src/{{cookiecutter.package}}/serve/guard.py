"""The outermost ASGI layer: every failure becomes a counted outcome and a clean JSON answer."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from starlette.requests import ClientDisconnect

from .limits import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
RECEIVED_AT = "server.received_at"  # scope key: when the outermost layer got the request


class Guard:
    """Answer an unhandled exception with a 500 JSON body and count it; log a hang-up in one line.

    `count(outcome)` is called for requests to `counted` paths, so /predict's errors reach
    `model_requests_total` whatever raised them (the canary analysis reads that counter).
    """

    def __init__(
        self, app: ASGIApp, count: Callable[[str], None], counted: tuple[str, ...] = ("/predict",)
    ) -> None:
        self.app = app
        self.count = count
        self.counted = counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # latency is timed from here (or from a wrapping layer that set it first)
        scope.setdefault(RECEIVED_AT, time.perf_counter())
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        where = f"{scope.get('method')} {scope.get('path')}"
        counted = scope.get("path") in self.counted
        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            client = scope.get("client") or ("?", 0)
            log.warning("client %s:%s disconnected before sending all of %s", *client, where)
            if counted:
                self.count("rejected")  # the client gave up: not the model's failure
        except Exception:
            log.exception("unhandled error answering %s", where)
            if counted:
                self.count("error")
            if not started:
                body = json.dumps({"detail": "internal error; the server log has the cause"})
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": body.encode()})
