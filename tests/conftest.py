"""Baking helpers shared by the template tests."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
# Every multiple-choice question of cookiecutter.json, read from it (never copied by hand).
CHOICES: dict[str, list[str]] = {
    key: value
    for key, value in json.loads((TEMPLATE / "cookiecutter.json").read_text()).items()
    if isinstance(value, list) and not key.startswith("_")
}
# The tools of this environment (dvc, ruff, pytest) must be what baked projects use.
TOOLS = str(Path(sys.executable).parent)
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "DVC_NO_ANALYTICS": "1"}


def tool_env(project: Path | None = None) -> dict[str, str]:
    """Environment for commands in a baked project: our tools first, its package importable."""
    env = {**os.environ, **QUIET, "PATH": f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    if project is not None:
        env["PYTHONPATH"] = str(project / "src")
    return env


def run(
    command: Sequence[str], cwd: Path, check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command in a baked project; on failure show what it printed."""
    result = subprocess.run(
        list(command),
        cwd=cwd,
        env=kwargs.pop("env", tool_env(cwd)),
        capture_output=True,
        text=True,
        **kwargs,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
        )
    return result


def bake(output_dir: Path, template: Path = TEMPLATE, **answers: str) -> Path:
    """Bake `template` with these answers (defaults for the rest); return the project dir."""
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{TOOLS}{os.pathsep}{old_path}"  # the post-gen hook looks for dvc
    try:
        project = cookiecutter(
            str(template), no_input=True, extra_context=answers, output_dir=str(output_dir)
        )
    finally:
        os.environ["PATH"] = old_path
    return Path(project)


def churn_generator(directory: Path) -> Path:
    """The churn sample generator (a churn bake's `sample_data.py`, baked into `directory` once):
    a realistic foreign table for `own`-dataset bakes, which ship only the generic generator."""
    generator = directory / "churn-model" / "src" / "churn_model" / "sample_data.py"
    if not generator.is_file():
        bake(directory, dataset="churn")
    return generator


def variant_id(answers: dict[str, str]) -> str:
    """Readable test id: churn-hist_gradient_boosting."""
    return "-".join(answers.values())


def pairwise(choices: dict[str, list[str]]) -> list[dict[str, str]]:
    """The fewest answer combinations found in which every pair of option values meets.

    The two largest options are crossed in full; each further option is then given the first
    column of values (searched exhaustively, with backtracking over earlier options) under
    which every pair with the options before it occurs. If no such column exists, rows are
    added for the missing pairs. Deterministic: the same cookiecutter.json, the same matrix.
    """
    names = sorted(choices, key=lambda name: -len(choices[name]))
    first, second, *rest = names
    base = [{first: a, second: b} for a in choices[first] for b in choices[second]]

    def covering(rows: list[dict[str, str]], todo: list[str]) -> list[dict[str, str]] | None:
        if not todo:
            return rows
        name, done = todo[0], list(rows[0])
        needed = {(o, v, mine) for o in done for v in choices[o] for mine in choices[name]}
        for column in itertools.product(choices[name], repeat=len(rows)):
            if {
                (o, row[o], mine) for row, mine in zip(rows, column, strict=True) for o in done
            } >= needed:
                found = covering(
                    [row | {name: m} for row, m in zip(rows, column, strict=True)], todo[1:]
                )
                if found is not None:
                    return found
        return None

    rows = covering(base, rest)
    if rows is None:  # no full column exists: the best columns, then rows for what is missing
        rows = extra_rows(best_columns(base, rest, choices), choices)
    return [{name: row[name] for name in choices} for row in rows]


def _pairs(rows: list[dict[str, str]]) -> set[tuple[str, str, str, str]]:
    return {
        (a, row[a], b, row[b]) for row in rows for a, b in itertools.combinations(sorted(row), 2)
    }


def best_columns(
    rows: list[dict[str, str]], todo: list[str], choices: dict[str, list[str]]
) -> list[dict[str, str]]:
    """Give each option in turn the column of values that covers the most pairs (first best)."""
    for name in todo:
        best = max(
            itertools.product(choices[name], repeat=len(rows)),
            key=lambda column: len(
                _pairs([row | {name: v} for row, v in zip(rows, column, strict=True)])
            ),
        )
        rows = [row | {name: v} for row, v in zip(rows, best, strict=True)]
    return rows


def extra_rows(rows: list[dict[str, str]], choices: dict[str, list[str]]) -> list[dict[str, str]]:
    """Add rows until every pair occurs, each row built to cover as many missing pairs as it can."""
    names = sorted(choices)
    wanted = {
        (a, x, b, y)
        for a, b in itertools.combinations(names, 2)
        for x in choices[a]
        for y in choices[b]
    }
    while missing := sorted(wanted - _pairs(rows)):
        a, x, b, y = missing[0]
        row = {a: x, b: y}
        for name in (n for n in names if n not in row):
            row[name] = max(
                choices[name],
                key=lambda v: len(_pairs([row | {name: v}]) & set(missing)),
            )
        rows = [*rows, {name: row[name] for name in names}]
    return rows


MATRIX = pairwise(CHOICES)


# `make test` runs on three xdist workers (two cores) with `--dist loadfile`: a file's tests share
# module-scoped state (shared engines, one deployment, bakes reused in order), so each file
# runs on one worker. Longest first (with --no-loadscope-reorder), so the last file to start
# is a short one. (loadgroup would split files more finely, but with pytest 9 its group marks
# do not reach the scheduler: the tests of one group ran on both workers.)
LONGEST_FIRST = (
    "test_team_workflow",
    "test_own_tables",
    "test_pipeline",
    "test_delivery",
    "test_own_model",
    "test_bench",
    "test_spark",
    "test_monitoring_workflow",
    "test_k8s_delivery",
    "test_k8s_manifests",
    "test_workflow_files",
    "test_own_data",
    "test_tasks_pipeline",
    "test_team",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")

    items.sort(
        key=lambda item: (
            LONGEST_FIRST.index(module(item))
            if module(item) in LONGEST_FIRST
            else len(LONGEST_FIRST)
        )
    )


VARIANTS = {"local": {"deploy_target": "local"}, "kubernetes": {"deploy_target": "kubernetes"}}


# Bakes shared by the tests of one generated-file module (tests/test_workflow_files.py, ...).
@pytest.fixture(scope="module", params=sorted(VARIANTS))
def baked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project baked for each delivery target."""
    return bake(tmp_path_factory.mktemp(request.param), **VARIANTS[request.param])


@pytest.fixture(scope="module")
def baked_k8s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project baked for Kubernetes."""
    return bake(tmp_path_factory.mktemp("k8s"), **VARIANTS["kubernetes"])
