"""Benchmark team mode: the pipeline against a shared `mlflow server` vs the embedded registry,
a fresh `make install` with uv vs pip (each with a warm package cache), and the whole
generated workflow run job by job. `--smoke` measures the two registries only: installs and
workflow runs take minutes whatever the size (tests/test_team_workflow.py runs the same jobs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import ROOT, Baked, Figure, bake, figure, run_standalone
from workflow_timing import workflow_figures

sys.path.insert(0, str(ROOT))  # tests/servers.py starts the real server

from tests.servers import mlflow_server


def environment(project: Baked, tracking_uri: str | None = None) -> dict[str, str]:
    """The project's environment, with the shared registry's URI when there is one."""
    return project.env(MLFLOW_TRACKING_URI=tracking_uri) if tracking_uri else project.env()


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds one command takes; a failure stops the benchmark with its output."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


# Opening a new store creates MLflow's schema (dozens of migrations: tens of seconds on
# SQLite); a server did that when it started, so the embedded store is created untimed too.
CREATE_STORE = "from {package}.registry import Registry; Registry().client.search_experiments()"


def pipeline(project: Baked, tracking_uri: str | None) -> tuple[float, float]:
    """(whole pipeline, promote stage) seconds on an empty registry; every stage really runs."""
    env = environment(project, tracking_uri)
    root = project.root
    shutil.rmtree(root / "registry", ignore_errors=True)
    timed([sys.executable, "-c", CREATE_STORE.format(package=project.package)], root, env)
    upstream = timed(["dvc", "repro", "--force", "gate"], root, env)
    promote = timed(["dvc", "repro", "--force", "--single-item", "promote"], root, env)
    return upstream + promote, promote


def install(project: Path, installer: str) -> float:
    """A fresh `make install` as a CI job runs it: no venv, no uv on PATH (the bench's own
    environment is left out of PATH), package caches as earlier runs left them."""
    shutil.rmtree(project / ".venv", ignore_errors=True)
    tools = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != tools)
    env = {**os.environ, "PATH": path, "PYTHON": shutil.which("python3", path=path) or "python3"}
    return timed(["make", "install", f"INSTALLER={installer}"], project, env)


def run(workdir: Path, smoke: bool = False) -> list[Figure]:
    """Bake with defaults; time the pipeline on both registries, then both installers."""
    baked = bake(workdir)
    embedded, promote_embedded = pipeline(baked, None)
    with mlflow_server(workdir / "server") as uri:
        served, promote_served = pipeline(baked, uri)
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
    ]
    if smoke:
        return figures
    project = baked.root
    install(project, "uv")  # warm uv's cache as a cached CI run would have it
    uv = install(project, "uv")
    pip = install(project, "pip")
    figures += [
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
