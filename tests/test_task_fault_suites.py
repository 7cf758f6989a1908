"""The baked delivery tests (`make test-delivery`: faults, N-1, slow clients, both analysis
engines, the server as the image and its Kubernetes manifest run it) for multiclass and
regression, in Kubernetes bakes, so the container tests start the server as the rendered
Rollout's pod template says. The binary bake's run is test_delivery.py's fault suite (local)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .conftest import bake, run, tool_env

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_the_bakes_delivery_tests_pass_for_the_task(task: str, tmp_path: Path) -> None:
    """Every fault the binary project is tested against, with the task's own model answering:
    a 5xx, slow, crashing or never-ready canary rolled back; a disagreeing shadow caught by the
    task's comparison; Prometheus and the local controller giving the same verdicts."""
    project = bake(tmp_path, task=task, deploy_target="kubernetes")
    result = run(
        ["make", "--no-print-directory", "test-delivery", f"VENV={Path(sys.prefix)}"],
        project,
        # a real Prometheus judges the analysis: here missing is a failure, not a skip
        env={**tool_env(project), "REQUIRE_PROMETHEUS": "1"},
    )
    assert " passed" in result.stdout, result.stdout[-3000:]
