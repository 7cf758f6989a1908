"""The real entry point (`python -m <package> serve --bundle`) in its own process, over HTTP:
the limits hold there too, slow clients take no slot, a retry storm is shed with Retry-After,
every answer is counted, and a client that hangs up costs one log line, not a traceback."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live_server import exchange, held_for, request_bytes
from tests.served import SlowClients, metric, row_body, serving
from tests.tiny_contract import TINY_ROW

REQUESTS = "model_requests_total"
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[int, Any]]:
    """The server process on a free port; stopped by its pid at the end."""
    with serving(tmp_path_factory.mktemp("serve")) as served:
        yield served.port, served.log


def test_the_served_process_refuses_hostile_requests(server):
    """Limits set by `serve` itself: head size, nesting, media type, encoding, required id."""
    port, _ = server
    row = json.dumps(TINY_ROW).encode()
    no_id = json.dumps({k: v for k, v in TINY_ROW.items() if k != "account"}).encode()
    cases = {
        "8 MB header": (request_bytes(row, extra=[("X-Big", "a" * 8_000_000)]), 431),
        "nested 100k": (request_bytes(b"[" * 100_000 + b"]" * 100_000), 422),
        "text/plain": (request_bytes(row, "text/plain"), 415),
        "UTF-16": (request_bytes(row.decode().encode("utf-16")), 400),
        "no id": (request_bytes(no_id), 422),
        "good": (request_bytes(row), 200),
    }
    got = {name: exchange(port, raw)[0] for name, (raw, _) in cases.items()}
    assert got == {name: status for name, (_, status) in cases.items()}


def test_every_refusal_is_counted(server):
    """431 (a head that outgrew the limit while arriving), 405 and a malformed request line
    are answered below the route, and each is in model_requests_total as rejected."""
    port, _ = server
    before = metric(port, REQUESTS, 'outcome="rejected"')
    answers = [
        exchange(port, request_bytes(row_body(), extra=[("X-Big", "a" * 8_000_000)]))[0],
        exchange(port, b"GET /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0],
        exchange(port, b"NOT HTTP AT ALL\r\n\r\n")[0],
    ]
    assert answers == [431, 405, 400]
    assert metric(port, REQUESTS, 'outcome="rejected"') - before == 3


def test_the_role_header_is_taken_only_when_it_names_a_role(server):
    """The router names the role it routed to; any other value is not echoed or logged."""
    port, log = server
    hostile = "attacker-chosen-text"
    answers = {}
    for value in (hostile, "canary"):
        account = "role-canary" if value == "canary" else "role-other"
        raw = request_bytes(row_body(account=account), extra=[("X-Route-Variant", value)])
        status, body = exchange(port, raw)
        assert status == 200
        answers[value] = json.loads(body)["variant"]
    assert answers == {hostile: "stable", "canary": "canary"}
    deadline = time.monotonic() + 10
    while "role-canary" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "role-canary" in log.read_text()
    assert hostile not in log.read_text()


def test_a_hang_up_is_one_log_line(server):
    """A client that leaves mid-body: one warning line in the server log, no traceback."""
    port, log = server
    raw = request_bytes(json.dumps(TINY_ROW).encode())
    held_for(port, raw[:-10], limit=0.3)
    deadline = time.monotonic() + 5
    while "disconnected" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = log.read_text()
    assert len([line for line in text.splitlines() if "disconnected" in line]) == 1, text
    assert "Traceback" not in text


def test_slow_bodies_take_no_slot_and_are_let_go(tmp_path):
    """100 connections each holding one body byte (more than the 64 slots): every valid
    request is still answered 200, none is shed, and the server closes every slow one."""
    with serving(tmp_path) as served, SlowClients(served.port, 100) as slow:
        statuses = [exchange(served.port, request_bytes(row_body()))[0] for _ in range(20)]
        assert statuses == [200] * 20
        assert metric(served.port, REQUESTS, 'outcome="error"') == 0  # no 503, no 500
        deadline = time.monotonic() + 60  # a bound for the test, not the behaviour checked
        while slow.closed_by_server < 100 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert slow.closed_by_server >= 100  # the body deadline let every one of them go


async def _storm(port: int, connections: int, wanted: int) -> dict[str, Any]:
    """`connections` keep-alive clients that each want `wanted` answers and resend a 503 at once."""
    body = json.dumps({"rows": [{**TINY_ROW, "account": f"A{i}"} for i in range(100)]}).encode()
    head = (
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    seen: dict[str, Any] = {"200": 0, "503": 0, "other": [], "retry_after": set(), "rows": set()}

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        got = 0
        while got < wanted:
            writer.write(head + body)
            status = (await reader.readline()).split(b" ")[1].decode()
            headers = {}
            while (line := await reader.readline()) != b"\r\n":
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            answer = await reader.readexactly(int(headers["content-length"]))
            if status == "200":
                got += 1
                seen["200"] += 1
                seen["rows"].add(len(json.loads(answer)["predictions"]))
            elif status == "503":
                seen["503"] += 1
                seen["retry_after"].add(headers.get("retry-after"))
            else:
                seen["other"].append(status)
        writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return seen


def test_a_retry_storm_is_shed_with_retry_after_and_health_answers(tmp_path):
    """Clients that resend at once, beyond the admission bound: the excess gets 503 with
    Retry-After, the admitted ones their answers, /healthz answers on fresh connections all
    along, and the counters match what the clients saw."""
    with serving(tmp_path, "--max-inflight", "2") as served:
        port = served.port
        result: dict[str, Any] = {}
        storm = threading.Thread(target=lambda: result.update(asyncio.run(_storm(port, 30, 4))))
        storm.start()
        health = []
        while storm.is_alive():
            health.append(exchange(port, HEALTHZ)[0])
            time.sleep(0.05)
        storm.join()
        counted = {
            "ok": metric(port, REQUESTS, 'outcome="ok"'),
            "error": metric(port, REQUESTS, 'outcome="error"'),
        }
    assert result["200"] == 30 * 4
    assert result["rows"] == {100}
    assert result["503"] > 0
    assert result["retry_after"] == {"1"}
    assert result["other"] == []
    assert health
    assert set(health) == {200}
    assert counted == {"ok": result["200"], "error": result["503"]}
