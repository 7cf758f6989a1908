"""Baking helpers shared by the template tests."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from collections import Counter
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

    No such set has fewer rows than the two largest options crossed. From that size up, a
    seeded local search looks for rows that cover every pair; the first size where it finds
    them is the matrix. Deterministic: the same cookiecutter.json, the same matrix.
    """
    sizes = sorted((len(values) for values in choices.values()), reverse=True)
    rows = sizes[0] * (sizes[1] if len(sizes) > 1 else 1)
    while (found := covering_rows(choices, rows)) is None:
        rows += 1
    return found


def covering_rows(
    choices: dict[str, list[str]], rows: int, restarts: int = 30, steps: int = 5_000
) -> list[dict[str, str]] | None:
    """`rows` answer combinations covering every pair of option values, or None if the
    search gives up. Each step changes one answer of one row, kept when no pair is lost."""
    names = list(choices)
    pairs = list(itertools.combinations(range(len(names)), 2))
    wanted = sum(len(choices[names[a]]) * len(choices[names[b]]) for a, b in pairs)
    rng = random.Random(0)
    for _ in range(restarts):
        grid = [[rng.randrange(len(choices[n])) for n in names] for _ in range(rows)]
        seen = Counter((a, b, r[a], r[b]) for r in grid for a, b in pairs)
        for _ in range(steps):
            if len(seen) == wanted:
                return [{n: choices[n][v] for n, v in zip(names, r, strict=True)} for r in grid]
            row, col = rng.randrange(rows), rng.randrange(len(names))
            old, new = grid[row][col], rng.randrange(len(choices[names[col]]))
            others = [(a, b) for a, b in pairs if col in (a, b)]
            before = [(a, b, grid[row][a], grid[row][b]) for a, b in others]
            grid[row][col] = new
            after = [(a, b, grid[row][a], grid[row][b]) for a, b in others]
            lost = sum(seen[key] == 1 for key in before)
            gained = sum(key not in seen for key in after)
            if gained < lost:
                grid[row][col] = old
                continue
            seen.subtract(before)
            seen.update(after)
            seen = +seen  # drop the pairs no row holds any more
    return None


MATRIX = pairwise(CHOICES)


# `make test` runs on three xdist workers (two cores) with `--dist loadfile`: a file's tests share
# module-scoped state (shared engines, one deployment, bakes reused in order), so each file
# runs on one worker. Longest first (with --no-loadscope-reorder), so the last file to start
# is a short one. (loadgroup would split files more finely, but with pytest 9 its group marks
# do not reach the scheduler: the tests of one group ran on both workers.)
LONGEST_FIRST = (
    # two delivery suites, 18 minutes, mostly waiting on rollout steps: started first, they
    # overlap the CPU-bound bakes instead of running alone at the end
    "test_task_fault_suites",
    "test_team_workflow",
    "test_pipeline",
    "test_pipeline_kubernetes",
    "test_own_tables",
    "test_tasks_pipeline",
    "test_delivery",
    "test_own_model",
    "test_bench",
    "test_spark",
    "test_monitoring_workflow",
    "test_k8s_delivery",
    "test_k8s_manifests",
    "test_workflow_files",
    "test_own_data",
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
