"""Request limits: body size (an ASGI middleware, chunked bodies too), head size and a deadline
for reading each request (the HTTP protocol), so no client holds a connection or memory for long.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_HEAD_BYTES = 16_384  # request line and headers; nginx's default large buffer is 8 KB

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
        on_reject: Callable[[], None] | None = None,
        max_head_bytes: int = MAX_HEAD_BYTES,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject
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
            # not counted: whether h11 or this check refuses it depends on how the bytes arrived
            text = f"the request line and headers are larger than {self.max_head_bytes} bytes"
            await self._refuse(send, 431, text, count=False)
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

    async def _refuse(self, send: Send, status: int, reason: str, count: bool = True) -> None:
        if count and self.on_reject is not None:
            self.on_reject()
        body = json.dumps({"detail": [{"field": "(body)", "loc": [], "reason": reason}]}).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _json_answer(status: int, reason: str, text: str) -> bytes:
    body = json.dumps({"detail": [{"field": "(head)", "loc": [], "reason": text}]}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class DeadlineH11Protocol(H11Protocol):
    """h11 (it caps the head; httptools does not) with a deadline to read each request.

    The deadline starts when the connection is ready for a request (opened, or the previous
    answer sent): a client that sends nothing, trickles its head or its body is dropped then.
    """

    read_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.read_timeout, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        # IDLE: the head has not arrived whole; SEND_BODY: the body has not
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.logger.info(
                "closed a connection that did not send its request within %s s", self.read_timeout
            )
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """Say 431 when the head outgrew the limit (h11 only says the request is invalid)."""
        limit = self.config.h11_max_incomplete_event_size or MAX_HEAD_BYTES
        if len(self.conn.trailing_data[0]) > limit:
            text = f"the request line and headers are larger than {limit} bytes"
            self.transport.write(_json_answer(431, "Request Header Fields Too Large", text))
            self.transport.close()
            return
        super().send_400_response(msg)


def deadline_protocol(read_timeout: float) -> type[DeadlineH11Protocol]:
    """The protocol class uvicorn instantiates, with this read deadline."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"read_timeout": read_timeout})


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
