"""Benchmark the baked pipeline: `dvc repro` on the sample data, the no-op repro, and no DVC."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harness import Baked, Figure, bake, figure, run_standalone

STAGES = ("validate", "train", "evaluate", "gate", "promote")


def timed(project: Baked, *commands: list[str]) -> float:
    """Seconds to run the commands one after another; any failure stops the benchmark."""
    start = time.perf_counter()
    for command in commands:
        project.run(*command)
    return time.perf_counter() - start


def run(workdir: Path, smoke: bool = False) -> list[Figure]:
    """Bake with defaults, then time the three ways of running the pipeline.

    The pipeline has no size knob worth shrinking (the sample data is 8,000 rows), so the
    smoke run measures the same things.
    """
    project = bake(workdir)
    rows = sum(1 for _ in (project.root / "data" / "raw" / "churn.csv").open()) - 1
    full = timed(project, ["dvc", "repro"])
    noop = timed(project, ["dvc", "repro"])
    direct = timed(project, *([sys.executable, "-m", project.package, s] for s in STAGES))
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
            "second repro: every stage skipped (aim <= 1 s); baseline: the full repro",
            full,
            ratio=full / noop,
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(run_standalone(run))
