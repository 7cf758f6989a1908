"""Limits in ASGI layers: body size (chunked bodies too), a head that arrived whole, admission
(how many requests are worked on at once, beyond which new ones are shed) and the loop's budget.

The limits below ASGI (head arriving in pieces, deadlines, held connections) are in
`protocol.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from .protocol import MAX_HEAD_BYTES, hold_connection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Answer 413 when a body exceeds `max_bytes`, by header or by counting what arrives, and
    431 when the request line and headers together exceed `max_head_bytes`."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        max_head_bytes: int = MAX_HEAD_BYTES,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_head_bytes = max_head_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        # h11 caps a head that arrives in pieces; one that arrives whole is measured here
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        head += sum(len(name) + len(value) + 4 for name, value in headers)
        if head > self.max_head_bytes:
            text = f"the request line and headers are larger than {self.max_head_bytes} bytes"
            await self._refuse(send, 431, text)
            return
        for name, value in headers:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send, 413, self._too_large)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(send, 413, self._too_large)

    @property
    def _too_large(self) -> str:
        return f"request body is larger than {self.max_bytes} bytes"

    async def _refuse(self, send: Send, status: int, reason: str) -> None:
        body = json.dumps({"detail": [{"field": "(body)", "loc": [], "reason": reason}]}).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class LoopBudget:
    """A share of the event loop's time that inline work may use (a token bucket in seconds).

    Work done on the loop is fastest for one client (no thread hop), but every second of it
    delays health probes. The bucket refills at `share` seconds per second, up to `burst`.
    """

    def __init__(self, share: float = 0.5, burst: float = 0.005) -> None:
        self.share = share
        self.burst = burst
        self._left = burst
        self._at = time.perf_counter()

    def available(self) -> bool:
        """Whether inline work may start now."""
        now = time.perf_counter()
        self._left = min(self.burst, self._left + (now - self._at) * self.share)
        self._at = now
        return self._left > 0

    def spend(self, seconds: float) -> None:
        """Charge what inline work took (the bucket may go negative: the next waits longer)."""
        self._left -= seconds


class Admission:
    """How many requests are being worked on; beyond `limit` new ones are shed.

    A request counts from when its body has been read to when it is answered: a client that
    sends its body slowly holds a connection (until the body deadline), never a slot.
    """

    def __init__(self, limit: int, retry_after_s: int = 1) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.inflight = 0

    def full(self) -> bool:
        """Whether a new request would be shed now."""
        return self.inflight >= self.limit

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Count one request (its body read) while the block runs."""
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1


class Shed:
    """The outermost layer: a /predict request that arrives while admission is full is answered
    503 with Retry-After at once, before any other layer or the framework sees it, and its
    connection is not read again until then (a client that retries at once waits anyway)."""

    def __init__(
        self,
        app: ASGIApp,
        admission: Admission,
        on_shed: Callable[[], None],
        paths: tuple[str, ...] = ("/predict",),
    ) -> None:
        self.app = app
        self.admission = admission
        self.on_shed = on_shed
        self.paths = paths
        wait = admission.retry_after_s
        detail = f"busy: {admission.limit} requests in progress; retry after {wait} s"
        body = json.dumps({"detail": detail}).encode()
        self._start = {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(admission.retry_after_s).encode()),
            ],
        }
        self._body = {"type": "http.response.body", "body": body}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.admission.full() and scope["type"] == "http" and scope["path"] in self.paths:
            self.on_shed()
            hold_connection(self.admission.retry_after_s)
            await send(self._start)
            await send(self._body)
            return
        await self.app(scope, receive, send)
