"""Benchmark the validate stage at 1,000,000 rows against a naive Great Expectations baseline.

Bakes the template, generates rows with the baked project's own sample generator and runs each
measurement in its own Python process inside the project (the baked package importable), so
peak RSS (ru_maxrss) belongs to one job. Run `python bench/bench_validate.py [--smoke]` to
print the figures, or let `bench/run.py` collect them.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from harness import Baked, bake, figure, run_standalone

SEED = 20240601


def _import(package: str, module: str) -> Any:
    return importlib.import_module(f"{package}.{module}")


# Each worker runs in a fresh interpreter inside the project:
# `python bench_validate.py --worker MODE PACKAGE PATH`.
def _worker(mode: str, package: str, path: Path) -> dict[str, Any]:
    import resource

    contract = _import(package, "contract").load_contract(Path("contract.yaml"))
    validate = _import(package, "pipeline.validate")
    if mode != "drift":
        import great_expectations  # noqa: F401  (import time is not validation time)

    started = time.perf_counter()
    if mode == "ours":
        report, _table = validate.validate_file(path, contract)
        success, checks = report["success"], len(report["checks"])
        rows = report["rows"]
    elif mode == "naive":
        success, checks, rows = _naive(package, contract, path)
    elif mode == "drift":
        success, checks, rows = _drift(package, path, contract)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {
        "seconds": seconds,
        "rows": rows,
        "success": success,
        "checks": checks,
        "peak_mb": peak_kb / 1024,
    }


def _naive(package: str, contract: Any, path: Path) -> tuple[bool, int, int]:
    """One fresh context, suite and validator per expectation: what a first attempt does."""
    import great_expectations as gx

    suite = _import(package, "suite")
    frame, _ = suite.prepare(_import(package, "data").load_table(path), contract)
    success = True
    expectations = _import(package, "expectations").build_suite(contract)
    for i, expectation in enumerate(expectations):
        context = gx.get_context(mode="ephemeral")
        batch = (
            context.data_sources.add_pandas(f"source{i}")
            .add_dataframe_asset("table")
            .add_batch_definition_whole_dataframe("whole")
        )
        suite = context.suites.add(gx.ExpectationSuite(name=f"one{i}", expectations=[expectation]))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"v{i}", data=batch, suite=suite)
        )
        result = definition.run(batch_parameters={"dataframe": frame})
        success &= bool(result.success)
    return success, len(expectations), len(frame)


def _drift(package: str, path: Path, contract: Any) -> tuple[bool, int, int]:
    """Profile the table and compare it with itself: the drift part of the validate stage."""
    drift = _import(package, "drift")
    settings = _import(package, "config").load_config(Path("params.yaml")).drift
    df = _import(package, "data").conform(pd.read_parquet(path), contract)
    reference = drift.build_reference(df, contract, settings.bins)
    report = drift.compare(reference, df, contract, settings.limits())
    return report["status"] == "ok", len(report["features"]), len(df)


def measure(project: Baked, mode: str, path: Path) -> dict[str, Any]:
    """Run one worker process; its timings, peak RSS and the wall time including imports."""
    started = time.perf_counter()
    out = project.run(sys.executable, __file__, "--worker", mode, project.package, str(path))
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - started
    return result


RUNNING_PROFILE = """
import json, sys, time
from pathlib import Path
import pandas as pd
from {package}.config import load_config
from {package}.contract import load_contract
from {package}.data import conform
from {package}.drift import RunningProfile, build_reference
contract = load_contract(Path("contract.yaml"))
table = conform(pd.read_parquet(sys.argv[1]), contract).head(20_000)
running = RunningProfile(build_reference(table, contract, load_config(Path("params.yaml")).drift.bins))
rows = table[contract.feature_columns].to_dict("records")
started = time.perf_counter()
running.update_many(rows)
print((time.perf_counter() - started) / len(rows) * 1e6)
"""


def run(workdir: Path, smoke: bool = False) -> list[dict[str, Any]]:
    """Validate the rows as CSV and Parquet, ours vs the naive baseline; return the figures."""
    rows = 5_000 if smoke else 1_000_000
    project = bake(workdir)
    csv_path, parquet_path = workdir / "table.csv", workdir / "table.parquet"
    project.sample_rows(csv_path, rows, SEED)
    pd.read_csv(csv_path).to_parquet(parquet_path, index=False)
    ours_csv = measure(project, "ours", csv_path)
    ours_pq = measure(project, "ours", parquet_path)
    naive = measure(project, "naive", parquet_path)
    drift = measure(project, "drift", parquet_path)
    for name, result in (("ours csv", ours_csv), ("ours parquet", ours_pq), ("naive", naive)):
        if not result["success"]:
            raise RuntimeError(f"{name}: the generated table should pass validation")
    per_row_us = float(project.python(RUNNING_PROFILE.format(package=project.package),
                                      str(parquet_path)))  # fmt: skip
    naive_rate = rows / naive["seconds"]
    size = f"{rows:,} rows, {ours_pq['checks']} checks"
    return [
        figure(
            "validate CSV",
            rows / ours_csv["seconds"],
            "rows/s",
            f"validate_file on {csv_path.stat().st_size / 1e6:.0f} MB CSV, {size}: "
            f"{ours_csv['seconds']:.1f} s ({ours_csv['wall']:.1f} s with interpreter and imports); "
            "baseline: naive, Parquet",
            naive_rate,
            ratio=rows / ours_csv["seconds"] / naive_rate,
        ),
        figure(
            "validate Parquet",
            rows / ours_pq["seconds"],
            "rows/s",
            f"validate_file on Parquet (vectorised checks decide a clean table, as GE would; "
            f"GE decides and explains any other), {size}: "
            f"{ours_pq['seconds']:.1f} s ({ours_pq['wall']:.1f} s wall); baseline: one fresh GE "
            f"context and validator per expectation, {naive['seconds']:.1f} s (aim >= 8x)",
            naive_rate,
            ratio=rows / ours_pq["seconds"] / naive_rate,
        ),
        figure(
            "peak RSS validate CSV",
            ours_csv["peak_mb"],
            "MB",
            "ru_maxrss of the worker process; baseline: naive (Parquet); ratio < 1: we use more",
            naive["peak_mb"],
            ratio=naive["peak_mb"] / ours_csv["peak_mb"],
        ),
        figure(
            "peak RSS validate Parquet",
            ours_pq["peak_mb"],
            "MB",
            "ru_maxrss of the worker process; baseline: naive (Parquet); ratio < 1: we use more",
            naive["peak_mb"],
            ratio=naive["peak_mb"] / ours_pq["peak_mb"],
        ),
        figure(
            "drift profile + compare",
            rows / drift["seconds"],
            "rows/s",
            f"build_reference and compare on {rows:,} rows: {drift['seconds']:.2f} s, "
            f"peak RSS {drift['peak_mb']:.0f} MB",
        ),
        figure(
            "RunningProfile per row",
            per_row_us,
            "us",
            "cost the server pays per request to keep drift histograms",
        ),
    ]


def main() -> int:
    """Print the figures (or, with --worker, run one measurement)."""
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(Path.cwd() / "src"))
        print(json.dumps(_worker(sys.argv[2], sys.argv[3], Path(sys.argv[4]))))
        return 0
    return run_standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
