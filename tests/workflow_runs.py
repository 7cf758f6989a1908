"""Run a baked project's workflow with the template's runner (run_workflow.py), against shared engines on loopback.

Used by tests/test_team_workflow.py (the scenarios) and bench/bench_team.py (wall times).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conftest import bake, run
from .servers import S3_CREDENTIALS, list_keys, mlflow_server, moto_s3

BUCKET = "team-data"
# The runner's warm caches (pip wheels, the uv cache restored by actions/cache): what a
# real repository's Actions cache holds after its first run. Shared by runs and test sessions.
CACHE = Path(
    os.environ.get("RUN_WORKFLOW_CACHE", Path.home() / ".cache" / "ml-cicd-template" / "runner")
)
RUNNER = Path(__file__).with_name("run_workflow.py")
SECRETS = ("MLFLOW_TRACKING_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# A quick first model (few shallow trees) and the better one a later commit brings: stumps,
# which suit the sample data's additive signal (+0.014 ROC AUC, p < 0.001 by DeLong).
FIRST_MODEL = "hist_gradient_boosting: {max_iter: 30, learning_rate: 0.05, max_leaf_nodes: 3,"
BETTER_MODEL = "hist_gradient_boosting: {max_iter: 200, learning_rate: 0.05, max_leaf_nodes: 2,"
DEFAULT_MODEL = "hist_gradient_boosting: {max_iter: 200, learning_rate: 0.05, max_leaf_nodes: 15,"
# The better model changes the decision on ~21% of rows (shadow phase, v1 vs stumps): this
# team allows 30% for a deliberate model change (the template's default limit is 20%).
SHADOW_LIMIT = ("max_disagreement: 0.2}", "max_disagreement: 0.3}")
# Interval estimates with 200 resamples instead of 1,000: every evaluate job is faster.
FEWER_RESAMPLES = ("bootstrap_resamples: 1000", "bootstrap_resamples: 200")
# A real run's jobs are separate machines; here they share one with other tests, which may
# hold the default ports: every server of a simulated job takes a free port.
FREE_PORTS = [
    ("router_port: 8000", "router_port: 0"),
    ("staging_port: 8001", "staging_port: 0"),
    ("port: 8080", "port: 0"),
]
WALL_TIMES: dict[str, float] = {}
# The bake's code tests (tests/code: the tiny contract and inline data, the same for every
# table, model and run) run in full in test_pipeline, once per deploy target, on the same
# rendered code as these bakes. Workflow runs deselect them on the runner machine
# (PYTEST_ADDOPTS, as a self-hosted runner's .env file sets it) and still run `make test`'s
# data and model tests on their own table and model: the workflow file itself is not changed.
CODE_TESTS_RAN_ONCE = ("--runner-env", "PYTEST_ADDOPTS=--deselect=tests/code")


@dataclass
class Run:
    """One simulated workflow run: the runner's report and the artifacts it kept."""

    workdir: Path
    report: dict[str, Any]
    output: str
    returncode: int
    seconds: float

    def job(self, name: str) -> dict[str, Any]:
        return self.report["jobs"][name]

    def result(self, name: str) -> str:
        return self.job(name)["result"]

    def artifact(self, name: str, path: str) -> Path:
        return self.workdir / "artifacts" / name / path

    def promotion(self) -> dict[str, Any]:
        return json.loads(self.artifact("evaluation", "metrics/promotion.json").read_text())

    def log(self, job: str) -> str:
        return (self.workdir / "logs" / f"{job}.log").read_text(encoding="utf-8")

    def install_seconds(self) -> list[float]:
        return [
            step["seconds"]
            for job in self.report["jobs"].values()
            for step in job["steps"]
            if step["name"] == "Install" and step["outcome"] == "success"
        ]


@dataclass
class Team:
    """The shared engines every simulated machine reaches over loopback."""

    endpoint: str
    tracking_uri: str
    root: Path
    # a shortcut of the test runs, not of the generated workflow (which caches no mypy state):
    # mypy's incremental cache kept between runs, so `make lint` re-checks only what changed
    mypy_cache: Path | None = None
    runs: list[Run] = field(default_factory=list)

    def secrets(self) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "AWS_ACCESS_KEY_ID": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }

    def workflow(self, project: Path, label: str, event: str, *extra: str) -> Run:
        """Run the project's committed workflow for `event` with the template's runner."""
        workdir = self.root / "runs" / label
        command = [
            sys.executable, str(RUNNER), "--event", event,
            "--repo", str(project), "--workdir", str(workdir), "--cache-dir", str(CACHE),
            *[arg for name in SECRETS for arg in ("--secret", name)], *extra,
        ]  # fmt: skip
        if self.mypy_cache is not None:
            command += ["--runner-env", f"MYPY_CACHE_DIR={self.mypy_cache}"]
        env = {**os.environ, **self.secrets()}
        start = time.perf_counter()
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=1500, check=False
        )
        seconds = time.perf_counter() - start
        report_path = workdir / "run.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {"jobs": {}}
        result = Run(workdir, report, done.stdout + done.stderr, done.returncode, seconds)
        WALL_TIMES[label] = seconds
        installs = ", ".join(f"{s:.0f}" for s in result.install_seconds())
        print(f"\n{label}: whole workflow {seconds:.0f} s; make install per job: {installs} s")
        print(done.stdout[-3000:])
        self.runs.append(result)
        return result

    def registry(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def alias(self, model: str, alias: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.registry().get_model_version_by_alias(model, alias).version)
        except MlflowException:
            return None

    def versions(self, model: str) -> list[str]:
        found = self.registry().search_model_versions(f"name='{model}'")
        return sorted((str(v.version) for v in found), key=int)

    def keys(self) -> set[str]:
        return set(list_keys(self.endpoint, BUCKET))


@contextlib.contextmanager
def shared_engines(root: Path, keep_mypy_cache: bool = True) -> Iterator[Team]:
    """An S3 endpoint (moto) and an `mlflow server`, both on loopback, ended by pid at exit.

    `keep_mypy_cache=False` runs every `make lint` cold, as a GitHub-hosted runner does (the
    workflow timings in bench/ want that)."""
    with moto_s3(BUCKET) as endpoint, mlflow_server(root / "registry-server") as uri:
        yield Team(endpoint, uri, root, root / "mypy-cache" if keep_mypy_cache else None)


def git(project: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=Team", "-c", "user.email=team@example.invalid", *args]
    return run(command, project).stdout.strip()


def commit(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", message)


def set_params(project: Path, old: str, new: str) -> None:
    params = project / "params.yaml"
    text = params.read_text()
    assert old in text, f"{old!r} not in params.yaml"
    params.write_text(text.replace(old, new))


def free_ports(project: Path) -> None:
    for old, new in FREE_PORTS:
        set_params(project, old, new)


def share_data(project: Path, team: Team, prefix: str) -> None:
    """What a user does once: point DVC at the team's S3 remote and push the data there."""
    run(
        ["make", "remote", f"URL=s3://{BUCKET}/{prefix}", f"ENDPOINT={team.endpoint}",
         "REGION=us-east-1", f"VENV={Path(sys.prefix)}"],
        project,
    )  # fmt: skip
    env = {**os.environ, **S3_CREDENTIALS, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
    run(["dvc", "push"], project, env=env)


def churn_project(root: Path, team: Team) -> Path:
    """A default bake, committed on main, its quick first model set, its data on the remote."""
    project = bake(root)
    set_params(project, DEFAULT_MODEL, FIRST_MODEL)
    set_params(project, *FEWER_RESAMPLES)
    set_params(project, *SHADOW_LIMIT)
    free_ports(project)
    share_data(project, team, "churn")
    git(project, "symbolic-ref", "HEAD", "refs/heads/main")
    commit(project, "Bake, configure the DVC remote, first model parameters")
    return project


def delivery_events(run_: Run) -> list[dict[str, Any]]:
    path = run_.artifact("delivery-log", ".deploy/events.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    keep = ("event", "version", "stable_version", "canary_version")
    return [{k: row[k] for k in keep if k in row} for row in rows]
