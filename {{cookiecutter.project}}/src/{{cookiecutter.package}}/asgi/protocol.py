"""Limits in the HTTP protocol, below any ASGI layer: head size, deadlines, held connections.

uvicorn's protocol classes, extended. The deadline to read a request starts when the
connection is ready for one (opened, or the previous answer sent); once the head is in, the
body has a shorter deadline of its own, so a client that trickles its body holds a connection
for seconds, never a slot. A connection told to `hold` (a shed request: the caller was asked to
retry later) is not read again until then, so a client that retries at once costs the server
one read a second instead of a busy loop. The model server uses h11 (it caps the head itself);
the router, whose hop every canary request pays, uses httptools with the cap counted here.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16_384  # request line and headers; nginx's default large buffer is 8 KB
READ_TIMEOUT_S = 10.0  # from ready to the whole head
BODY_TIMEOUT_S = 2.0  # from the whole head to the whole body
MAX_DOUBLINGS = 2  # a connection shed again and again is held up to 4x its Retry-After

# The connection whose request the current task answers: every ASGI task is created while
# its connection parses (asyncio copies the context then), so a layer can reach its connection.
_CONNECTION: ContextVar[_Deadlines | None] = ContextVar("connection", default=None)


def hold_connection(seconds: float) -> None:
    """Do not read the current request's connection again for `seconds` after its answer."""
    connection = _CONNECTION.get()
    if connection is not None:
        connection.held = seconds


def too_large_answer(limit: int) -> bytes:
    """The raw 431 answer (JSON like every other refusal) for a head over `limit` bytes."""
    text = f"the request line and headers are larger than {limit} bytes"
    body = json.dumps({"detail": [{"field": "(head)", "loc": [], "reason": text}]}).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Deadlines:
    """The deadline and hold bookkeeping both protocols share."""

    # each protocol below says whether a request is still arriving (h11's state, or
    # httptools' parser): a deadline closes only such a connection
    _reading: Callable[[], bool]

    read_timeout = READ_TIMEOUT_S
    body_timeout = BODY_TIMEOUT_S
    max_head_bytes = MAX_HEAD_BYTES
    on_refused: Callable[[], None] | None = None  # counts answers refused below the ASGI app
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    logger: Any

    def _start(self) -> None:
        self.held = 0.0
        self._shed_in_a_row = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._arm(self.read_timeout)

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _arm(self, seconds: float) -> None:
        self._stop()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        if self._reading() and not self.transport.is_closing():
            self.logger.info("closed a connection that did not send its request in time")
            self.transport.close()

    def _next_request(self) -> None:
        """After an answer: wait for the next request, after the hold if one was asked for."""
        if self.transport.is_closing():
            return
        held, self.held = self.held, 0.0
        self._shed_in_a_row = self._shed_in_a_row + 1 if held else 0
        if held:
            # doubled for each shed in a row (a client that keeps coming back while the server
            # is still full), then spread over half to one and a half times: connections shed
            # in one burst must not all come back in one burst
            held *= 2 ** min(self._shed_in_a_row - 1, MAX_DOUBLINGS)
            held *= 0.5 + random.random()  # noqa: S311 - jitter, not a secret
            self.transport.pause_reading()
            self.loop.call_later(held, self._resume)
            self._keep_alive_off()  # the read deadline below bounds a held connection
        self._arm(self.read_timeout + held)

    def _keep_alive_off(self) -> None:
        timer: asyncio.TimerHandle | None = getattr(self, "timeout_keep_alive_task", None)
        if timer is not None:
            timer.cancel()

    def _resume(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def _refused(self) -> None:
        if self.on_refused is not None:
            self.on_refused()


class LimitedH11Protocol(_Deadlines, H11Protocol):
    """h11 with the deadlines and holds; a head over the limit is answered 431, not 400."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._body_armed = False
        self._start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        token = _CONNECTION.set(self)
        try:
            super().data_received(data)
        finally:
            _CONNECTION.reset(token)
        state = self.conn.their_state
        if state is h11.SEND_BODY and not self._body_armed:
            self._body_armed = True
            self._arm(self.body_timeout)
        elif state is h11.DONE and self._deadline is not None:
            self._stop()  # the request is in: answering it has no deadline here

    def _reading(self) -> bool:
        # IDLE: the head has not arrived whole; SEND_BODY: the body has not
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._body_armed = False
        self._next_request()

    def send_400_response(self, msg: str) -> None:
        """Say 431 when the head outgrew the limit (h11 only says the request is invalid)."""
        self._refused()
        limit = self.config.h11_max_incomplete_event_size or self.max_head_bytes
        if len(self.conn.trailing_data[0]) > limit:
            self.transport.write(too_large_answer(limit))
            self.transport.close()
            return
        super().send_400_response(msg)


class LimitedHttpToolsProtocol(_Deadlines, HttpToolsProtocol):
    """httptools with the deadlines and holds, and the head capped at `max_head_bytes`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._phase = "head"  # head -> body -> answer -> head ...
        self._start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == "head":
            self._head_bytes += len(data)
        token = _CONNECTION.set(self)
        try:
            super().data_received(data)
        finally:
            _CONNECTION.reset(token)
        closing = self.transport.is_closing()  # e.g. answered 400 by the parser already
        if self._phase == "head" and self._head_bytes > self.max_head_bytes and not closing:
            # still no end of the head after this many bytes (a head that arrives whole in
            # one read is measured by BodyLimit, with the request in hand)
            self._refused()
            self.transport.write(too_large_answer(self.max_head_bytes))
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._phase = "body"
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = "answer"
        self._stop()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._phase, self._head_bytes = "head", 0
        self._next_request()

    def _reading(self) -> bool:
        return self._phase != "answer"

    def send_400_response(self, msg: str) -> None:
        self._refused()
        super().send_400_response(msg)


def limited_protocol(
    base: type[_Deadlines],
    read_timeout: float = READ_TIMEOUT_S,
    body_timeout: float = BODY_TIMEOUT_S,
    on_refused: Callable[[], None] | None = None,
) -> type[Any]:
    """The protocol class uvicorn instantiates (`http=`), with these deadlines and counter."""
    settings = {"read_timeout": read_timeout, "body_timeout": body_timeout}
    if on_refused is not None:
        settings["on_refused"] = staticmethod(on_refused)  # type: ignore[assignment]
    return type(base.__name__, (base,), settings)
