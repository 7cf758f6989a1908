"""Real server and router processes on free loopback ports, and the clients that attack them.

`serving` starts `python -m <package> serve --bundle` on the tiny model; `routing` starts the
router in front of it; both stop their process (by pid) when the block ends. `SlowClients`
holds connections that send their head and one byte of body, as the audit's attacker did.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package }}.model_io import environment, save_model
from tests.conftest import ROOT
from tests.live_server import exchange, free_port
from tests.tiny_contract import CONTRACT, TINY_ROW, tiny_contract, tiny_predictor

PACKAGE = "{{ cookiecutter.package }}"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Served:
    """A process listening on `port`; its output goes to `log`."""

    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def write_bundle(folder: Path) -> None:
    """A one-version bundle of the tiny model, tagged like a registered version."""
    folder.mkdir(parents=True)
    sha256 = save_model(tiny_predictor().model, folder / "model.skops")
    tags = {**environment(), "contract_fingerprint": tiny_contract().fingerprint}
    meta = {"model_name": "tiny", "version": "1", "sha256": sha256, "tags": tags}
    (folder / "model.json").write_text(json.dumps({**meta, "model_file": "model.skops"}))


@contextlib.contextmanager
def _process(command: list[str], root: Path, port: int, ready: bytes) -> Iterator[Served]:
    log = root / f"process-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if exchange(port, ready, timeout=2)[0] == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{command[2:4]} did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield Served(port, log, process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@contextlib.contextmanager
def serving(root: Path, *args: str) -> Iterator[Served]:
    """The model server process on the tiny model's bundle in `root`, with `args` added."""
    if not (root / "bundle").is_dir():
        write_bundle(root / "bundle")
        (root / "contract.yaml").write_text(yaml.safe_dump(CONTRACT))
    port = free_port()
    command = [sys.executable, "-m", PACKAGE, "serve", "--bundle", "bundle"]
    command += ["--contract", "contract.yaml", "--params", "none.yaml", "--prediction-log", "-"]
    command += ["--host", "127.0.0.1", "--port", str(port), *args]
    ready = b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with _process(command, root, port, ready) as served:
        yield served


@contextlib.contextmanager
def routing(root: Path, upstream: Served) -> Iterator[Served]:
    """The router process sending all traffic to `upstream` as stable."""
    port = free_port()
    config = {
        "upstreams": {"stable": {"url": upstream.url, "version": "1"}},
        "weights": {"stable": 100},
    }
    path = root / f"router-{port}.json"
    path.write_text(json.dumps(config))
    command = [sys.executable, "-m", f"{PACKAGE}.rollout.router", "--config", str(path)]
    command += ["--port", str(port), "--admin-port", str(free_port())]
    ready = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with _process(command, root, port, ready) as served:
        yield served


def row_body(**changes: object) -> bytes:
    return json.dumps({**TINY_ROW, **changes}).encode()


class SlowClients:
    """`count` connections that each send a request head and one byte of its body, then wait.

    A connection the server closes is counted and opened again, until `stop`: the attack
    holds `count` connections for as long as it runs.
    """

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.closed_by_server = 0
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowClients:
        self._thread.start()
        deadline = time.monotonic() + 30
        while self.opened < self.count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _open(self, selector: selectors.BaseSelector) -> None:
        body = row_body()
        head = (
            f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(head + body[:1])
        except OSError:
            return  # the server is gone (a rollout ended): nothing left to attack
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        self.opened += 1

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            for _ in range(self.count):
                self._open(selector)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    with contextlib.suppress(OSError):
                        sock.recv(65536)  # an answer or the end: either way, it was let go
                    selector.unregister(sock)
                    sock.close()
                    self.closed_by_server += 1
                    if not self._stop.is_set():
                        self._open(selector)
            for key in list(selector.get_map().values()):
                selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]


def metric(port: int, name: str, having: str = "") -> float:
    """The sum of the series of `name` whose labels include `having`, from /metrics."""
    _, body = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith((name + "{", name + " ")) and having in line
    )
