"""The real entry point (`python -m <package> serve --bundle`) in its own process, over HTTP:
the limits hold there too, and a client that hangs up costs one log line, not a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package }}.model_io import environment, save_model
from tests.conftest import ROOT
from tests.live_server import exchange, free_port, held_for, request_bytes
from tests.tiny_contract import CONTRACT, TINY_ROW, tiny_contract, tiny_predictor

PACKAGE = "{{ cookiecutter.package }}"


def write_bundle(folder: Path) -> None:
    """A one-version bundle of the tiny model, tagged like a registered version."""
    folder.mkdir(parents=True)
    sha256 = save_model(tiny_predictor().model, folder / "model.skops")
    tags = {**environment(), "contract_fingerprint": tiny_contract().fingerprint}
    meta = {"model_name": "tiny", "version": "1", "sha256": sha256, "tags": tags}
    (folder / "model.json").write_text(json.dumps({**meta, "model_file": "model.skops"}))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    """The server process on a free port; stopped by its pid at the end."""
    root = tmp_path_factory.mktemp("serve")
    write_bundle(root / "bundle")
    (root / "contract.yaml").write_text(yaml.safe_dump(CONTRACT))
    port = free_port()
    log = root / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", PACKAGE, "serve", "--bundle", "bundle"]
    command += ["--contract", "contract.yaml", "--params", "none.yaml"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        ready = b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        while True:
            try:
                if exchange(port, ready, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield port, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


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
