"""Batch scoring of 1M rows: `make score` (validated, chunked) vs naive read_csv + predict_proba."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

from bench_pipeline import environment
from harness import Figure, figure, run_standalone

ROOT = Path(__file__).resolve().parent.parent
ROWS = 1_000_000
# Runs a command and prints its peak RSS (kB): the child's own high-water mark, not ours.
PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
NAIVE = (
    "import sys, pandas as pd; from churn_model.contract import load_contract; "
    "from churn_model.data import conform; from churn_model.model_io import load_model; "
    "from churn_model.registry import Registry; c = load_contract('contract.yaml'); "
    "r = Registry(); ref = r.get_alias('champion'); "
    "m = load_model(r.model_path(ref.version), expected_sha256=ref.sha256); "
    "df = conform(pd.read_csv(sys.argv[1]), c, [c.id, *c.feature_columns]); "
    "pd.DataFrame({c.id: df[c.id], 'score': m.predict_proba(df[c.feature_columns])[:, 1]})"
    ".to_parquet(sys.argv[2])"
)


def measured(command: list[str], project: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command run in its own process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *command],
        cwd=project,
        env=environment(project),
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, int(done.stdout.split()[-1]) / 1024


def run(workdir: Path) -> list[Figure]:
    """Bake, train a champion, write 1M unlabelled rows, score them both ways."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(workdir)))
    env = environment(project)
    subprocess.run(["dvc", "repro"], cwd=project, env=env, check=True, capture_output=True)
    big = workdir / "batch.csv"
    subprocess.run(
        [sys.executable, "-m", "churn_model", "sample-data", "--out", str(big),
         "--rows", str(ROWS), "--seed", "3"],
        cwd=project, env=env, check=True, capture_output=True,
    )  # fmt: skip
    ours_s, ours_mb = measured(
        [sys.executable, "-m", "churn_model", "score", "--data", str(big),
         "--out", str(workdir / "ours.parquet")],
        project,
    )  # fmt: skip
    naive_s, naive_mb = measured(
        [sys.executable, "-c", NAIVE, str(big), str(workdir / "naive.parquet")], project
    )
    note = (
        f"{ROWS:,} rows, CSV; ours validates every chunk against the contract (GE) before "
        "scoring, in 100k-row chunks; baseline: pd.read_csv + conform + predict_proba, no checks"
    )
    return [
        figure("score: rows per second", ROWS / ours_s, "rows/s", note, ROWS / naive_s,
               ratio=naive_s / ours_s),
        figure("score: peak memory", ours_mb, "MB", "same run; ratio = baseline / ours",
               naive_mb, ratio=naive_mb / ours_mb),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_standalone(run))
