"""Multiclass and regression, end to end in baked projects: lint, `dvc repro` up to a promoted
champion, and the bake's own data and model tests, on each task's sample and on a real public
table of each task (`dataset=own`, the task inferred by `make contract`)."""

from __future__ import annotations

import json
import sys
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


@pytest.mark.parametrize(
    ("task", "sample", "headline", "compared"),
    [
        ("regression", "insurance-cost", "rmse", "squared_error"),
        ("multiclass", "support-tickets", "macro_f1", "log_loss"),
    ],
)
def test_sample_task_pipeline(
    tmp_path: Path, task: str, sample: str, headline: str, compared: str
) -> None:
    """The task's sample lints clean, runs green to a promoted model and passes its own tests;
    the metrics carry intervals, the baselines, every slice and the protected attribute."""
    project = bake(tmp_path, task=task)
    assert (project / "data" / "raw" / f"{sample}.csv.dvc").is_file()
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["task"] == task and params["promotion"]["metric"] == compared
    run(["make", "lint", VENV], project)
    metrics = repro_promoted(project, task)
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
    tested = run(TESTS, project, env=tool_env(project))
    assert " passed" in tested.stdout


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
