"""Keep-alive HTTP/1.1 POSTs to a model server on loopback, parsed by httptools.

The router's hop is what every canary request pays, so it does not go through a general
HTTP client: a small pool of asyncio connections per upstream writes one request and lets
httptools (uvicorn's parser) read the answer. A connection the server closed while idle is
found out before any answer byte arrives, and the request is sent again on a fresh one.
"""

from __future__ import annotations

import asyncio

import httptools


class UpstreamError(ConnectionError):
    """The upstream could not be reached, or closed the connection mid-answer."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.chunks: list[bytes] = []
        self.request_id = b""  # the answer's X-Request-ID, handed back to the caller
        self.started = False  # any byte of the current answer arrived
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.started = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(UpstreamError(f"bad answer from upstream: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(UpstreamError("upstream closed the connection"))

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-request-id":
            self.request_id = value

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.answer is not None and not self.answer.done():
            keep = self.parser.should_keep_alive()
            self.answer.set_result((self.parser.get_status_code(), b"".join(self.chunks), keep))

    def _fail(self, error: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(error)

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes, bool]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.chunks, self.started, self.request_id = [], False, b""
        self.parser = httptools.HttpResponseParser(self)
        length = b"content-length: " + str(len(body)).encode()
        self.transport.write(head + length + b"\r\n\r\n" + body)
        return await self.answer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Idle keep-alive connections to one `host:port`; `post` borrows one per request.

    A connection that carried a 503 is closed, not kept: the server holds a connection whose
    request it shed until its Retry-After, and the next request should not wait for that.
    """

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.head = ("\r\n".join(lines) + "\r\n").encode()
        self.idle: list[_Connection] = []

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as error:
            raise UpstreamError(f"{self.host}:{self.port}: {error}") from None
        return connection

    async def post(
        self, body: bytes, timeout_s: float, headers: bytes = b""
    ) -> tuple[int, bytes, bytes]:
        """Status, body and X-Request-ID of one POST; UpstreamError or TimeoutError if it fails.

        `headers` are the caller's to pass on, as `name: value` lines each ending in CRLF.
        """
        head = self.head + headers
        while self.idle:
            connection = self.idle.pop()
            if connection.closed:
                continue
            try:
                return await self._send(connection, head, body, timeout_s)
            except UpstreamError:
                if connection.started:
                    raise  # the server saw the request and failed mid-answer
                # closed while idle, before any answer: send again on a fresh connection
        return await self._send(await self._open(), head, body, timeout_s)

    async def _send(
        self, connection: _Connection, head: bytes, body: bytes, timeout_s: float
    ) -> tuple[int, bytes, bytes]:
        try:
            status, answer, keep = await asyncio.wait_for(connection.post(head, body), timeout_s)
        except BaseException:
            connection.close()
            raise
        if keep and status != 503 and not connection.closed:
            self.idle.append(connection)
        else:
            connection.close()
        return status, answer, connection.request_id

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
