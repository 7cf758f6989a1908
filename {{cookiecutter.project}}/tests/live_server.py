"""A real uvicorn server on a free loopback port (in a thread), and raw HTTP exchanges with it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import uvicorn


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """Run `config` (a uvicorn.Config) until the block ends; `port` is where it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.server = uvicorn.Server(config)
        self.port = config.port
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def request_bytes(
    body: bytes,
    content_type: str | None = "application/json",
    path: str = "/predict",
    extra: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A complete HTTP/1.1 POST that asks the server to close the connection afterwards."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if content_type is not None:
        head.append(f"Content-Type: {content_type}")
    head += [f"{name}: {value}" for name, value in extra]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def exchange(port: int, raw: bytes, timeout: float = 20.0) -> tuple[int | None, bytes]:
    """Send `raw`, read until the server closes; (status, body), status None when it just hung up."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # refused before it read everything: the answer may still be waiting
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    data = b"".join(chunks)
    if not data.startswith(b"HTTP/1.1 "):
        return None, data
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def held_for(port: int, first: bytes, trickle: bytes = b"", limit: float = 30.0) -> float:
    """Seconds the server keeps a connection that sends `first`, then a byte of `trickle` a second."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        try:
            sock.sendall(first)
            for byte in trickle:
                sock.settimeout(1.0)
                try:
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        break  # closed by the server
                except TimeoutError:
                    pass
                sock.sendall(bytes([byte]))
                if time.monotonic() - start > limit:
                    break
            sock.settimeout(max(0.1, limit - (time.monotonic() - start)))
            while sock.recv(65536):
                pass
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
    return time.monotonic() - start


def status_counts(statuses: Iterable[int | None]) -> dict[str, Any]:
    """How many answers fell in each class: 2xx, 4xx, 5xx, or closed without an answer."""
    counts = {"2xx": 0, "4xx": 0, "5xx": 0, "closed": 0}
    for status in statuses:
        key = "closed" if status is None else f"{status // 100}xx"
        counts[key] = counts.get(key, 0) + 1
    return counts
