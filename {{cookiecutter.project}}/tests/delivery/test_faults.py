"""Faults during a local rollout, with real processes on loopback: each ends with stable serving.

In every case the rollback (or refusal) happens, the stable version keeps answering, and no
request sent after the switch gets an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from {{ cookiecutter.package }}.config import parse_rollout
from {{ cookiecutter.package }}.deploy import procs
from {{ cookiecutter.package }}.errors import RefusedError
from {{ cookiecutter.package }}.registry import Registry
from {{ cookiecutter.package }}.rollout.controller import Controller
from tests.delivery.conftest import MODEL_NAME, ROLLOUT, write_params

# MLflow's SQLite store warns about SQLAlchemy deprecations it has not caught up with yet
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def rolled_back(deployment, result, why: str) -> dict[str, Any]:
    """Common end state of a failed rollout: v1 serves, canary gone, champion back on v1."""
    assert result.returncode == RefusedError.exit_code, result.stdout + result.stderr
    assert "rolled back" in result.stdout + result.stderr
    events = deployment.events("rolled_back")
    assert events, deployment.events()
    assert why in events[-1]["reason"]
    state = deployment.state()
    assert state["phase"] == "idle"
    assert "canary" not in state["servers"]
    assert deployment.champion() == "1"
    assert set(deployment.answers()) == {(200, "1")}
    return events[-1]


def switched_at(deployment) -> float:
    return deployment.events("rollback")[-1]["switched_at"]


def test_a_canary_answering_5xx_is_rolled_back(deployment):
    write_params(deployment.root)
    process = deployment.start("canary", "--fault", "errors=0.5")
    client = deployment.client()
    output, _ = process.communicate(timeout=180)
    result = type("R", (), {"returncode": process.returncode, "stdout": output, "stderr": ""})
    rolled_back(deployment, result, "error")
    failed = [e for e in deployment.events("analysis") if e["verdict"] == "fail"][-1]
    assert failed["evidence"]["canary"]["errors"] > 0
    assert client.errors_after(switched_at(deployment)) == []


def test_a_slow_canary_is_rolled_back_during_shadow(deployment):
    write_params(deployment.root, shadow={**ROLLOUT["shadow"], "enabled": True})
    result = deployment.run("canary", "--bad", "slow")
    event = rolled_back(deployment, result, "shadow at 0%")
    # timed-out shadow copies are slow, not errors: the operator reads why
    assert "slow: shadow copies over 300 ms" in event["reason"], event["reason"]
    assert "error_rate" not in event["reason"]
    weights = [e["weight"] for e in deployment.events("step")]
    assert weights == [0]  # the slow model never got live traffic


def test_a_canary_that_crashes_mid_rollout_is_rolled_back(deployment):
    write_params(deployment.root)
    process = deployment.start("canary", "--fault", "crash,after=30")
    client = deployment.client()
    output, _ = process.communicate(timeout=180)
    result = type("R", (), {"returncode": process.returncode, "stdout": output, "stderr": ""})
    rolled_back(deployment, result, "exited")
    # the router retried the crashed canary's requests on stable: no client saw an error
    assert client.errors_after(0.0) == []


def test_a_canary_that_never_becomes_ready_is_refused(deployment):
    """The deploy waits `ready_timeout_s` for the canary, then refuses it. The wait is shortened
    only while stable already serves: a stable that must start again first gets the default
    (on a loaded machine a model server can take longer than 20 s to load)."""
    write_params(deployment.root)
    stable = deployment.state().get("servers", {}).get("stable")
    if stable is not None and procs.alive(stable):
        params = deployment.root / "params.yaml"
        params.write_text(params.read_text().replace("ready_timeout_s: 30", "ready_timeout_s: 20"))
    result = deployment.run("canary", "--bad", "never_ready")
    rolled_back(deployment, result, "never became ready")
    assert deployment.events("step") == []


def test_not_enough_traffic_applies_the_inconclusive_policy(deployment):
    """No traffic: the step waits max_wait_s for its requests, then the policy rolls back."""
    write_params(deployment.root, analysis={**ROLLOUT["analysis"], "max_wait_s": 2})
    result = deployment.run("canary", "--no-loadgen")
    event = rolled_back(deployment, result, "inconclusive after")
    assert "policy rollback" in event["reason"]
    assert any(e["phase"] == "step 1/3" for e in deployment.events("waiting"))


def test_a_tampered_model_file_is_refused(deployment):
    registry = Registry(MODEL_NAME, root=deployment.root / "registry")
    source = registry.model_path("2")
    copy = deployment.root / "models" / "tampered.skops"
    shutil.copyfile(source, copy)
    third = registry.register(copy, dict(registry.get_version("2").tags))
    path = registry.model_path(third.version)
    path.write_bytes(path.read_bytes() + b"\0")
    assert registry.move_alias("champion", third.version, "2")
    write_params(deployment.root)
    result = deployment.run("canary")
    assert result.returncode == RefusedError.exit_code
    assert "does not match the recorded" in result.stdout + result.stderr
    assert deployment.champion() == "1"
    assert set(deployment.answers()) == {(200, "1")}


def test_two_deploys_at_once_are_refused(deployment):
    write_params(
        deployment.root, steps=[{"weight": 10, "pause_s": 3}, {"weight": 100, "pause_s": 0}]
    )
    first = deployment.start("canary")
    holder = deployment.root / ".deploy" / "lock-holder.json"
    deployment.wait_for(
        lambda: holder.is_file() and json.loads(holder.read_text())["pid"] == first.pid
    )
    second = deployment.run("canary")
    assert second.returncode == RefusedError.exit_code
    assert "another deploy is running" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert deployment.run("rollback").returncode == RefusedError.exit_code
    output, _ = first.communicate(timeout=180)
    assert first.returncode == 0, output
    assert set(deployment.answers()) == {(200, "2")}


def test_a_killed_controller_is_recovered_by_the_next_command(deployment):
    write_params(
        deployment.root, steps=[{"weight": 50, "pause_s": 30}, {"weight": 100, "pause_s": 0}]
    )
    controller = deployment.start("canary")
    deployment.wait_for(lambda: deployment.weights().get("canary", 0) == 50, timeout=150)
    client = deployment.client()
    canary = deployment.state()["servers"]["canary"]
    os.killpg(controller.pid, signal.SIGKILL)
    controller.communicate(timeout=10)
    assert "interrupted" in deployment.run("status").stdout
    result = deployment.run("rollback")
    assert result.returncode == 0, result.stderr
    assert deployment.weights() == {"stable": 100}
    assert not procs.alive(canary)
    assert deployment.champion() == "1"
    moment = deployment.events("rolled_back")[-1]["time"]
    assert set(deployment.answers()) == {(200, "1")}
    assert client.errors_after(moment) == []


def test_a_rollback_killed_midway_converges_when_run_again(deployment):
    write_params(
        deployment.root, steps=[{"weight": 50, "pause_s": 1}, {"weight": 100, "pause_s": 0}]
    )
    assert deployment.run("canary").returncode == 0
    assert deployment.state()["servers"]["previous"]["version"] == "1"
    newer = deployment.state()["servers"]["stable"]
    killed = deployment.run("rollback", env={"DEPLOY_CRASH_AT": "rollback:switched"})
    assert killed.returncode == 9
    assert deployment.state()["phase"] == "rolling_back"
    assert set(deployment.answers()) == {(200, "1")}  # traffic had switched before the kill
    again = deployment.run("rollback")
    assert again.returncode == 0, again.stderr
    state = deployment.state()
    assert state["phase"] == "idle"
    assert state["servers"]["stable"]["version"] == "1"
    # the version rolled back from is N-1 now, kept warm for a rollback of the rollback
    assert state["servers"]["previous"]["pid"] == newer["pid"]
    assert procs.alive(newer)
    assert deployment.champion() == "1"


class _Stats(BaseHTTPRequestHandler):
    """A router stand-in: takes configs, answers stats with `mode`."""

    mode = "down"
    configs: ClassVar[list[dict[str, Any]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.configs.append(json.loads(body))
        self._answer(200, body)

    def do_GET(self) -> None:
        if self.mode == "down":
            self._answer(503, b'{"detail": "unavailable"}')
        else:
            self._answer(200, b'{"variants": {}, "shadow": null}')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.mark.parametrize("mode", ["down", "empty"])
def test_missing_or_empty_metrics_never_promote(mode):
    handler = type("Handler", (_Stats,), {"mode": mode, "configs": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        spec = parse_rollout(
            {
                **ROLLOUT,
                "steps": [{"weight": 10, "pause_s": 0.2}, {"weight": 100, "pause_s": 0}],
                "analysis": {"interval_s": 0.05, "min_requests": 20, "max_wait_s": 0.2},
                "inconclusive": {"policy": "promote"},
            }
        )
        base = {
            "upstreams": {
                "stable": {"url": "http://127.0.0.1:9", "version": "1"},
                "canary": {"url": "http://127.0.0.1:9", "version": "2"},
            },
            "weights": {"stable": 100, "canary": 0},
        }
        events: list[dict[str, Any]] = []
        url = f"http://127.0.0.1:{server.server_address[1]}"
        controller = Controller(
            spec, url, base, {"stable": "1", "canary": "2"}, lambda: True, events.append
        )
        outcome = asyncio.run(controller.run())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert not outcome.promoted
    assert "no metrics" in outcome.reason
    assert handler.configs[-1]["weights"]["canary"] == 0
    assert all(c["weights"]["canary"] < 100 for c in handler.configs)
