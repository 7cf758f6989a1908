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


def outcome(status: int) -> str:
    """How `model_requests_total` counts an answer with this status."""
    return "ok" if status < 400 else "rejected" if status < 500 else "error"


class Guard:
    """Count every answer to a `counted` path by its status, whatever produced it (the route,
    a limit, the framework's 405); answer an unhandled exception with a counted 500 JSON body;
    log a hang-up in one line. The canary analysis reads `model_requests_total`.
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
        counted = scope.get("path") in self.counted

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if counted:
                    self.count(outcome(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            client = scope.get("client") or ("?", 0)
            where = f"{scope.get('method')} {scope.get('path')}"
            log.warning("client %s:%s disconnected before sending all of %s", *client, where)
            if counted and not started:
                self.count("rejected")  # the client gave up: not the model's failure
        except Exception:
            log.exception("unhandled error answering %s %s", scope.get("method"), scope.get("path"))
            if counted and not started:
                self.count("error")
            if not started:
                body = json.dumps({"detail": "internal error; the server log has the cause"})
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": body.encode()})
