"""Batch scoring on Spark `local[2]` vs the pandas path, at 1 M and 10 M rows: where Spark pays.

Bakes the template, runs its pipeline for a champion, writes the same unlabelled rows as one
Parquet file (what `make score` reads) and as a directory of part files (what a Spark job
reads, one split per part), then runs `score` and `score-spark` (SPARK_MASTER=local[2]) in
their own processes: wall time and peak memory of the whole process tree (the driver's
Python, the JVM, Spark's Python workers), sampled every 0.1 s. The crossover is where the
two lines `seconds = start-up + rows x per-row cost` meet (none if Spark's per-row cost is
not lower). Run `python bench/bench_spark.py [--smoke]`; BENCH_SPARK_SIZES=100000,1000000
chooses the sizes (default 1 M and 10 M).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness import Baked, Figure, bake, figure, run_standalone

PARTS = 8  # part files of the Spark input: splits for both cores, as a real table has
SPLIT = """
import sys
from pathlib import Path
import pandas as pd
from {package}.contract import load_contract
target = load_contract(Path("contract.yaml")).target
table = pd.read_csv(sys.argv[1]).drop(columns=target)
table.to_parquet(sys.argv[2], index=False)
parts = Path(sys.argv[3])
parts.mkdir()
step = -(-len(table) // {parts})
for i in range(0, len(table), step):
    table.iloc[i : i + step].to_parquet(parts / f"part-{{i // step:05d}}.parquet", index=False)
"""


def measured(project: Baked, command: list[str], **env: str) -> tuple[float, float]:
    """Wall seconds and the peak summed RSS (MB) of a command's whole process tree."""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=project.root, env=project.env(**env), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    peak = 0
    root = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass  # a worker ended between the listing and the reading
        time.sleep(0.1)
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{out[-2000:]}\n{err[-3000:]}")
    return time.perf_counter() - start, peak / 2**20


def crossover(points: dict[str, list[tuple[int, float]]]) -> float | None:
    """Rows where the two engines' fitted lines meet, if Spark's per-row cost is lower."""
    lines = {}
    for engine, runs in points.items():
        (n1, t1), (n2, t2) = runs[0], runs[-1]
        slope = (t2 - t1) / (n2 - n1)
        lines[engine] = (t1 - slope * n1, slope)
    (a_p, b_p), (a_s, b_s) = lines["pandas"], lines["spark"]
    if b_s >= b_p:
        return None
    return max(0.0, (a_s - a_p) / (b_p - b_s))


def sizes(smoke: bool) -> list[int]:
    if smoke:
        return [2_000, 6_000]
    chosen = os.environ.get("BENCH_SPARK_SIZES", "1000000,10000000")
    return sorted(int(n) for n in chosen.split(","))


def run(workdir: Path, smoke: bool = False) -> list[Figure]:
    """Bake, train a champion, score each size with both engines."""
    project = bake(workdir)
    project.repro()
    figures: list[Figure] = []
    points: dict[str, list[tuple[int, float]]] = {"pandas": [], "spark": []}
    for rows in sizes(smoke):
        labelled = project.sample_rows(workdir / f"labelled-{rows}.csv", rows, 3)
        single, parts = workdir / f"batch-{rows}.parquet", workdir / f"batch-{rows}"
        project.python(SPLIT.format(package=project.package, parts=PARTS), str(labelled),
                       str(single), str(parts))  # fmt: skip
        labelled.unlink()
        pandas_s, pandas_mb = measured(project, [
            sys.executable, "-m", project.package, "score", "--data", str(single),
            "--out", str(workdir / f"pandas-{rows}.parquet")])  # fmt: skip
        spark_s, spark_mb = measured(project, [
            sys.executable, "-m", project.package, "score-spark", "--data", str(parts),
            "--out", str(workdir / f"spark-{rows}")], SPARK_MASTER="local[2]")  # fmt: skip
        points["pandas"].append((rows, pandas_s))
        points["spark"].append((rows, spark_s))
        note = (f"{rows:,} rows, Parquet (one file / {PARTS} parts), whole process incl. start-up; "
                "baseline: the pandas path (make score); ratio > 1: Spark faster")  # fmt: skip
        figures += [
            figure(f"spark local[2]: seconds, {rows:,} rows", spark_s, "s", note, pandas_s,
                   ratio=pandas_s / spark_s),
            figure(f"spark local[2]: peak memory, {rows:,} rows", spark_mb, "MB",
                   "same runs, summed RSS of the process tree (driver, JVM, Python workers); "
                   "ratio > 1: Spark smaller", pandas_mb, ratio=pandas_mb / spark_mb),
        ]  # fmt: skip
    figures[-2] = {**figures[-2], "name": "spark local[2]: seconds, largest size"}
    figures[-1] = {**figures[-1], "name": "spark local[2]: peak memory, largest size"}
    rows_at = crossover(points)
    if rows_at is not None:
        figures.append(figure("spark local[2]: crossover", rows_at, "rows",
                              "where the fitted lines meet: above it Spark local[2] is faster "
                              "on this machine"))  # fmt: skip
    else:
        figures[-2]["note"] += "; no crossover: Spark's per-row cost is not lower here"
    return figures


if __name__ == "__main__":
    sys.exit(run_standalone(run))
