"""Small blocking HTTP helpers for talking to local servers and the router's admin API."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from ..errors import ServiceError


class AdminError(ServiceError):
    """A local server did not answer as expected."""


def request_json(method: str, url: str, body: Any = None, timeout: float = 2.0) -> tuple[int, Any]:
    """Send one request (JSON body if given); return status and decoded JSON (or None)."""
    parsed = urlparse(url)
    if parsed.hostname is None:
        raise AdminError(f"{method} {url}: no host in the URL")
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if payload is not None else {}
        connection.request(method, parsed.path or "/", body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as error:
        raise AdminError(f"{method} {url}: {error}") from None
    finally:
        connection.close()
    try:
        return response.status, json.loads(data) if data else None
    except ValueError:
        return response.status, None


def get_json(url: str, timeout: float = 2.0) -> Any:
    """GET a JSON document; AdminError unless the answer is 200."""
    status, data = request_json("GET", url, timeout=timeout)
    if status != 200:
        raise AdminError(f"GET {url}: HTTP {status}")
    return data


def put_json(url: str, obj: Any, timeout: float = 2.0) -> Any:
    """PUT a JSON document; AdminError unless the answer is 200."""
    status, data = request_json("PUT", url, obj, timeout=timeout)
    if status != 200:
        raise AdminError(f"PUT {url}: HTTP {status}: {data}")
    return data


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_ready(
    url: str, timeout_s: float, alive: Callable[[], bool] = lambda: True, path: str = "/readyz"
) -> float:
    """Poll `path` until it answers 200; return seconds waited. AdminError on timeout or exit."""
    start = time.monotonic()
    while True:
        try:
            status, _ = request_json("GET", url.rstrip("/") + path, timeout=1.0)
            if status == 200:
                return time.monotonic() - start
        except AdminError:
            pass
        if not alive():
            raise AdminError(f"{url}: the process exited before it was ready")
        if time.monotonic() - start > timeout_s:
            raise AdminError(f"{url}: not ready after {timeout_s:.0f} s")
        time.sleep(0.05)
