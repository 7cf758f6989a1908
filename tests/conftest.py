"""Baking helpers shared by the template tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
CHOICES: dict[str, list[str]] = {
    "dataset": ["churn", "credit-risk", "own"],
    "model": ["hist_gradient_boosting", "random_forest", "logistic_regression"],
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


def bake(output_dir: Path, **answers: str) -> Path:
    """Bake the template with these answers (defaults for the rest); return the project dir."""
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{TOOLS}{os.pathsep}{old_path}"  # the post-gen hook looks for dvc
    try:
        project = cookiecutter(
            str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output_dir)
        )
    finally:
        os.environ["PATH"] = old_path
    return Path(project)


def variant_id(answers: dict[str, str]) -> str:
    """Readable test id: churn-hist_gradient_boosting."""
    return "-".join(answers.values())


MATRIX = [{"dataset": d, "model": m} for d in CHOICES["dataset"] for m in CHOICES["model"]]
