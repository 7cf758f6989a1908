"""Team mode, proven the way GitHub would run it: ml-pipeline.yml job by job on fresh clones.

A baked project is committed, its data pushed to an S3 remote (moto's server on loopback),
and a real `mlflow server` holds the registry. `tests/run_workflow.py` (the template's
workflow runner) then runs the workflow for several events; each job is a fresh `git clone` with its
own HOME that knows only what the workflow gives it (secrets, artifacts, the DVC remote,
the registry server). The decisions each run wrote and what it deployed are asserted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import workflow_runs
from .conftest import TEMPLATE, bake, churn_generator, run
from .workflow_runs import (
    BETTER_MODEL,
    CODE_TESTS_RAN_ONCE,
    FIRST_MODEL,
    WALL_TIMES,
    Run,
    Team,
    churn_project,
    commit,
    delivery_events,
    free_ports,
    git,
    set_params,
    share_data,
    shared_engines,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    with shared_engines(tmp_path_factory.mktemp("team")) as engines:
        yield engines
    print("\nwhole simulated workflow, wall time per scenario:")
    for label, seconds in WALL_TIMES.items():
        print(f"  {label:<28} {seconds:6.0f} s")


def row_level_files(run_: Run) -> list[Path]:
    """Files in the run's artifacts (artifacts/NAME/PATH) that hold rows of data."""
    root = run_.workdir / "artifacts"
    files = [path.relative_to(root) for path in root.rglob("*") if path.is_file()]
    return [path for path in files if path.suffix == ".parquet" or path.parts[1] == "data"]


def assert_succeeded(run_: Run, jobs: list[str], skipped: list[str]) -> None:
    assert run_.returncode == 0, run_.output[-6000:]
    for name in jobs:
        assert run_.result(name) == "success", (name, run_.output[-6000:])
    for name in skipped:
        assert run_.result(name) == "skipped", name


# --------------------------------------------------------------------------- churn, four runs


@pytest.fixture(scope="module")
def churn(team: Team, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default bake, committed, its quick first model configured, its data on the remote."""
    return churn_project(tmp_path_factory.mktemp("churn"), team)


def test_first_push_promotes_v1_and_deploys(team: Team, churn: Path) -> None:
    """Data pulled from S3 on a fresh clone, v1 champion on the server, staging, canary."""
    keys_before = team.keys()
    first = team.workflow(churn, "1-first-push", "push", "--ref", "refs/heads/main",
                          *CODE_TESTS_RAN_ONCE)  # fmt: skip
    assert_succeeded(first, ["pipeline", "staging", "canary"], [])
    assert "data/raw/churn.csv pulled from DVC remote 'storage'" in first.log("pipeline")
    # row-level data travels through the DVC remote only, never as an artifact
    assert not row_level_files(first)
    assert "data/holdout.parquet pulled from the DVC remote" in first.log("staging")
    assert "data/holdout.parquet pulled from the DVC remote" in first.log("canary")
    # the model registered is the one the job trained and tested
    trained = json.loads(first.artifact("promoted", "models/train_meta.json").read_text())
    registered = team.registry().get_model_version("churn_model", "1").tags["sha256"]
    assert registered == trained["model_sha256"]
    promotion = first.promotion()
    assert promotion["decision"] == "promoted" and promotion["champion"] is None, promotion
    assert promotion["challenger"] == "1"
    assert team.alias("churn_model", "champion") == "1"
    assert first.job("pipeline")["outputs"]["deploy"] == "true"
    summary = first.job("pipeline")["summary"]
    assert summary.startswith("Registry: the shared MLflow server"), summary
    assert "the very first model of the shared registry" in summary
    events = delivery_events(first)
    assert {"event": "promotion_complete", "version": "1"} in events
    assert team.keys() > keys_before, "the run pushed nothing to the DVC remote"


def test_weekly_retrain_keeps_the_champion(team: Team, churn: Path) -> None:
    """New clones, same data: the champion comes from the server; noise is not promoted."""
    weekly = team.workflow(churn, "2-weekly-schedule", "schedule", *CODE_TESTS_RAN_ONCE)
    assert_succeeded(weekly, ["pipeline"], ["staging", "canary"])
    promotion = weekly.promotion()
    assert promotion["champion"] == "1", promotion
    assert promotion["decision"] == "not_promoted", promotion
    comparison = promotion["comparison"]  # the paired test ran against v1 on the same rows
    assert comparison["metric"] == "roc_auc" and not comparison["significant"]
    assert abs(comparison["diff"]) < 0.005
    assert team.alias("churn_model", "champion") == "1"
    assert weekly.job("pipeline")["outputs"]["deploy"] == "false"
    assert "not deploying" in weekly.job("pipeline")["summary"]


def test_better_model_is_promoted_and_canaried_over_v1(team: Team, churn: Path) -> None:
    """A params change pushed to main: promoted over v1, canary v2 over v1, v1 `previous`."""
    set_params(churn, FIRST_MODEL, BETTER_MODEL)
    commit(churn, "Stumps: the signal is additive")
    better = team.workflow(churn, "3-better-model-push", "push", "--ref", "refs/heads/main",
                           *CODE_TESTS_RAN_ONCE)  # fmt: skip
    assert_succeeded(better, ["pipeline", "staging", "canary"], [])
    promotion = better.promotion()
    assert promotion["decision"] == "promoted" and promotion["champion"] == "1", promotion
    version = promotion["challenger"]
    assert promotion["comparison"]["significant"] and promotion["comparison"]["diff"] > 0.005
    assert team.alias("churn_model", "champion") == version
    assert team.alias("churn_model", "previous") == "1"
    events = delivery_events(better)
    started = [e for e in events if e["event"] == "rollout_started"]
    assert started == [
        {"event": "rollout_started", "stable_version": "1", "canary_version": version}
    ]
    assert {"event": "promotion_complete", "version": version} in events


def test_pull_request_moves_no_alias(
    team: Team, churn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull request runs the `compare` job with the read-only secrets only (the write
    secrets are not given to this run at all): it compares with the shared champion and
    reports; nothing moves, nothing is registered or pushed, nothing deploys."""
    champion, versions = team.alias("churn_model", "champion"), team.versions("churn_model")
    keys = team.keys()
    git(churn, "checkout", "--quiet", "-b", "feature")
    model = BETTER_MODEL if BETTER_MODEL in (churn / "params.yaml").read_text() else FIRST_MODEL
    set_params(churn, model, model.replace("learning_rate: 0.05", "learning_rate: 0.04"))
    commit(churn, "A smaller learning rate")
    git(churn, "checkout", "--quiet", "main")
    read_only = {f"READONLY_{name}": value for name, value in team.secrets().items()}
    for name in team.secrets():  # what a pull request's job can reach: READONLY_* only
        monkeypatch.delenv(name, raising=False)
    for name, value in read_only.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(Team, "secrets", lambda self: read_only)
    monkeypatch.setattr(workflow_runs, "SECRETS", tuple(read_only))
    pr = team.workflow(churn, "4-pull-request", "pull_request", "--ref", "refs/heads/main",
                       "--head", "feature", *CODE_TESTS_RAN_ONCE)  # fmt: skip
    assert_succeeded(pr, ["compare"], ["pipeline", "staging", "image", "canary"])
    promotion = pr.promotion()
    assert promotion["dry_run"] is True and promotion["champion"] == champion, promotion
    assert promotion["decision"] in ("would_promote", "not_promoted"), promotion
    assert "comparison" in promotion
    assert team.alias("churn_model", "champion") == champion
    assert team.versions("churn_model") == versions, "a pull request registered a model"
    assert team.keys() == keys, "a pull request pushed to the DVC remote"
    summary = pr.job("compare")["summary"]
    assert summary.startswith("Registry: the shared MLflow server, read-only"), summary
    assert "not the default branch" in summary


# --------------------------------------------------------------------------- broken workflow
# (dataset=own through the whole workflow, staging and canary included, runs on a real public
# table in tests/test_own_tables.py)


@pytest.fixture(scope="module")
def own(team: Team, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dataset=own: a table from the sample generator (another seed), a drafted contract; a
    fresh clone can get this data only from the remote (`make data` in a sample project
    regenerates the sample when the pull fails and checks it against its .dvc hash)."""
    project = bake(tmp_path_factory.mktemp("own"), dataset="own", project="own-model")
    table = project.parent / "customers.csv"
    contract = TEMPLATE / "{{cookiecutter.project}}" / "_variants" / "contract.churn.yaml"
    generator = churn_generator(project.parent / "churn")
    subprocess.run(
        [sys.executable, str(generator), "--contract", str(contract), "--out", str(table),
         "--rows", "5000", "--seed", "4242"],
        check=True, capture_output=True,
    )  # fmt: skip
    run(["make", "contract", f"DATA={table}", f"VENV={Path(sys.prefix)}"], project)
    free_ports(project)
    share_data(project, team, "own")
    git(project, "symbolic-ref", "HEAD", "refs/heads/main")
    commit(project, "Our data, its drafted contract, the DVC remote")
    return project


def test_workflow_broken_on_a_fresh_machine_fails(team: Team, own: Path) -> None:
    """A workflow that works only where the data already is: no DVC credentials for the pull."""
    broken = team.root / "broken"
    shutil.copytree(own, broken)
    path = broken / ".github" / "workflows" / "ml-pipeline.yml"
    text = path.read_text()
    credentials = (
        "      AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}\n"
        "      AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n"
    )
    start, end = text.index("  pipeline:"), text.index("  staging:")
    assert credentials in text[start:end]
    path.write_text(text[:start] + text[start:end].replace(credentials, "") + text[end:])
    commit(broken, "Pipeline job without DVC credentials")
    failed = team.workflow(broken, "6-mutated-workflow", "push", "--ref", "refs/heads/main")
    assert failed.returncode == 1
    assert failed.result("pipeline") == "failure"
    assert all(failed.result(job) == "skipped" for job in ("staging", "image", "canary"))
    steps = {s["name"]: s["outcome"] for s in failed.job("pipeline")["steps"]}
    assert steps["Install"] == "success"
    failing = [name for name, outcome in steps.items() if outcome == "failure"]
    # the first failure is the pull; the `!cancelled()` upload then finds nothing to upload
    assert failing[0].startswith("Pull the data"), failing
    assert "check the remote's credentials" in failed.log("pipeline")
