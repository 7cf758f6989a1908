"""The performance alarm's error rates over re-bakes, measured on a baked project's own code.

`make performance` compares each labelled batch with the ROC AUC that `evaluate` measured
once, on one holdout. Whether an undrifted batch raises a false alarm therefore depends on
that holdout's luck, so the rate that matters is the one *conditional on a bake*: for each
of many bakes (a training table generated with another seed, the project's own pipeline,
split, `evaluate`'s DeLong interval), many batches from the same generator (undrifted, and
drifted by 0.25, 0.5, 1.0 with `--drift`) are scored and judged by
`monitoring.performance.drop_verdict`. Printed per rule: the false-alarm rate of each bake
(median, 95th percentile, worst) and the detection rate per drift. The rule before this
one (a z-test of the batch against the evaluated point value, `stats.unpaired_drop_test`)
is measured on the same batches as the baseline.

Run `python bench/bench_alarm.py` (full) or `--smoke`; `bench/run.py alarm [--smoke]`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_canary import bake

from harness import Figure, figure, table

DRIFTS = (0.0, 0.25, 0.5, 1.0)
BATCH_ROWS = 1000  # labelled rows per batch (performance.min_labels is 200)


@dataclass(frozen=True)
class Plan:
    bakes: int
    batches: int  # undrifted batches per bake; drifted ones get half


FULL, SMOKE = Plan(20, 40), Plan(2, 10)


def _modules(package: types.ModuleType) -> dict[str, types.ModuleType]:
    names = ("config", "contract", "data", "sample_data", "stats", "pipeline.train",
             "evaluation", "monitoring.performance")  # fmt: skip
    return {n: importlib.import_module(f"{package.__name__}.{n}") for n in names}


def _table(m: dict[str, types.ModuleType], contract_path: Path, tmp: Path, rows: int,
           seed: int, drift: float = 0.0, first_id: int = 0):  # fmt: skip
    contract = m["contract"].load_contract(contract_path)
    raw = m["sample_data"].generate(
        contract_path, tmp / f"raw-{seed}-{drift}.csv", rows, seed, drift, first_id
    )
    return m["data"].conform(m["data"].load_table(raw), contract)


def one_bake(
    package: types.ModuleType, seed: int, batches: int, tmp: Path
) -> dict[str, list[bool]]:
    """Alarms of both rules for each batch of one bake, keyed `rule@drift`."""
    m = _modules(package)
    project = package.PROJECT
    contract_path = project / "contract.yaml"
    contract = m["contract"].load_contract(contract_path)
    config = m["config"].load_config(project / "params.yaml")
    table = _table(m, contract_path, tmp, config.data.sample_rows, seed)
    held = m["pipeline.train"].holdout_mask(
        table[contract.id], config.split.test_size, config.split.seed
    )
    x, y = m["data"].features_and_target(table[~held], contract)
    model = m["pipeline.train"].build_pipeline(contract, config.model).fit(x, y)
    hx, hy = m["data"].features_and_target(table[held], contract)
    stats = m["stats"]
    evaluated = m["evaluation"].auc_interval(
        np.asarray(hy), model.predict_proba(hx)[:, 1], config.evaluate
    )
    reference = stats.Interval(evaluated["value"], evaluated["low"], evaluated["high"], "delong")
    verdict = m["monitoring.performance"].drop_verdict
    alarms: dict[str, list[bool]] = {}
    for drift in DRIFTS:
        count = batches if drift == 0 else max(batches // 2, 1)
        pool = _table(m, contract_path, tmp, count * BATCH_ROWS, seed * 7919 + 1, drift,
                      first_id=10_000_000)  # fmt: skip
        bx, by = m["data"].features_and_target(pool, contract)
        scores = model.predict_proba(bx)[:, 1]
        labels = np.asarray(by)
        for k in range(count):
            rows = slice(k * BATCH_ROWS, (k + 1) * BATCH_ROWS)
            realised = m["evaluation"].auc_interval(labels[rows], scores[rows], config.evaluate)
            current = stats.Interval(realised["value"], realised["low"], realised["high"], "delong")
            new = verdict(current, reference, config.evaluate.level, config.performance)
            _, _, p = stats.unpaired_drop_test(
                current, reference, config.evaluate.level, config.performance.min_delta
            )
            alarms.setdefault(f"new@{drift}", []).append(new["status"] == "drop")
            alarms.setdefault(f"old@{drift}", []).append(p < config.performance.alpha)
    return alarms


def measure(package: types.ModuleType, plan: Plan, tmp: Path) -> list[Figure]:
    per_bake: list[dict[str, float]] = []
    for b in range(plan.bakes):
        alarms = one_bake(package, 1000 + b, plan.batches, tmp)
        per_bake.append({key: float(np.mean(values)) for key, values in alarms.items()})
        rates = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_bake[-1].items()))
        print(f"bake {b + 1}/{plan.bakes}: {rates}", file=sys.stderr, flush=True)
    figures = []
    for rule, name in (("new", "upper bound below evaluated low"), ("old", "z-test vs point")):
        rates = np.array([b[f"{rule}@0.0"] for b in per_bake])
        figures.append(
            figure(
                f"false alarm per bake p95, {rule} rule",
                float(np.quantile(rates, 0.95)),
                "share",
                f"{name}: undrifted batches of {BATCH_ROWS} rows, {plan.batches} per bake, "
                f"{plan.bakes} bakes; median {np.median(rates):.3f}, worst {rates.max():.3f}, "
                f"bakes over 5%: {(rates > 0.05).mean():.3f}",
            )
        )
        for drift in DRIFTS[1:]:
            detected = np.array([b[f"{rule}@{drift}"] for b in per_bake])
            figures.append(
                figure(
                    f"detection at drift {drift:g}, {rule} rule",
                    float(detected.mean()),
                    "share",
                    f"{name}: mean over bakes; lowest bake {detected.min():.3f}",
                )
            )
    return figures


def run(tmp: Path, smoke: bool | None = None) -> list[Figure]:
    """`bench/run.py` entry: full unless BENCH_SMOKE=1 (or smoke=True)."""
    if smoke is None:
        smoke = os.environ.get("BENCH_SMOKE") == "1"
    package = bake(tmp / "bake")
    return measure(package, SMOKE if smoke else FULL, tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--bakes", type=int)
    parser.add_argument("--batches", type=int)
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    plan = Plan(args.bakes or plan.bakes, args.batches or plan.batches)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        package = bake(Path(tmp) / "bake")
        print(table(measure(package, plan, Path(tmp))))
        print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
