"""Multiclass and regression, end to end in baked projects: `dvc repro` up to a promoted
champion and delivery (staging, integration tests, a canary to 100 % and one rolled back,
`make score`, `make performance`) on each task's sample; and a real public table of each task
(`dataset=own`, the task inferred by `make contract`) through the bake's own data and model
tests. Lint and the bake's tests on the samples run in test_pipeline's matrix."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_diabetes, load_wine

from .conftest import bake, run, tool_env

pytestmark = pytest.mark.slow

VENV = f"VENV={Path(sys.prefix)}"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
TESTS = [*PYTEST, "tests/data", "tests/model"]


def repro_promoted(project: Path, task: str) -> dict:
    """`dvc repro` green, the gate passed, the first model promoted; the metrics record."""
    run(["dvc", "repro"], project)
    gate = json.loads((project / "metrics" / "gate.json").read_text())
    assert gate["passed"], gate
    promotion = json.loads((project / "metrics" / "promotion.json").read_text())
    assert promotion["decision"] == "promoted", promotion["reason"]
    metrics = json.loads((project / "metrics" / "metrics.json").read_text())
    assert metrics["task"] == task
    return metrics


SAMPLES = {
    # task: (sample, headline metric, the paired test's per-row loss)
    "regression": ("insurance-cost", "rmse", "squared_error"),
    "multiclass": ("support-tickets", "macro_f1", "log_loss"),
}


def make(project: Path, *targets: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A make target of the bake, with its package importable and the shared tools."""
    command = ["make", "--no-print-directory", *targets, VENV]
    return run(command, project, check=check, env=tool_env(project))


def recorded_pids(project: Path) -> set[int]:
    """The pids of the servers and router the deploy tool says it runs."""
    path = project / ".deploy" / "state.json"
    state = json.loads(path.read_text()) if path.is_file() else {}
    records = [*state.get("servers", {}).values(), state.get("staging"), state.get("router")]
    return {r["pid"] for r in records if isinstance(r, dict) and isinstance(r.get("pid"), int)}


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def task_bake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One bake per task, its servers on free ports, run to a promoted champion; every process
    it deploys is stopped (by pid) at the end."""
    task = request.param
    project = bake(tmp_path_factory.mktemp(task), task=task)
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["serve"] |= {"router_port": 0, "staging_port": 0, "port": 0}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    metrics = repro_promoted(project, task)
    seen: set[int] = set()
    yield task, project, metrics, seen
    seen |= recorded_pids(project)
    make(project, "undeploy", check=False)
    for pid in seen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_sample_task_pipeline(task_bake) -> None:
    """The task's sample runs green to a promoted model whose metrics carry intervals, the
    baselines, every slice and the protected attribute. (Lint and the bake's own tests run on
    each task's sample in test_pipeline's matrix, where `task` is an option.)"""
    task, project, metrics, _ = task_bake
    sample, headline, compared = SAMPLES[task]
    assert (project / "data" / "raw" / f"{sample}.csv.dvc").is_file()
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["task"] == task and params["promotion"]["metric"] == compared
    entry = metrics["metrics"][headline]
    assert entry["low"] <= entry["value"] <= entry["high"]
    assert metrics["baseline"]["constants"], "no model-free baseline was measured"
    assert metrics["baseline"]["gain"]["low"] > 0, "the model did not beat the best single feature"
    contract = yaml.safe_load((project / "contract.yaml").read_text())
    assert set(metrics["slices"]) == set(contract["slices"])
    assert set(metrics["fairness"]) == set(contract["protected"])
    assert set(metrics["invariances"]) == {rule["name"] for rule in contract["invariances"]}
    gate = json.loads((project / "metrics" / "gate.json").read_text())
    assert {"beat_single_feature", "max_disparity", "task_invariance"} <= {
        check["id"] for check in gate["checks"]
    }


def shadow_evidence(project: Path) -> dict:
    """The last look of the latest rollout's shadow phase: its comparison counts."""
    lines = (project / ".deploy" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    looks = [e for e in events if e.get("event") == "analysis" and e.get("phase") == "shadow"]
    assert looks, "the rollout had no shadow phase"
    return looks[-1]["evidence"]["shadow"]


def holdout_batch(project: Path, sample: str, folder: Path) -> tuple[Path, Path, str]:
    """The holdout's rows as the raw file holds them: features (a batch) and labels apart."""
    contract = yaml.safe_load((project / "contract.yaml").read_text())
    ident, target = contract["id"], contract["target"]
    raw = pd.read_csv(project / "data" / "raw" / f"{sample}.csv")
    held = pd.read_parquet(project / "data" / "holdout.parquet")[ident].astype(str)
    rows = raw[raw[ident].astype(str).isin(set(held))]
    rows.drop(columns=target).to_csv(folder / "batch.csv", index=False)
    rows[[ident, target]].to_csv(folder / "labels.csv", index=False)
    return folder / "batch.csv", folder / "labels.csv", ident


def check_served_histogram(project: Path, task: str) -> None:
    """The staging server counted the integration tests' answers in `model_prediction_score`:
    a class's probability in twentieths, or a regression's value in buckets at the quantiles
    of the version's holdout answers, as training recorded them in the reference profile."""
    state = json.loads((project / ".deploy" / "state.json").read_text())
    with urllib.request.urlopen(state["staging"]["url"] + "/metrics", timeout=10) as response:
        text = response.read().decode()
    buckets = {
        float(line.split('le="', 1)[1].split('"', 1)[0]): float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("model_prediction_score_bucket{")
    }
    if task == "regression":
        profile = json.loads((project / "models" / "reference_profile.json").read_text())
        bounds = profile["predictions"]["edges"]
    else:
        bounds = [i / 20 for i in range(1, 20)]
    assert list(buckets) == [*bounds, float("inf")]
    assert buckets[float("inf")] > 0, "the staging server counted no answer"


def test_task_delivery(task_bake, tmp_path: Path) -> None:
    """The task's champion through every delivery target a binary one has: staging and the
    generated integration tests over HTTP, a canary through the shadow (which compares the
    task's answers) to 100 %, a faulty canary rolled back, `make score` writing the task's
    columns, `make drift-check` comparing the champion's answers, and `make performance`
    judging delayed labels on the task's headline metric."""
    task, project, metrics, seen = task_bake
    sample, headline, _ = SAMPLES[task]
    make(project, "deploy-staging")
    seen |= recorded_pids(project)
    assert " passed" in make(project, "integration-test").stdout
    check_served_histogram(project, task)

    canary = make(project, "deploy-canary")
    seen |= recorded_pids(project)
    assert "promoted:" in canary.stdout and "serves 100%" in canary.stdout
    shadow = shadow_evidence(project)  # the champion against itself: every answer agrees
    assert shadow["agree"] >= 200 and shadow["disagree"] == 0 and shadow["error"] == 0, shadow

    bad = make(project, "deploy-canary", "BAD=errors", check=False)
    seen |= recorded_pids(project)
    assert bad.returncode != 0
    assert "rolled back in" in bad.stdout and "is serving" in bad.stdout

    batch, labels, ident = holdout_batch(project, sample, tmp_path)
    out = tmp_path / "scored.parquet"
    make(project, "score", f"DATA={batch}", f"OUT={out}")
    scored = pd.read_parquet(out)
    expected = (
        ["value"]
        if task == "regression"
        else ["label"] + [f"probability_{c}" for c in metrics["classes"]]
    )
    assert list(scored.columns) == [ident, *expected, "model_version"]
    assert len(scored) == metrics["n"]

    make(project, "drift-check", f"DATA={batch}")  # the holdout's rows: the answers stay put
    drift = json.loads((project / "reports" / "drift-check" / "batch.json").read_text())
    assert drift["predictions"]["status"] == "ok", drift["predictions"]
    watched = (
        ["value"] if task == "regression" else [f"probability[{c}]" for c in metrics["classes"]]
    )
    assert [entry["watched"] for entry in drift["predictions"]["watched"]] == watched

    judged = make(project, "performance", f"LABELS={labels}", f"PREDICTIONS={out}")
    assert f"realised {headline}" in judged.stdout and "no significant drop" in judged.stdout
    report = json.loads((project / "reports" / "performance" / "labels.json").read_text())
    assert report["status"] == "ok"
    (entry,) = report["versions"].values()
    assert entry["metric"] == headline
    assert entry["metrics"][headline]["value"] == pytest.approx(
        metrics["metrics"][headline]["value"], rel=1e-9
    )


def public_table(load: Callable[..., object], path: Path) -> Path:
    """A scikit-learn bundled table (files inside the wheel: nothing downloads) as a CSV,
    written as pandas writes a frame, row numbers included, the way many exported tables look."""
    frame = load(as_frame=True).frame  # type: ignore[attr-defined]  # a Bunch
    assert isinstance(frame, pd.DataFrame)
    frame.to_csv(path)
    return path


OWN_TABLES = {
    # 442 patients, a disease-progression score: 214 distinct whole numbers
    "diabetes": (lambda **kw: load_diabetes(scaled=False, **kw), "regression"),
    # 178 wines, three cultivars coded 0, 1, 2
    "wine": (load_wine, "multiclass"),
}


@pytest.mark.parametrize("table", sorted(OWN_TABLES))
def test_own_public_table(tmp_path: Path, table: str) -> None:
    """dataset=own baked with the default task: `make contract` infers the table's task, says
    why, drafts its gates; the pipeline promotes and the bake's data and model tests pass."""
    load, task = OWN_TABLES[table]
    data = public_table(load, tmp_path / f"{table}.csv")
    project = bake(tmp_path / "bake", dataset="own", project=f"{table}-model")
    drafted = run(["make", "contract", f"DATA={data}", "TARGET=target", VENV], project)
    assert f"contract: task {task} (" in drafted.stdout, drafted.stdout
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["task"] == task
    repro_promoted(project, task)
    run(TESTS, project, env=tool_env(project))


def test_task_override_the_data_cannot_support_is_refused(tmp_path: Path) -> None:
    """TASK=binary on a numeric target with many values is refused with the reason; nothing is
    written."""
    data = public_table(OWN_TABLES["diabetes"][0], tmp_path / "diabetes.csv")
    project = bake(tmp_path / "bake", dataset="own")
    params_before = (project / "params.yaml").read_text()
    refused = run(
        ["make", "contract", f"DATA={data}", "TARGET=target", "TASK=binary", VENV],
        project,
        check=False,
    )
    assert refused.returncode != 0
    assert "TASK=binary does not fit target 'target'" in refused.stdout + refused.stderr
    assert not (project / "contract.yaml").exists()
    assert (project / "params.yaml").read_text() == params_before
