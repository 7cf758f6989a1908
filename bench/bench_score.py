"""Batch scoring of 1M rows: `make score` (validated, chunked) vs naive read_csv + predict_proba.

Bakes the template, runs its pipeline for a champion, writes unlabelled rows with the baked
sample generator, then runs both in their own processes inside the project: wall time and
each process's own peak RSS. Run `python bench/bench_score.py [--smoke]`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from harness import Baked, Figure, bake, figure, run_standalone

# Runs a command and prints its peak RSS (kB): the child's own high-water mark, not ours.
PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
# The baseline: what a user writes without the template (the same champion, the same
# conform, no checks), CSV in, Parquet out.
NAIVE = """
import sys
from pathlib import Path
import pandas as pd
from {package}.contract import load_contract
from {package}.data import conform
from {package}.model_io import load_model
from {package}.registry import Registry
contract = load_contract(Path("contract.yaml"))
registry = Registry()
ref = registry.get_alias("champion")
model = load_model(registry.model_path(ref.version), expected_sha256=ref.sha256)
df = conform(pd.read_csv(sys.argv[1]), contract, [contract.id, *contract.feature_columns])
scores = model.predict_proba(df[contract.feature_columns])[:, 1]
pd.DataFrame({{contract.id: df[contract.id], "score": scores}}).to_parquet(sys.argv[2])
"""


def measured(project: Baked, *command: str, **env: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command run in its own process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *command],
        cwd=project.root,
        env=project.env(**env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, int(done.stdout.split()[-1]) / 1024


def run(workdir: Path, smoke: bool = False) -> list[Figure]:
    """Bake, train a champion, write the rows without their label, score them both ways."""
    rows = 20_000 if smoke else 1_000_000
    project = bake(workdir)
    project.repro()
    labelled = project.sample_rows(workdir / "labelled.csv", rows, 3)
    batch = workdir / "batch.csv"
    project.python(
        "import sys, pandas as pd; from pathlib import Path; "
        f"from {project.package}.contract import load_contract; "
        "t = load_contract(Path('contract.yaml')).target; "
        "pd.read_csv(sys.argv[1]).drop(columns=t).to_csv(sys.argv[2], index=False)",
        str(labelled),
        str(batch),
    )
    ours_s, ours_mb = measured(
        project, sys.executable, "-m", project.package, "score", "--data", str(batch),
        "--out", str(workdir / "ours.parquet"),
    )  # fmt: skip
    naive = [sys.executable, "-c", NAIVE.format(package=project.package), str(batch),
             str(workdir / "naive.parquet")]  # fmt: skip
    naive_s, naive_mb = measured(project, *naive)
    # the same baseline with one OpenMP thread: ours gives the model all cores but one, and
    # OpenMP threads that outnumber free cores spin; this separates that from the checks
    naive_1_s, _ = measured(project, *naive, OMP_NUM_THREADS="1")
    note = (
        f"{rows:,} rows, CSV, wall time of the whole process (interpreter, imports, model "
        "load); ours checks every chunk against the contract's row-level expectations before "
        "scoring; baseline: pd.read_csv + conform + predict_proba, no checks (aim >= 1x)"
    )
    return [
        figure("score: rows per second", rows / ours_s, "rows/s", note, rows / naive_s,
               ratio=naive_s / ours_s),
        figure("score: rows per second vs 1-thread baseline", rows / ours_s, "rows/s",
               "same runs; baseline: the naive script with OMP_NUM_THREADS=1",
               rows / naive_1_s, ratio=naive_1_s / ours_s),
        figure("score: peak memory", ours_mb, "MB",
               "same runs, ru_maxrss of each process; ratio = baseline / ours (aim >= 2x)",
               naive_mb, ratio=naive_mb / ours_mb),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_standalone(run))
