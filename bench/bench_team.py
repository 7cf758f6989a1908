"""Benchmark team mode: the pipeline against a shared `mlflow server` vs the embedded registry,
and a fresh `make install` with uv vs pip (each with a warm package cache)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

from harness import Figure, figure, run_standalone
from workflow_timing import workflow_figures

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/servers.py starts the real server

from tests.servers import mlflow_server  # noqa: E402


def environment(project: Path, tracking_uri: str | None = None) -> dict[str, str]:
    """This interpreter's tools first on PATH, telemetry off, the baked package importable."""
    tools = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(project / "src"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "DVC_NO_ANALYTICS": "1",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds one command takes; a failure stops the benchmark with its output."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


# Opening a new store creates MLflow's schema (dozens of migrations: tens of seconds on
# SQLite); a server did that when it started, so the embedded store is created untimed too.
CREATE_STORE = "from churn_model.registry import Registry; Registry().client.search_experiments()"


def pipeline(project: Path, tracking_uri: str | None) -> tuple[float, float]:
    """(whole pipeline, promote stage) seconds on an empty registry; every stage really runs."""
    env = environment(project, tracking_uri)
    shutil.rmtree(project / "registry", ignore_errors=True)
    timed([sys.executable, "-c", CREATE_STORE], project, env)
    upstream = timed(["dvc", "repro", "--force", "gate"], project, env)
    promote = timed(["dvc", "repro", "--force", "--single-item", "promote"], project, env)
    return upstream + promote, promote


def install(project: Path, installer: str) -> float:
    """A fresh `make install` as a CI job runs it: no venv, no uv on PATH (the bench's own
    environment is left out of PATH), package caches as earlier runs left them."""
    shutil.rmtree(project / ".venv", ignore_errors=True)
    tools = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != tools)
    env = {**os.environ, "PATH": path, "PYTHON": shutil.which("python3", path=path) or "python3"}
    return timed(["make", "install", f"INSTALLER={installer}"], project, env)


def run(workdir: Path) -> list[Figure]:
    """Bake with defaults; time the pipeline on both registries, then both installers."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(workdir)))
    embedded, promote_embedded = pipeline(project, None)
    with mlflow_server(workdir / "server") as uri:
        served, promote_served = pipeline(project, uri)
    install(project, "uv")  # warm uv's cache as a cached CI run would have it
    uv = install(project, "uv")
    pip = install(project, "pip")
    note = "dvc repro --force (validate -> train -> evaluate -> gate -> promote), empty registry"
    figures = [
        figure(
            "pipeline, shared mlflow server",
            served,
            "s",
            f"{note}; baseline: the embedded SQLite registry (ratio < 1: the server is slower)",
            embedded,
            ratio=embedded / served,
        ),
        figure(
            "promote stage, shared mlflow server",
            promote_served,
            "s",
            "register + artifacts over HTTP + alias claim; baseline: embedded registry",
            promote_embedded,
            ratio=promote_embedded / promote_served,
        ),
        figure(
            "fresh make install with uv",
            uv,
            "s",
            "new venv, requirements/dev.txt + the package, uv cache warm; baseline: "
            "INSTALLER=pip (pip reads this machine's local wheel index)",
            pip,
            ratio=pip / uv,
        ),
    ]
    return figures + workflow_figures(workdir / "workflow")


if __name__ == "__main__":
    sys.exit(run_standalone(run))
