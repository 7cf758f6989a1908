"""monitoring.yml, run the way GitHub would: a fresh clone, data from the DVC remote, a real registry.

A baked project's champion lives on a real `mlflow server`; new production batches and their
labels are pushed to an S3 remote (moto on loopback) and tracked in git, as the workflow's
header asks. `tests/run_workflow.py` runs the scheduled workflow; its loopback GitHub API
records the `repository_dispatch` requests drift-check and performance send. A drifted batch
(the generator's `--drift`) must be reported and dispatch a retrain; a batch from the training
distribution must not.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import run, tool_env
from .servers import S3_CREDENTIALS
from .workflow_runs import Run, Team, churn_project, commit, shared_engines

pytestmark = pytest.mark.slow

WORKFLOW = ".github/workflows/monitoring.yml"
BATCH = "data/incoming/latest.csv"
LABELS = "data/labels/latest.csv"
ROWS = 2000


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    with shared_engines(tmp_path_factory.mktemp("monitoring")) as engines:
        yield engines


@pytest.fixture(scope="module")
def project(team: Team, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed bake whose v1 is champion on the shared server (the pipeline run once)."""
    project = churn_project(tmp_path_factory.mktemp("churn"), team)
    env = {**tool_env(project), "MLFLOW_TRACKING_URI": team.tracking_uri}
    run(["dvc", "repro"], project, env=env)
    assert team.alias("churn_model", "champion") == "1"
    commit(project, "v1 trained and promoted")
    return project


def arrive(project: Path, drift: float, seed: int, first_id: int, labelled: bool) -> None:
    """A production batch (and its labels, if they arrived): generated, `dvc add`ed, pushed,
    committed. Without labels, the last batch's labels file is no longer tracked."""
    generator = project / "src" / "churn_model" / "sample_data.py"
    batch, labels = project / BATCH, project / LABELS
    subprocess.run(
        [sys.executable, str(generator), "--contract", str(project / "contract.yaml"),
         "--out", str(batch), "--rows", str(ROWS), "--seed", str(seed),
         "--drift", str(drift), "--first-id", str(first_id)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {**tool_env(project), **S3_CREDENTIALS}
    if labelled:
        labels.parent.mkdir(parents=True, exist_ok=True)
        with batch.open(newline="") as source, labels.open("w", newline="") as sink:
            writer = csv.writer(sink)
            writer.writerow(["customer_id", "churned"])
            writer.writerows([r["customer_id"], r["churned"]] for r in csv.DictReader(source))
    elif (project / f"{LABELS}.dvc").exists():
        run(["dvc", "remove", "--quiet", f"{LABELS}.dvc"], project, env=env)
        labels.unlink(missing_ok=True)
    run(["dvc", "add", "--quiet", BATCH, *([LABELS] if labelled else [])], project, env=env)
    run(["dvc", "push", "--quiet"], project, env=env)
    commit(project, f"Production batch from seed {seed}" + (" and its labels" if labelled else ""))


def step_outcomes(result: Run) -> dict[str, str]:
    return {s["name"]: s["outcome"] for s in result.job("monitor")["steps"]}


def test_drifted_batch_dispatches_a_retrain_and_a_calm_one_does_not(
    team: Team, project: Path
) -> None:
    """Scheduled run on drifted data: drift reported, one dispatch; then undrifted: none."""
    arrive(project, drift=1.0, seed=31, first_id=100_000, labelled=True)
    drifted = team.workflow(project, "monitor-drifted", "schedule", "--workflow", WORKFLOW)
    log = drifted.log("monitor")
    assert drifted.result("monitor") == "failure", drifted.output[-4000:]
    outcomes = step_outcomes(drifted)
    assert outcomes["Pull the batch and the labels from the DVC remote"] == "success", log
    assert f"drift-check: {BATCH}: drift in " in log, log[-4000:]
    dispatches = drifted.report["dispatches"]
    assert len(dispatches) == 1, dispatches
    (dispatch,) = dispatches
    assert dispatch["event_type"] == "drift-detected" and dispatch["job"] == "monitor"
    assert dispatch["client_payload"]["status"] == "drift"
    assert dispatch["client_payload"]["rows"] == ROWS
    assert dispatch["client_payload"]["drifted"], dispatch
    # the labels arrived too: v1 dropped on the new data, but one dispatch per cool-down
    assert "realised ROC AUC" in log and "DROP" in log, log[-4000:]
    assert "not sent: cool-down" in log
    summary = drifted.job("monitor")["summary"]
    assert "drift" in summary and "retrain" in summary, summary

    # a batch from the training distribution whose labels have not arrived yet (they come
    # weeks later): checked for drift only, and nothing is dispatched
    arrive(project, drift=0.0, seed=32, first_id=200_000, labelled=False)
    calm = team.workflow(project, "monitor-calm", "workflow_dispatch", "--workflow", WORKFLOW)
    log = calm.log("monitor")
    assert calm.result("monitor") == "success", log[-4000:]
    assert f"drift-check: {BATCH}: no drift against" in log, log[-4000:]
    assert "drift-check: nothing to notify" in log
    assert step_outcomes(calm)["Score the batch with the champion"] == "skipped"
    assert f"{LABELS} is not tracked by DVC" in calm.job("monitor")["summary"]
    assert calm.report["dispatches"] == []
