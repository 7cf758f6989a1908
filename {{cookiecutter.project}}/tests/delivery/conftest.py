"""A small trained project in a temp directory, deploy commands as real processes, and a client."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

import {{ cookiecutter.package }} as package
from {{ cookiecutter.package }}.artifacts import write_parquet
from {{ cookiecutter.package }}.config import load_config
from {{ cookiecutter.package }}.contract import load_contract
from {{ cookiecutter.package }}.data import conform, features_and_target, load_table
from {{ cookiecutter.package }}.deploy import procs
from {{ cookiecutter.package }}.model import build_pipeline
from {{ cookiecutter.package }}.model_io import environment, save_model
from {{ cookiecutter.package }}.registry import Registry
from {{ cookiecutter.package }}.rollout.loadgen import holdout_rows
from {{ cookiecutter.package }}.sample_data import generate

PROJECT = Path(__file__).resolve().parents[2]
SRC = Path(package.__file__).resolve().parents[1]
MODEL_NAME = "delivery"
ROLLOUT: dict[str, Any] = {
    "shadow": {"enabled": False, "duration_s": 2, "sample": 1.0, "queue": 64, "timeout_ms": 300},
    "steps": [
        {"weight": 10, "pause_s": 2},
        {"weight": 50, "pause_s": 2},
        {"weight": 100, "pause_s": 0},
    ],
    "analysis": {"interval_s": 0.5, "min_requests": 20, "max_wait_s": 20},
    "guardrails": {"max_error_rate": 0.05, "max_p99_ms": 250},
    "inconclusive": {"policy": "rollback"},
    "loadgen": {"enabled": True, "rps": 80, "concurrency": 4},
}
SERVE = {"router_port": 0, "staging_port": 0, "ready_timeout_s": 30}


def train(root: Path, rows: int, seed: int) -> Path:
    """Train a small pipeline on generated rows; write the model and the holdout."""
    contract = load_contract(root / "contract.yaml")
    raw = generate(root / "contract.yaml", root / "data" / f"raw-{seed}.csv", rows, seed)
    table = conform(load_table(raw), contract)
    x, y = features_and_target(table, contract)
    # the project's own estimator (model.py, params.yaml: model): delivery is tested with it
    settings = load_config(PROJECT / "params.yaml").model
    model = build_pipeline(contract, settings.kind, settings.hyperparameters(), seed).fit(x, y)
    write_parquet(root / "data" / "holdout.parquet", table.tail(300))
    path = root / "models" / f"model-{seed}.skops"
    save_model(model, path)
    return path


@pytest.fixture(scope="session")
def base_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Contract, params, holdout, and a registry with v1 (`previous`) and v2 (`champion`)."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    root = tmp_path_factory.mktemp("delivery")
    shutil.copy(PROJECT / "contract.yaml", root / "contract.yaml")
    contract = load_contract(root / "contract.yaml")
    tags = {**environment(), "contract_fingerprint": contract.fingerprint}
    registry = Registry(MODEL_NAME, root=root / "registry")
    first = registry.register(train(root, 1500, 1), tags)
    second = registry.register(train(root, 1500, 2), tags)
    assert registry.move_alias("previous", first.version, None)
    assert registry.move_alias("champion", second.version, None)
    write_params(root)
    return root


def write_params(root: Path, **rollout: Any) -> None:
    """The project's params.yaml with the fast rollout spec (keys replaced by `rollout`) and serve."""
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    params |= {"rollout": {**ROLLOUT, **rollout}, "serve": {**params["serve"], **SERVE}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _get(url: str, path: str) -> tuple[int, Any]:
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


class Traffic:
    """A client in a thread: POSTs holdout rows to the router, records when and what came back."""

    def __init__(self, url: str, rows: list[dict[str, Any]], rps: float = 40) -> None:
        self.url = urlparse(url)
        self.bodies = [json.dumps(r).encode() for r in rows]
        self.period = 1.0 / rps
        self.records: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=10)
        i = 0
        while not self._stop.is_set():
            sent = time.time()
            try:
                connection.request(
                    "POST",
                    "/predict",
                    self.bodies[i % len(self.bodies)],
                    {"content-type": "application/json"},
                )
                response = connection.getresponse()
                data = response.read()
                answered = (
                    json.loads(data).get("model_version", "") if response.status == 200 else ""
                )
                self.records.append((sent, response.status, str(answered)))
            except (OSError, http.client.HTTPException):
                self.records.append((sent, 0, ""))
                connection.close()
                connection = http.client.HTTPConnection(
                    self.url.hostname, self.url.port, timeout=10
                )
            i += 1
            self._stop.wait(self.period)
        connection.close()

    def stop(self) -> list[tuple[float, int, str]]:
        """Stop and return (sent at, status, model version) per request."""
        self._stop.set()
        self._thread.join(timeout=15)
        return self.records

    def errors_after(self, moment: float) -> list[tuple[float, int, str]]:
        """Requests sent after `moment` that did not get a 200."""
        return [r for r in self.records if r[0] > moment and r[1] != 200]


class Deployment:
    """Run `deploy` commands in a project directory; clean up every process at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("MLFLOW_TRACKING_URI", "DEPLOY_CRASH_AT")
        }
        self.env.update(PYTHONPATH=str(SRC), MLFLOW_DISABLE_TELEMETRY="true", PYTHONUNBUFFERED="1")
        self.background: list[subprocess.Popen[str]] = []
        self.traffic: list[Traffic] = []
        self.seen: dict[int, dict[str, Any]] = {}

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            f"{package.__name__}.deploy.local",
            "--model-name",
            MODEL_NAME,
            *args,
        ]

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """Run one deploy command to its end."""
        result = subprocess.run(
            self.command(*args),
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self._remember()
        return result

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start a deploy command in the background (its own process group)."""
        process = subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.background.append(process)
        return process

    def state(self) -> dict[str, Any]:
        path = self.root / ".deploy" / "state.json"
        state = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return state

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        path = self.root / ".deploy" / "events.jsonl"
        if not path.is_file():
            return []
        events = [
            json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line
        ]
        return [e for e in events if kind is None or e.get("event") == kind]

    def wait_for(self, predicate: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._remember()
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting; state: {self.state()}")

    def router_url(self) -> str:
        self.wait_for(lambda: bool((self.state().get("router") or {}).get("url")))
        url = self.state()["router"]["url"]
        self.wait_for(lambda: _ok(url, "/healthz"))
        return url

    def weights(self) -> dict[str, int]:
        """The router's weights, read from its loopback admin port."""
        self.router_url()
        return _get(self.state()["router"]["admin_url"], "/admin/config")[1]["weights"]

    def client(self) -> Traffic:
        contract = load_contract(self.root / "contract.yaml")
        traffic = Traffic(
            self.router_url(), holdout_rows(self.root / "data" / "holdout.parquet", contract, 200)
        )
        self.traffic.append(traffic)
        return traffic

    def champion(self) -> str:
        ref = Registry(MODEL_NAME, root=self.root / "registry").get_alias("champion")
        return ref.version if ref else ""

    def answers(self, count: int = 20) -> list[tuple[int, str]]:
        """Status and model version of `count` fresh requests through the router."""
        traffic = Traffic(
            self.router_url(),
            holdout_rows(
                self.root / "data" / "holdout.parquet",
                load_contract(self.root / "contract.yaml"),
                50,
            ),
            rps=200,
        )
        deadline = time.monotonic() + 10
        while len(traffic.records) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [(status, answered) for _, status, answered in traffic.stop()]

    def _remember(self) -> None:
        state = self.state()
        records = [*state.get("servers", {}).values(), state.get("router"), state.get("staging")]
        self.seen.update({int(r["pid"]): r for r in records if r})

    def cleanup(self) -> None:
        """Stop clients and background commands, undeploy, and kill any survivor by pid."""
        for traffic in self.traffic:
            traffic.stop()
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=10)
        self._remember()
        self.run("undeploy", timeout=60)
        for record in self.seen.values():
            procs.kill_now(record)  # only if it is still the process we started
        kill_processes_in(self.root)


def kill_processes_in(root: Path) -> None:
    """Last resort: SIGKILL every process working in `root`, this test's own copy.

    A deploy command killed by a timeout can leave a server it had started but not yet
    recorded; its working directory still says whose it is.
    """
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = (entry / "cwd").resolve(strict=True)
        except OSError:
            continue
        if cwd == root.resolve() or root.resolve() in cwd.parents:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def _ok(url: str, path: str) -> bool:
    try:
        return _get(url, path)[0] == 200
    except OSError:
        return False


@pytest.fixture
def deployment(base_project: Path, tmp_path: Path):
    """A fresh copy of the base project; everything it starts is stopped afterwards."""
    root = tmp_path / "project"
    shutil.copytree(base_project, root)
    deployment = Deployment(root)
    yield deployment
    deployment.cleanup()
