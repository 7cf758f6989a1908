"""Every benchmark still builds what it measures and writes its figures (`make bench` cannot rot).

Each benchmark runs at its smoke sizes (`bench/run.py --smoke NAME`), in its own process as
`make bench` runs it: it bakes the template with cookiecutter and measures the baked package.
The figures it writes are checked for presence and sense, never for speed (a shared machine
says nothing about speed; ratios are for `make bench`).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE, tool_env

BENCH = TEMPLATE / "bench"
NAMES = sorted(p.stem.removeprefix("bench_") for p in BENCH.glob("bench_*.py"))
# Figures every full or smoke run must write, by benchmark: the table and what the
# rest of the template's docs quote. Every figure must be a finite number; the required ones
# (times, rates, sizes) above 0, the rest (rates of false alarms, differences) may be 0.
REQUIRED: dict[str, list[str]] = {
    # the error rates may be 0 at smoke sizes; detection of 10x errors and of p99 3x may not
    "alarm": ["detection at drift 1, new rule"],
    "canary": ["detect 10x errors 150 rps", "detect p99 3x stable 150 rps"],
    "overload": ["predict peak throughput", "healthz p99 under a retry storm"],
    "tasks": [],  # one figure per task, named after it: any figure will do
    "pipeline": ["dvc repro (sample data)", "dvc repro, nothing changed"],
    "score": ["score: rows per second", "score: peak memory"],
    "serving": [
        "predict throughput",
        "predict p50",
        "predict p99",
        "predict throughput, 8 clients",
        "predict p99, 8 clients",
        "router added p50",
        "one row: HTTP, ASGI, middleware, client",
        "healthz p99 under saturation",
        "router hop p50",
        "breach to 100% stable",
    ],
    "spark": ["spark local[2]: seconds, largest size", "spark local[2]: peak memory, largest size"],
    "stats": ["stats.bootstrap_3_metric_ci", "stats.delong_ci_large"],
    "team": ["pipeline, shared mlflow server", "promote stage, shared mlflow server"],
    "validate": ["validate CSV", "validate Parquet", "peak RSS validate CSV"],
}
# Differences (one row's HTTP time less its steps, the router's added time) may be at or
# below zero on a busy machine; every other figure is a time, a rate or a size.
MAY_BE_NEGATIVE = {"router added p50", "router hop p50", "one row: HTTP, ASGI, middleware, client"}


def test_every_benchmark_has_required_figures():
    """A new benchmark names the figures its smoke run must write."""
    assert sorted(REQUIRED) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_benchmark_smoke_run_writes_its_figures(name: str, tmp_path: Path) -> None:
    """`bench/run.py --smoke NAME` exits 0 and writes finite figures with their baselines."""
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--smoke", "--out", str(out), name],
        cwd=tmp_path,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    report = json.loads(out.read_text())
    assert report["smoke"] is True
    figures = {f["name"]: f for f in report["results"][name]}
    missing = set(REQUIRED[name]) - set(figures)
    assert not missing, f"{name} did not write {sorted(missing)}; it wrote {sorted(figures)}"
    assert figures, f"{name} wrote no figures"
    for f in figures.values():
        assert math.isfinite(f["value"]), f
        if f["name"] in REQUIRED[name] and f["name"] not in MAY_BE_NEGATIVE:
            assert f["value"] > 0, f
        if f["baseline"] is not None:
            assert math.isfinite(f["baseline"]), f
            assert f["ratio"] is not None, f
            assert math.isfinite(f["ratio"]), f
    assert f"## {name}" in done.stdout  # the table `make bench` prints
