"""Wall time of the whole generated workflow, run job by job on fresh clones (for bench_team).

The same runs tests/test_team_workflow.py asserts on: a baked project whose data is on an
S3 remote (moto on loopback) and whose registry is a real `mlflow server`, run with the
template's `tests/run_workflow.py` for a first push (5 jobs) and a weekly retrain
(3 jobs: nothing to deploy). Every job does a fresh `make install` from warm caches.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from harness import Figure, figure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the template's tests/

from tests.workflow_runs import churn_project, shared_engines


def workflow_figures(workdir: Path) -> list[Figure]:
    """First push and weekly retrain: whole-workflow wall time and per-job install time."""
    with shared_engines(workdir / "team", keep_mypy_cache=False) as team:
        project = churn_project(workdir / "churn", team)
        first = team.workflow(project, "bench-first-push", "push", "--ref", "refs/heads/main")
        weekly = team.workflow(project, "bench-weekly", "schedule")
    for done in (first, weekly):
        if done.returncode != 0:
            raise RuntimeError(f"simulated workflow failed:\n{done.output[-4000:]}")
    installs = first.install_seconds() + weekly.install_seconds()
    return [
        figure(
            "simulated workflow: first push",
            first.seconds,
            "s",
            "pipeline (validate, train, evaluate, test, promote) -> staging -> canary, each "
            "job a fresh clone with its own make install; S3 remote and mlflow server on loopback",
        ),
        figure(
            "simulated workflow: weekly retrain",
            weekly.seconds,
            "s",
            "pipeline job (champion from the server, paired test, not promoted); "
            "the deploy jobs are skipped",
        ),
        figure(
            "make install in a fresh CI job",
            statistics.median(installs),
            "s",
            f"median of {len(installs)} jobs: uv from the restored actions/cache of ~/.cache/uv",
        ),
    ]
