"""Benchmark the baked pipeline: `dvc repro` on the sample data, the no-op repro, and no DVC."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

from harness import Figure, figure, run_standalone

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("validate", "train", "evaluate", "gate", "promote")


def environment(project: Path) -> dict[str, str]:
    """This interpreter's tools first on PATH, telemetry off, the baked package importable."""
    tools = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(project / "src"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "DVC_NO_ANALYTICS": "1",
    }


def timed(commands: list[list[str]], project: Path) -> float:
    """Seconds to run the commands one after another; any failure stops the benchmark."""
    env = environment(project)
    start = time.perf_counter()
    for command in commands:
        subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def run(workdir: Path) -> list[Figure]:
    """Bake with defaults, then time the three ways of running the pipeline."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(workdir)))
    rows = sum(1 for _ in (project / "data" / "raw" / "churn.csv").open()) - 1
    full = timed([["dvc", "repro"]], project)
    noop = timed([["dvc", "repro"]], project)
    direct = timed([[sys.executable, "-m", "churn_model", stage] for stage in STAGES], project)
    return [
        figure(
            "dvc repro (sample data)",
            full,
            "s",
            f"validate -> train -> evaluate -> gate -> promote on {rows:,} rows, fresh bake; "
            "baseline: the five stage commands run directly, without DVC",
            direct,
            ratio=direct / full,
        ),
        figure(
            "dvc repro, nothing changed",
            noop,
            "s",
            "second repro: every stage skipped; baseline: the full repro",
            full,
            ratio=full / noop,
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(run_standalone(run))
