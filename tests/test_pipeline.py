"""In each baked project: lint, `dvc repro`, a second repro that does nothing, its own tests.

The matrix's local rows run here and its Kubernetes rows in test_pipeline_kubernetes.py: one
file runs on one xdist worker, and ten rows in one file made the suite's longest pole.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import MATRIX, TEMPLATE, bake, churn_generator, run, tool_env, variant_id

pytestmark = pytest.mark.slow
# tests/data and tests/model read each bake's own data and model; tests/code runs on the tiny
# contract and inline data, whose task and deploy target come from the bake: the first bake of
# each task runs them (the matrix's rows put those three on both deploy targets)
DATA_AND_MODEL_TESTS = ["tests/data", "tests/model"]
CODE_TESTS_IN = {
    next(variant_id(a) for a in MATRIX if a["task"] == task) for task in {a["task"] for a in MATRIX}
}
assert {a["deploy_target"] for a in MATRIX if variant_id(a) in CODE_TESTS_IN} == {
    "local",
    "kubernetes",
}, "the bakes that run the code tests must cover both deploy targets"


def bring_own_data(project: Path, tmp_path: Path) -> None:
    """What a user of dataset=own does: draft the contract from a file, then track it."""
    contract = TEMPLATE / "{{cookiecutter.project}}" / "_variants" / "contract.churn.yaml"
    own = tmp_path / "customers.csv"
    generator = churn_generator(tmp_path / "churn")
    subprocess.run(
        [
            sys.executable,
            str(generator),
            "--contract",
            str(contract),
            "--out",
            str(own),
            "--rows",
            "6000",
        ],
        check=True,
        capture_output=True,
    )
    run(["make", "contract", f"DATA={own}", f"VENV={Path(sys.prefix)}"], project)
    assert (project / "data" / "raw" / "dataset.csv.dvc").is_file()


def rows(deploy_target: str) -> list[dict[str, str]]:
    """The matrix's rows for one deploy target."""
    return [answers for answers in MATRIX if answers["deploy_target"] == deploy_target]


@pytest.mark.parametrize("answers", rows("local"), ids=variant_id)
def test_baked_project_pipeline(tmp_path, tmp_path_factory, answers):
    """Every local row of the matrix lints clean, runs green and passes its own tests."""
    check_baked_project(tmp_path, tmp_path_factory, answers)


def check_baked_project(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, answers: dict[str, str]
) -> None:
    """Bake `answers`; lint, repro twice, and run its data and model tests (and its code
    tests in the first bake of each task)."""
    project = bake(tmp_path, **answers)
    if answers["dataset"] == "own":
        bring_own_data(project, tmp_path)
    venv = f"VENV={Path(sys.prefix)}"
    # one mypy cache per worker (its variants run one after another): each variant re-checks
    # the modules its answers changed, not the libraries' stubs
    mypy_cache = tmp_path_factory.getbasetemp() / "mypy-cache"
    run(
        ["make", "lint", venv],
        project,
        env={**tool_env(project), "MYPY_CACHE_DIR": str(mypy_cache)},
    )
    run(["dvc", "repro"], project)
    promotion = json.loads((project / "metrics" / "promotion.json").read_text())
    assert promotion["decision"] == "promoted", promotion["reason"]
    # nothing is recomputed; only promote runs again (it always asks the registry)
    again = run(["dvc", "repro"], project)
    assert "Running stage 'promote'" in again.stdout and "Running stage 'train'" not in again.stdout
    again_decided = json.loads((project / "metrics" / "promotion.json").read_text())
    assert again_decided["reason"] == "the challenger is the champion", again_decided
    gate = json.loads((project / "metrics" / "gate.json").read_text())
    assert gate["passed"]
    # the Kubernetes variant's alert-rule tests need promtool: here missing is a failure
    env = {**tool_env(project), "REQUIRE_PROMETHEUS": "1"}
    suites = DATA_AND_MODEL_TESTS
    if variant_id(answers) in CODE_TESTS_IN:
        suites = ["tests/code", *suites]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suites]
    run(command, project, env=env)
