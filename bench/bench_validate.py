"""Benchmark the validate stage at 1,000,000 rows against a naive Great Expectations baseline.

The template's package is copied under a plain name into the work directory and each
measurement runs in its own Python process, so peak RSS (ru_maxrss) belongs to one job.
Run `python bench/bench_validate.py` to print the figures, or let `bench/run.py` collect them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from harness import figure, run_standalone

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "{{cookiecutter.project}}"
PACKAGE_DIR = PROJECT / "src" / "{{cookiecutter.package}}"
CONTRACT = PROJECT / "_variants" / "contract.churn.yaml"
PACKAGE = "churn_bench"
ROWS = 1_000_000
SEED = 20240601


def render_package(workdir: Path) -> Path:
    """Copy the template package to `workdir/PACKAGE` (its modules hold no Jinja)."""
    target = workdir / PACKAGE
    if not target.exists():
        shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(CONTRACT, workdir / "contract.yaml")
    return target


def churn_table(rows: int, seed: int) -> pd.DataFrame:
    """Rows that meet the churn contract, drawn with numpy in one pass per column."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["monthly", "annual", "multi-year"], rows, p=[0.55, 0.3, 0.15])
    regions = ["north", "south", "east", "west", "central", "coastal", "mountain", "islands"]
    weights = np.array([20, 18, 16, 15, 12, 10, 6, 3], dtype=float)
    calls = np.minimum(30, rng.exponential(2.2, rows).astype(np.int64)).astype("float64")
    calls[rng.random(rows) < 0.03] = np.nan  # support_calls is nullable
    start = np.datetime64("2015-01-01T00:00:00")
    span = int((np.datetime64("2026-06-30T00:00:00") - start).astype(np.int64))
    signup = start + rng.integers(0, span, rows).astype("timedelta64[s]")
    tenure = np.minimum(120, rng.exponential(36, rows).astype(np.int64))
    return pd.DataFrame(
        {
            "customer_id": np.char.add("C", np.arange(rows).astype("U8")),
            "tenure_months": tenure,
            "monthly_spend": np.clip(rng.lognormal(4.2, 0.5, rows), 5.0, 500.0).round(2),
            "contract_type": contract,
            "region": rng.choice(regions, rows, p=weights / weights.sum()),
            "is_enterprise": (rng.random(rows) < 0.22).astype(np.int64),
            "is_senior": (rng.random(rows) < 0.18).astype(np.int64),
            "support_calls": calls,
            "signup_at": np.datetime_as_string(signup, unit="s"),
            "churned": (rng.random(rows) < 0.25).astype(np.int64),
        }
    )


# Each worker runs in a fresh interpreter: `python bench_validate.py --worker MODE PATH`.
def _worker(mode: str, path: Path) -> dict:
    import resource

    sys.path.insert(0, str(path.parent))
    contract_mod = __import__(f"{PACKAGE}.contract", fromlist=["load_contract"])
    validate = __import__(f"{PACKAGE}.pipeline.validate", fromlist=["validate_file"])
    contract = contract_mod.load_contract(path.parent / "contract.yaml")
    if mode != "drift":
        import great_expectations  # noqa: F401  (import time is not validation time)

    started = time.perf_counter()
    if mode == "ours":
        report, _table = validate.validate_file(path, contract)
        success, checks = report["success"], len(report["checks"])
        rows = report["rows"]
    elif mode == "naive":
        success, checks, rows = _naive(validate, contract, path)
    elif mode == "drift":
        success, checks, rows = _drift(path, contract)
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


def _naive(validate, contract, path: Path) -> tuple[bool, int, int]:
    """One fresh context, suite and validator per expectation: what a first attempt does."""
    import great_expectations as gx

    frame, _ = validate.prepare(validate.load_table(path), contract)
    success = True
    expectations = validate.build_suite(contract)
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


def _drift(path: Path, contract) -> tuple[bool, int, int]:
    """Profile the table and compare it with itself: the drift part of the validate stage."""
    drift = __import__(f"{PACKAGE}.drift", fromlist=["build_reference"])
    df = pd.read_parquet(path)
    reference = drift.build_reference(df, contract, 10)
    report = drift.compare(reference, df, contract, {})
    return report["status"] == "ok", len(report["features"]), len(df)


def measure(mode: str, path: Path) -> dict:
    """Run one worker process; its timings, peak RSS and the wall time including imports."""
    started = time.perf_counter()
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(path)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench worker {mode} {path.name} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - started
    return result


def running_profile_us(workdir: Path) -> float:
    """Microseconds per served row counted by RunningProfile (the server's drift hook)."""
    sys.path.insert(0, str(workdir))
    try:
        contract_mod = __import__(f"{PACKAGE}.contract", fromlist=["load_contract"])
        drift = __import__(f"{PACKAGE}.drift", fromlist=["RunningProfile"])
    finally:
        sys.path.remove(str(workdir))
    contract = contract_mod.load_contract(workdir / "contract.yaml")
    table = churn_table(20_000, SEED + 1)
    running = drift.RunningProfile(drift.build_reference(table, contract, 10))
    rows = table.to_dict("records")
    started = time.perf_counter()
    running.update_many(rows)
    return (time.perf_counter() - started) / len(rows) * 1e6


def run(workdir: Path) -> list[dict]:
    """Validate ROWS rows as CSV and Parquet, ours vs the naive baseline; return the figures."""
    render_package(workdir)
    table = churn_table(ROWS, SEED)
    csv_path, parquet_path = workdir / "churn.csv", workdir / "churn.parquet"
    table.to_csv(csv_path, index=False)
    table.to_parquet(parquet_path, index=False)
    del table
    ours_csv = measure("ours", csv_path)
    ours_pq = measure("ours", parquet_path)
    naive = measure("naive", parquet_path)
    drift = measure("drift", parquet_path)
    for name, result in (("ours csv", ours_csv), ("ours parquet", ours_pq), ("naive", naive)):
        if not result["success"]:
            raise RuntimeError(f"{name}: the generated table should pass validation")
    naive_rate = ROWS / naive["seconds"]
    size = f"{ROWS:,} rows, {ours_pq['checks']} checks"
    return [
        figure(
            "validate CSV",
            ROWS / ours_csv["seconds"],
            "rows/s",
            f"validate_file on {csv_path.stat().st_size / 1e6:.0f} MB CSV, {size}: "
            f"{ours_csv['seconds']:.1f} s ({ours_csv['wall']:.1f} s with interpreter and imports); "
            "baseline: naive, Parquet",
            naive_rate,
            ratio=ROWS / ours_csv["seconds"] / naive_rate,
        ),
        figure(
            "validate Parquet",
            ROWS / ours_pq["seconds"],
            "rows/s",
            f"validate_file on Parquet, {size}: {ours_pq['seconds']:.1f} s "
            f"({ours_pq['wall']:.1f} s wall); baseline: one fresh GE context and validator "
            f"per expectation, {naive['seconds']:.1f} s",
            naive_rate,
            ratio=ROWS / ours_pq["seconds"] / naive_rate,
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
            ROWS / drift["seconds"],
            "rows/s",
            f"build_reference and compare on {ROWS:,} rows: {drift['seconds']:.2f} s, "
            f"peak RSS {drift['peak_mb']:.0f} MB",
        ),
        figure(
            "RunningProfile per row",
            running_profile_us(workdir),
            "us",
            "cost the server pays per request to keep drift histograms (8 features)",
        ),
    ]


def main() -> int:
    """Print the figures (or, with --worker, run one measurement)."""
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(sys.argv[2], Path(sys.argv[3]))))
        return 0
    return run_standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
